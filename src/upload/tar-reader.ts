/**
 * Reading tar archives in Node (zlib for gzip, this file for tar): ustar, pax
 * extended headers (`x`; global `g` ones are skipped) and GNU long names (`L`,
 * `K`). Memory stays flat: file data is handed on chunk by chunk, never held.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);
/** A pax or GNU long-name member larger than this is not a name: refuse rather than hold it. */
const MAX_META = 1 << 20;

export class TarFormatError extends Error {}

/** Sequential reads over a stream of chunks, counting the bytes consumed. */
export class ByteReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private head: Buffer = EMPTY;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.head.length === 0) {
      const next = await this.chunks.next();
      if (next.done) return false;
      this.head = next.value;
    }
    return true;
  }

  /** Exactly `count` bytes, or null at a clean end of the stream. */
  async read(count: number): Promise<Buffer | null> {
    const out = Buffer.alloc(count);
    let filled = 0;
    while (filled < count) {
      if (!(await this.fill())) {
        if (filled === 0) return null;
        throw new TarFormatError(`truncated at byte ${this.position}`);
      }
      const part = this.head.subarray(0, count - filled);
      part.copy(out, filled);
      filled += part.length;
      this.head = this.head.subarray(part.length);
      this.position += part.length;
    }
    return out;
  }

  /** The next `count` bytes, chunk by chunk (views, not copies). */
  async *take(count: number): AsyncGenerator<Buffer> {
    let left = count;
    while (left > 0) {
      if (!(await this.fill())) throw new TarFormatError(`truncated at byte ${this.position}`);
      const part = this.head.subarray(0, left);
      this.head = this.head.subarray(part.length);
      this.position += part.length;
      left -= part.length;
      yield part;
    }
  }

  async skip(count: number): Promise<void> {
    let left = count;
    while (left > 0) {
      if (!(await this.fill())) throw new TarFormatError(`truncated at byte ${this.position}`);
      const length = Math.min(left, this.head.length);
      this.head = this.head.subarray(length);
      this.position += length;
      left -= length;
    }
  }

  async close(): Promise<void> {
    await this.chunks.return?.();
  }
}

/** Whether the file starts with the gzip magic (the name may lie; the bytes do not). */
export async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await handle.read(magic, 0, 2, 0);
    return bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** The tar bytes of an archive file, decompressed when gzip. */
export function tarBytes(file: string, gzip: boolean): Readable {
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  if (!gzip) return raw;
  // pipeline() carries a read error of the file into the gunzip stream, and
  // destroying the gunzip stream (an early stop) closes the file.
  return pipeline(raw, createGunzip({ chunkSize: 1 << 17 }), () => {});
}

export type TarType = 'file' | 'hardlink' | 'symlink' | 'dir' | 'chardev' | 'blockdev' | 'fifo' | 'other';

export interface TarMember {
  /** The name as recorded (pax `path`, GNU long name, or ustar prefix + name). */
  name: string;
  linkname: string;
  type: TarType;
  /** The type flag as written, for messages about unsupported members. */
  flag: string;
  mode: number;
  size: number;
  /** Offset of the member's data in the (decompressed) tar stream. */
  offset: number;
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

function number(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if (field[0] & 0x80) {
    // GNU base-256, for sizes past the 11 octal digits (8 GiB).
    let value = field[0] & 0x7f;
    for (let i = 1; i < length; i += 1) value = value * 256 + field[i];
    return value;
  }
  const digits = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (digits === '') return 0;
  if (!/^[0-7]+$/.test(digits)) throw new TarFormatError(`a header field is not an octal number ('${digits}')`);
  return parseInt(digits, 8);
}

function checksumMatches(block: Buffer): boolean {
  let recorded: number;
  try {
    recorded = number(block, 148, 8);
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i += 1) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return recorded === unsigned || recorded === signed;
}

const TYPES: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'chardev',
  '4': 'blockdev',
  '5': 'dir',
  '6': 'fifo',
};

/** Pax records `<length> <key>=<value>\n`. */
function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = parseInt(data.subarray(at, space).toString('latin1'), 10);
    if (!Number.isInteger(length) || length <= space - at || at + length > data.length) throw new TarFormatError('a pax header record is malformed');
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1));
    at += length;
  }
  return records;
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * The members of a tar stream, in order. The caller may read a member's data
 * with `reader.take(member.size)` before asking for the next member; whatever
 * it leaves unread is skipped.
 */
export async function* tarMembers(reader: ByteReader): AsyncGenerator<TarMember> {
  let pax = new Map<string, string>();
  let longName: string | null = null;
  let longLink: string | null = null;
  for (;;) {
    const block = await reader.read(BLOCK);
    // Two zero blocks end the archive; a missing end (a stream cut at a member boundary) is tolerated as GNU tar does.
    if (block === null || block.every((byte) => byte === 0)) return;
    if (!checksumMatches(block)) throw new TarFormatError(`no valid tar header at byte ${reader.position - BLOCK}`);
    const flag = String.fromCharCode(block[156]);
    let size = number(block, 124, 12);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw new TarFormatError(`a '${flag}' header of ${size} bytes is too large`);
      const data = (await reader.read(size + padding(size))) ?? EMPTY;
      if (data.length < size) throw new TarFormatError(`truncated at byte ${reader.position}`);
      const body = data.subarray(0, size);
      if (flag === 'x') pax = parsePax(body);
      else if (flag === 'L') longName = text(body, 0, size);
      else if (flag === 'K') longLink = text(body, 0, size);
      continue;
    }
    const magic = block.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? text(block, 345, 155) : '';
    const shortName = text(block, 0, 100);
    const name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
    const linkname = pax.get('linkpath') ?? longLink ?? text(block, 157, 100);
    if (pax.has('size')) size = Number(pax.get('size'));
    if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`member '${name}' has an invalid size`);
    const type = TYPES[flag] ?? 'other';
    // Only regular files carry data; other members declare size 0, but skip whatever they say.
    const member: TarMember = { name, linkname, type, flag, mode: number(block, 100, 8), size: type === 'file' ? size : 0, offset: reader.position };
    pax = new Map();
    longName = null;
    longLink = null;
    yield member;
    const end = member.offset + size + padding(size);
    if (reader.position > end) throw new Error(`read past member '${name}'`);
    await reader.skip(end - reader.position);
  }
}
