import type { UploadEntry } from './content.js';
import type { UploadSource } from './tree.js';

export interface UploadPlan {
  send: UploadEntry[];
  unchanged: UploadEntry[];
  sendBytes: number;
}

export function planUpload(source: UploadSource, previous: readonly UploadEntry[] | null): UploadPlan {
  const before = new Map((previous ?? []).map((entry) => [entry.path, entry]));
  const same = (a: UploadEntry, b: UploadEntry | undefined) =>
    b !== undefined && a.type === 'file' && b.type === 'file' && a.mode === b.mode && a.size === b.size && a.sha256 === b.sha256;
  const send = source.entries.filter((entry) => !same(entry, before.get(entry.path)));
  const unchanged = source.entries.filter((entry) => same(entry, before.get(entry.path)));
  return { send, unchanged, sendBytes: send.reduce((sum, entry) => sum + entry.size, 0) };
}
