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
  return compareKeys(treeKey(a), treeKey(b));
}

const treeKey = (path: string) => path.replaceAll('/', '\0');
const compareKeys = (left: string, right: string) => (left < right ? -1 : left > right ? 1 : 0);

/** Sort in place, in tree order (comparePaths), each path's key made once rather than at every comparison. */
export function sortEntries<T extends { path: string }>(entries: T[]): T[] {
  const keyed = entries.map((entry) => ({ key: treeKey(entry.path), entry }));
  keyed.sort((a, b) => compareKeys(a.key, b.key));
  keyed.forEach(({ entry }, index) => (entries[index] = entry));
  return entries;
}

/** One line of the content list, without its newline. */
export function renderEntry({ path, type, mode, size, sha256, target }: UploadEntry): string {
  // Fixed key order: the list's hash is the release's source identity, and a
  // file is unchanged when its line is the same (ListedContent).
  return JSON.stringify(type === 'symlink' ? { path, type, mode, size, sha256, target } : { path, type, mode, size, sha256 });
}

/** A content list, .tagflip/releases/<tag>.files: one JSON object per line (renderEntry), in tree order. */
export interface ContentList {
  /** Each entry's line, without its newline, in the entries' (sorted) order. */
  lines: string[];
  /** The whole list, as written on the host. */
  text: Buffer;
  /** Its SHA-256 (hex): the release's source identity for an upload. */
  hash: string;
}

/** Entries rendered between two turns of the event loop (contentList). */
const LINES_PER_TURN = 1000;

/**
 * The content list of `entries`, which it sorts in place (sortEntries). For
 * thousands of entries that is some 15 ms of this thread, given up in slices:
 * it mostly runs while the hosts' handshakes are on their way, and must not
 * hold their packets.
 */
export async function contentList(entries: UploadEntry[]): Promise<ContentList> {
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  sortEntries(entries);
  const lines: string[] = [];
  for (let at = 0; at < entries.length; at += LINES_PER_TURN) {
    await turn();
    for (let index = at; index < Math.min(at + LINES_PER_TURN, entries.length); index += 1) lines.push(renderEntry(entries[index]));
  }
  await turn();
  const text = Buffer.from(lines.map((line) => `${line}\n`).join(''), 'utf8');
  return { lines, text, hash: createHash('sha256').update(text).digest('hex') };
}

/**
 * The current release's content list as its host sent it (facts.ts). It is
 * never parsed: a file of the new tree is unchanged when its own line
 * (renderEntry: path, type, mode, size and SHA-256, in a fixed order) is one
 * of these lines and the host still has it as uploaded (`files`). A line tagflip did not
 * write that way matches nothing, and its file is simply sent.
 */
export interface ListedContent {
  lines: ReadonlySet<string>;
  /** The regular files of the current release still as uploaded, on the identity the host recorded when it wrote them. */
  files: ReadonlySet<string>;
}

