/**
 * The tar stream a host extracts: POSIX ustar headers, with a pax extended
 * header only where ustar cannot say it (a name or link target longer than 100
 * bytes or not plain ASCII, a file of 8 GiB or more). Its exact size is known
 * before the first byte, so the wire can announce it; file bytes are streamed
 * from the source and counted, so a file that changed since it was hashed fails
 * the stream instead of shipping something else.
 *
 * Member order: directories first (made owner-writable so nothing below them is
 * refused), then files in the order the source reads best, then symlinks, then
 * the directories whose real mode is not owner-writable again, deepest first,
 * with that mode. GNU tar and BusyBox tar both create a directory again over an
 * existing one by setting its mode.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import type { UploadEntry } from '../core/content-list.js';
import { UploadError } from './errors.js';
import type { ArchiveMembers } from './source.js';
import type { UploadSource } from './tree.js';

const BLOCK = 512;
const END = Buffer.alloc(2 * BLOCK);
const MAX_OCTAL_SIZE = 0o77777777777;
const PLAIN = /^[\x20-\x7e]*$/;

/** A small member written from memory before the entries (e.g. a list the host script reads). */
export interface InlineMember {
  path: string;
  data: Buffer;
  mode?: number;
}

type Flag = '0' | '2' | '5' | 'x';

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;
/**
 * The size of the pieces a tar of local files is packed into. Every header,
 * file and padding is copied (a file read) straight into the piece being
 * filled: one buffer per 256 KiB instead of several per file, and no trip
 * through the thread pool for each of thousands of small files.
 */
const PIECE = 1 << 18;
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

function octal(block: Buffer, start: number, length: number, value: number): void {
  if (value > 8 ** (length - 1) - 1) {
    // GNU base-256: only for sizes; a pax `size` record says the same for strict readers.
    block[start] = 0x80;
    for (let i = length - 1, rest = value; i > 0; i -= 1, rest = Math.floor(rest / 256)) block[start + i] = rest % 256;
    return;
  }
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, start, length, 'latin1');
}

function ustar(name: string, flag: Flag, mode: number, size: number, mtime: number, linkname = ''): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, mode);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, size);
  octal(block, 136, 12, mtime);
  block.write(flag, 156, 1, 'latin1');
  block.write(linkname, 157, 100, 'utf8');
  block.write('ustar\x0000', 257, 8, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i += 1) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (`${length}`.length + Buffer.byteLength(body) !== length) length = `${length}`.length + Buffer.byteLength(body);
  return `${length}${body}`;
}

/** What a ustar field can hold as it is, so a reader without pax support still gets something sensible. */
const fits = (text: string) => PLAIN.test(text) && text.length <= 100;
const fallback = (text: string) => text.replace(/[^\x20-\x7e]/g, '_').slice(-100);

/** The pax records a member needs (what ustar cannot hold), or '' for none. */
function paxRecords(path: string, size: number, linkname: string): string {
  if (fits(path) && fits(linkname) && size <= MAX_OCTAL_SIZE) return '';
  return [fits(path) ? '' : paxRecord('path', path), fits(linkname) ? '' : paxRecord('linkpath', linkname), size > MAX_OCTAL_SIZE ? paxRecord('size', String(size)) : ''].join('');
}

/** The length of headerOf(path, …), without making it. */
function headerLength(path: string, size: number, linkname = ''): number {
  const records = paxRecords(path, size, linkname);
  if (records === '') return BLOCK;
  const length = Buffer.byteLength(records, 'utf8');
  return 2 * BLOCK + length + padding(length);
}

/** The header block(s) of one member: a pax header first when ustar cannot hold it. */
function headerOf(path: string, flag: Flag, mode: number, size: number, mtime: number, linkname = ''): Buffer {
  const records = paxRecords(path, size, linkname);
  const header = ustar(fits(path) ? path : fallback(path), flag, mode, size, mtime, fits(linkname) ? linkname : fallback(linkname));
  if (records === '') return header;
  const data = Buffer.from(records, 'utf8');
  return Buffer.concat([ustar(`PaxHeaders/${fallback(path)}`.slice(0, 100), 'x', 0o644, data.length, mtime), data, Buffer.alloc(padding(data.length)), header]);
}

function changed(entry: UploadEntry, sent: number): UploadError {
  const now = sent > entry.size ? `more than ${entry.size}` : `${sent}`;
  return new UploadError(`'${entry.path}' changed since it was read (${entry.size} bytes then, ${now} now)`, 'files left alone during the deploy', entry.path);
}

/** A POSIX (pax) tar stream of `entries`, of exactly `size` bytes (known before streaming). */
export function tarStream(
  source: UploadSource,
  entries: readonly UploadEntry[],
  inline: readonly InlineMember[] = [],
): { size: number; chunks(trailer?: Buffer): Iterable<Buffer> | AsyncIterable<Buffer>; reuse(piece: Buffer): void } {
  const dirs = entries.filter((entry) => entry.type === 'dir');
  const files = entries.filter((entry) => entry.type === 'file');
  const symlinks = entries.filter((entry) => entry.type === 'symlink');
  const lockedDirs = dirs.filter((entry) => (entry.mode & 0o700) !== 0o700).reverse();

  const fileHeader = (entry: UploadEntry, mtime: number) => headerOf(entry.path, '0', entry.mode, entry.size, mtime);
  /** What comes before the files and after them, in member order (see above). */
  const framing = (mtime: number) => {
    const dirHeader = (entry: UploadEntry, mode: number) => headerOf(`${entry.path}/`, '5', mode, 0, mtime);
    return {
      before: [
        ...inline.flatMap(({ path, data, mode = 0o600 }) => [headerOf(path, '0', mode, data.length, mtime), data, Buffer.alloc(padding(data.length))]),
        ...dirs.map((entry) => dirHeader(entry, entry.mode | 0o700)),
      ],
      after: [...symlinks.map((entry) => headerOf(entry.path, '2', 0o777, 0, mtime, entry.target ?? '')), ...lockedDirs.map((entry) => dirHeader(entry, entry.mode)), END],
    };
  };
  const bytes = (pieces: readonly Buffer[]) => pieces.reduce((sum, piece) => sum + piece.length, 0);
  const { before, after } = framing(0);
  const size = bytes(before) + files.reduce((sum, entry) => sum + headerLength(entry.path, entry.size) + entry.size + padding(entry.size), 0) + bytes(after);

  function unreadable(entry: UploadEntry, error: unknown): UploadError {
    if (error instanceof UploadError) return error;
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return new UploadError(`'${entry.path}' cannot be read any more (${code})`, 'files left alone during the deploy', entry.path);
  }

  /**
   * Pieces handed back once the connection has taken them (reuse()), to be
   * filled again: a piece is 256 KiB of memory the garbage collector would
   * otherwise have to find and free, 800 of them for 200 MB. Only whole
   * pieces made here come back; anyone else's buffers are left alone.
   */
  const made = new WeakSet<Buffer>();
  const spare: Buffer[] = [];
  const newPiece = () => {
    const piece = spare.pop() ?? Buffer.allocUnsafe(PIECE);
    made.add(piece);
    return piece;
  };
  const reuse = (piece: Buffer) => {
    if (made.delete(piece)) spare.push(piece);
  };

  /**
   * The same bytes as members(), for a source whose files lie on this machine:
   * packed synchronously into pieces of PIECE bytes, each file read straight
   * into its place (O_NOFOLLOW: a file swapped for a symlink since it was hashed
   * is not followed out of the tree).
   */
  function* packed(pathOf: (entry: UploadEntry) => string, trailer?: Buffer): Generator<Buffer> {
    // Extracted files get the time of the upload, as a fresh checkout would.
    const mtime = Math.floor(Date.now() / 1000);
    let piece = newPiece();
    let at = 0;
    function* put(bytes: Buffer): Generator<Buffer> {
      for (let from = 0; from < bytes.length; ) {
        const copied = bytes.copy(piece, at, from);
        at += copied;
        from += copied;
        if (at === PIECE) {
          yield piece;
          piece = newPiece();
          at = 0;
        }
      }
    }
    function* file(entry: UploadEntry): Generator<Buffer> {
      let fd: number;
      try {
        fd = openSync(pathOf(entry), NO_FOLLOW);
      } catch (error) {
        throw unreadable(entry, error);
      }
      try {
        for (let left = entry.size; left > 0; ) {
          let read: number;
          try {
            read = readSync(fd, piece, at, Math.min(PIECE - at, left), null);
          } catch (error) {
            throw unreadable(entry, error);
          }
          if (read === 0) throw changed(entry, entry.size - left);
          at += read;
          left -= read;
          if (at === PIECE) {
            yield piece;
            piece = newPiece();
            at = 0;
          }
        }
        // One byte more would mean the file grew since it was hashed.
        if (readSync(fd, Buffer.allocUnsafe(1), 0, 1, null) > 0) throw changed(entry, entry.size + 1);
      } finally {
        closeSync(fd);
      }
    }
    const { before, after } = framing(mtime);
    for (const chunk of before) yield* put(chunk);
    for (const entry of files) {
      yield* put(fileHeader(entry, mtime));
      yield* file(entry);
      yield* put(Buffer.alloc(padding(entry.size)));
    }
    for (const chunk of after) yield* put(chunk);
    if (trailer) yield* put(trailer);
    if (at > 0) yield piece.subarray(0, at);
  }

  async function* members(archive: ArchiveMembers): AsyncGenerator<Buffer> {
    const mtime = Math.floor(Date.now() / 1000);
    const { before, after } = framing(mtime);
    yield* before;
    let count = 0;
    for await (const { entry, data } of archive.openEach(files)) {
      yield fileHeader(entry, mtime);
      let sent = 0;
      try {
        for await (const chunk of data) {
          sent += chunk.length;
          if (sent > entry.size) throw changed(entry, sent);
          yield chunk;
        }
      } catch (error) {
        throw unreadable(entry, error);
      }
      if (sent !== entry.size) throw changed(entry, sent);
      yield Buffer.alloc(padding(entry.size));
      count += 1;
    }
    if (count !== files.length) throw new Error(`the source gave ${count} of ${files.length} files`);
    yield* after;
  }

  const { reader } = source;
  /**
   * The stream's pieces, then `trailer` (not counted in size): for files on
   * this machine a plain generator, with the trailer packed into the last
   * piece; nothing between it and the connection but the loop that writes.
   */
  function chunks(trailer?: Buffer): Iterable<Buffer> | AsyncIterable<Buffer> {
    if (reader.kind === 'local') return packed(reader.pathOf, trailer);
    const fromArchive = reader;
    return (async function* () {
      yield* members(fromArchive);
      if (trailer) yield trailer;
    })();
  }
  return { size, chunks, reuse };
}
