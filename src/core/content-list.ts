import { createHash } from 'node:crypto';

export type EntryType = 'file' | 'dir' | 'symlink';

/** One thing that lands in releases/<tag>/. */
export interface UploadEntry {
  /** Relative, '/'-separated, no leading './', never '' (the root itself is not an entry); as read (no Unicode normalisation). */
  path: string;
  type: EntryType;
  /** Permission bits only (0o777): setuid, setgid and sticky are never transferred. */
  mode: number;
  /** Bytes for files, 0 otherwise. */
  size: number;
  /** Hex SHA-256 of the file's bytes; of the link text for a symlink; '' for a directory. */
  sha256: string;
  /** Symlinks only: the link text, never followed. */
  target?: string;
}

/**
 * Order paths as a tree is walked: a directory, then everything under it, then
 * its next sibling ('a', 'a/x', 'a b' rather than 'a', 'a b', 'a/x'). Comparing
 * with '/' as the lowest character does that; a tar stream in this order never
 * has to go back into a directory it has left.
 */
export function comparePaths(a: string, b: string): number {
  const left = a.replaceAll('/', '\0');
  const right = b.replaceAll('/', '\0');
  return left < right ? -1 : left > right ? 1 : 0;
}

export function sortEntries<T extends { path: string }>(entries: T[]): T[] {
  return entries.sort((a, b) => comparePaths(a.path, b.path));
}

function renderEntry({ path, type, mode, size, sha256, target }: UploadEntry): string {
  // Fixed key order: the list's hash is the release's source identity.
  return JSON.stringify(type === 'symlink' ? { path, type, mode, size, sha256, target } : { path, type, mode, size, sha256 });
}

/** The content list written to .tagflip/releases/<tag>.files: one JSON object per line, sorted by path. */
export function renderContentList(entries: readonly UploadEntry[]): string {
  return sortEntries([...entries])
    .map((entry) => `${renderEntry(entry)}\n`)
    .join('');
}

const TYPES: readonly string[] = ['file', 'dir', 'symlink'];

function asEntry(value: unknown): UploadEntry | null {
  if (typeof value !== 'object' || value === null) return null;
  const { path, type, mode, size, sha256, target } = value as Record<string, unknown>;
  if (typeof path !== 'string' || path === '' || path.startsWith('/') || path.split('/').some((part) => part === '' || part === '.' || part === '..')) return null;
  if (typeof type !== 'string' || !TYPES.includes(type)) return null;
  if (!Number.isInteger(mode) || (mode as number) < 0 || (mode as number) > 0o777) return null;
  if (!Number.isSafeInteger(size) || (size as number) < 0) return null;
  if (typeof sha256 !== 'string' || !(type === 'dir' ? sha256 === '' : /^[0-9a-f]{64}$/.test(sha256))) return null;
  if (type === 'symlink') {
    if (typeof target !== 'string' || target === '') return null;
    return { path, type, mode: mode as number, size: size as number, sha256, target };
  }
  return { path, type: type as EntryType, mode: mode as number, size: size as number, sha256 };
}

/**
 * Read a content list back. Tolerant: a line that is not a well-formed entry is
 * ignored (the worst outcome is that a file is sent that could have been copied).
 */
export function parseContentList(text: string): UploadEntry[] {
  const entries = new Map<string, UploadEntry>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    const entry = asEntry(value);
    if (entry) entries.set(entry.path, entry);
  }
  return sortEntries([...entries.values()]);
}

/** SHA-256 (hex) of renderContentList(entries): the release's source identity for an upload. */
export function contentListHash(entries: readonly UploadEntry[]): string {
  return createHash('sha256').update(renderContentList(entries)).digest('hex');
}
