import type { UploadEntry } from '../core/content-list.js';

/** Something on the runner that is not transferred, and why (for the log). */
export interface Skipped {
  path: string;
  why: string;
}

/**
 * How a source gives back the bytes of its files. Files that lie on this
 * machine (a directory, a single file) are read where they are, by the tar
 * itself, synchronously, straight into the buffers it sends (tar.ts).
 */
export interface LocalFiles {
  kind: 'local';
  /** Where a file entry is on this machine. */
  pathOf(entry: UploadEntry): string;
}

/** An archive's members, read from it. */
export interface ArchiveMembers {
  kind: 'archive';
  /** The bytes of one file entry. */
  open(entry: UploadEntry): NodeJS.ReadableStream;
  /**
   * The bytes of many file entries, in the order that is cheapest for the archive
   * (one pass over a compressed one), each to be read to its end before the next is asked for.
   */
  openEach(entries: readonly UploadEntry[]): AsyncIterable<{ entry: UploadEntry; data: AsyncIterable<Buffer> }>;
}

export type SourceReader = LocalFiles | ArchiveMembers;

/** openEach for an archive whose members are cheap to open in any order: the order asked. */
export function inOrder(open: (entry: UploadEntry) => NodeJS.ReadableStream): ArchiveMembers['openEach'] {
  return async function* (wanted) {
    for (const entry of wanted) yield { entry, data: open(entry) as AsyncIterable<Buffer> };
  };
}
