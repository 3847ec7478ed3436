import type { UploadEntry } from './content.js';

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
}

/** openEach for a source whose files are cheap to open in any order: the order asked. */
export function inOrder(open: (entry: UploadEntry) => NodeJS.ReadableStream): SourceReader['openEach'] {
  return async function* (wanted) {
    for (const entry of wanted) yield { entry, data: open(entry) as AsyncIterable<Buffer> };
  };
}
