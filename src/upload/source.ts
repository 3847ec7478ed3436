import type { UploadEntry } from '../core/content-list.js';

/** Something on the runner that is not transferred, and why (for the log). */
export interface Skipped {
  path: string;
  why: string;
}

/** How a source gives back the bytes of its files. */
export interface SourceReader {
  /** The bytes of one file entry. */
  open(entry: UploadEntry): NodeJS.ReadableStream;
  /**
   * The bytes of many file entries, in the order that is cheapest for the source
   * (one pass over a compressed archive), each to be read to its end before the next is asked for.
   */
  openEach(entries: readonly UploadEntry[]): AsyncIterable<{ entry: UploadEntry; data: AsyncIterable<Buffer> }>;
  /**
   * Where a file entry is on this machine, for a source whose files can be read
   * where they lie (a directory, a single file): the tar then reads them itself,
   * synchronously, straight into the buffers it sends (tar.ts). Absent for an archive.
   */
  pathOf?(entry: UploadEntry): string;
}

/** openEach for a source whose files are cheap to open in any order: the order asked. */
export function inOrder(open: (entry: UploadEntry) => NodeJS.ReadableStream): SourceReader['openEach'] {
  return async function* (wanted) {
    for (const entry of wanted) yield { entry, data: open(entry) as AsyncIterable<Buffer> };
  };
}
