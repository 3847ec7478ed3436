import { createHash } from 'node:crypto';

export type EntryType = 'file' | 'dir' | 'symlink';

export interface UploadEntry {
  /** Relative, '/'-separated, no leading './', never ''. */
  path: string;
  type: EntryType;
  /** Permission bits only. */
  mode: number;
  /** Bytes for files, 0 otherwise. */
  size: number;
  /** Hex SHA-256 of a file's bytes, of a symlink's target; '' for dirs. */
  sha256: string;
  /** Symlinks only: the link text. */
  target?: string;
}

/** The content list written to .tagflip/releases/<tag>.files: one JSON object per line, sorted by path. */
export function renderContentList(entries: readonly UploadEntry[]): string {
  return entries.map((entry) => `${JSON.stringify(entry)}\n`).join('');
}

export function parseContentList(text: string): UploadEntry[] {
  const entries: UploadEntry[] = [];
  for (const line of text.split('\n')) {
    try {
      const entry = JSON.parse(line) as UploadEntry;
      if (typeof entry.path === 'string' && entry.path && ['file', 'dir', 'symlink'].includes(entry.type)) entries.push(entry);
    } catch {
      // tolerant: a bad line is left out
    }
  }
  return entries;
}

/** SHA-256 (hex) of renderContentList(entries). */
export function contentListHash(entries: readonly UploadEntry[]): string {
  return createHash('sha256').update(renderContentList(entries)).digest('hex');
}
