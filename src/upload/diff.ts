import type { UploadEntry } from '../core/content-list.js';
import type { UploadSource } from './tree.js';

export interface UploadPlan {
  /** New or changed entries; directories and symlinks are always sent (they cost only a header). */
  send: UploadEntry[];
  /** Regular files identical (path, type, mode, size, sha256) in the current release's list: copied on the host. */
  unchanged: UploadEntry[];
  /** Sum of send[].size. */
  sendBytes: number;
}

/** What to send to a host whose current release has the content list `previous` (null: none, or not from an upload). */
export function planUpload(source: UploadSource, previous: readonly UploadEntry[] | null): UploadPlan {
  const before = new Map((previous ?? []).map((entry) => [entry.path, entry]));
  const send: UploadEntry[] = [];
  const unchanged: UploadEntry[] = [];
  for (const entry of source.entries) {
    const old = before.get(entry.path);
    const same = entry.type === 'file' && old?.type === 'file' && old.mode === entry.mode && old.size === entry.size && old.sha256 === entry.sha256;
    (same ? unchanged : send).push(entry);
  }
  return { send, unchanged, sendBytes: send.reduce((sum, entry) => sum + entry.size, 0) };
}
