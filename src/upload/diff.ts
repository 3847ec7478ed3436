import type { ListedContent, UploadEntry } from '../core/content-list.js';
import type { UploadSource } from './tree.js';

export interface UploadPlan {
  /** New or changed entries; directories and symlinks are always sent (they cost only a header). */
  send: UploadEntry[];
  /** Regular files identical (path, type, mode, size, sha256) in the current release's list, and still as uploaded on the host: copied there. */
  unchanged: UploadEntry[];
  /** Sum of send[].size. */
  sendBytes: number;
}

/** What to send to a host whose current release's content list is `previous` (null: none, or not from an upload). */
export function planUpload(source: UploadSource, previous: ListedContent | null): UploadPlan {
  const send: UploadEntry[] = [];
  const unchanged: UploadEntry[] = [];
  source.entries.forEach((entry, index) => {
    const same = previous !== null && entry.type === 'file' && previous.files.has(entry.path) && previous.lines.has(source.lines[index]);
    (same ? unchanged : send).push(entry);
  });
  return { send, unchanged, sendBytes: send.reduce((sum, entry) => sum + entry.size, 0) };
}
