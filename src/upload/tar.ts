import { Readable } from 'node:stream';
import type { UploadEntry } from './content.js';
import type { UploadSource } from './tree.js';

const BLOCK = 512;

function header(name: string, mode: number, size: number, type: string, link = ''): Buffer {
  const block = Buffer.alloc(BLOCK);
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, '0');
  block.write(name, 0, 100, 'utf8');
  block.write(octal(mode, 8), 100);
  block.write(octal(0, 8), 108);
  block.write(octal(0, 8), 116);
  block.write(octal(size, 12), 124);
  block.write(octal(0, 12), 136);
  block.fill(' ', 148, 156);
  block.write(type, 156);
  block.write(link, 157, 100, 'utf8');
  block.write('ustar\u000000', 257, 'binary');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${octal(sum, 7)}\u0000`, 148, 'binary');
  return block;
}

function pax(entry: UploadEntry): Buffer {
  const records = [`path=${entry.path}`, ...(entry.target !== undefined ? [`linkpath=${entry.target}`] : [])].map((field) => {
    const body = ` ${field}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (Buffer.byteLength(`${length}${body}`) !== length) length++;
    return `${length}${body}`;
  });
  const data = Buffer.from(records.join(''), 'utf8');
  return Buffer.concat([header('PaxHeader', 0o644, data.length, 'x'), data, Buffer.alloc(padding(data.length))]);
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

function headers(entry: UploadEntry): Buffer {
  const type = entry.type === 'file' ? '0' : entry.type === 'dir' ? '5' : '2';
  const name = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  return Buffer.concat([pax(entry), header(name.slice(0, 99), entry.mode, entry.type === 'file' ? entry.size : 0, type, (entry.target ?? '').slice(0, 99))]);
}

/** A tar stream of `entries` (in order), of exactly `size` bytes. */
export function tarStream(source: UploadSource, entries: readonly UploadEntry[]): { size: number; stream(): NodeJS.ReadableStream } {
  const size = entries.reduce((sum, entry) => sum + headers(entry).length + (entry.type === 'file' ? entry.size + padding(entry.size) : 0), 0) + 2 * BLOCK;
  return {
    size,
    stream: () =>
      Readable.from(
        (async function* () {
          for (const entry of entries) {
            yield headers(entry);
            if (entry.type !== 'file') continue;
            for await (const chunk of source.open(entry)) yield chunk as Buffer;
            yield Buffer.alloc(padding(entry.size));
          }
          yield Buffer.alloc(2 * BLOCK);
        })(),
      ),
  };
}
