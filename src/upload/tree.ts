import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { type UploadEntry, contentListHash } from './content.js';

export interface UploadSource {
  root: string;
  kind: 'dir' | 'archive' | 'file';
  entries: UploadEntry[];
  skipped: { path: string; why: string }[];
  listHash: string;
  totalBytes: number;
  open(entry: UploadEntry): NodeJS.ReadableStream;
}

export class UploadError extends InputError {}

/** Read and hash the upload once (a directory only). */
export async function readUpload(path: string, excludes: readonly string[]): Promise<UploadSource> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    throw new UploadError('upload', `${path} does not exist`, 'a directory or file on the runner');
  }
  if (!stat.isDirectory()) throw new UploadError('upload', `${path} is not a directory`, 'a directory on the runner');
  const skip = new Set(['.git', ...excludes.map((line) => line.replace(/\/+$/, ''))]);
  const entries: UploadEntry[] = [];
  const walk = (relative: string) => {
    let names: string[];
    try {
      names = readdirSync(join(path, relative));
    } catch {
      throw new UploadError('upload', `cannot read ${join(path, relative)}`, 'a readable directory');
    }
    for (const name of names.sort()) {
      const rel = relative ? `${relative}/${name}` : name;
      if (skip.has(rel) || skip.has(name)) continue;
      const full = join(path, rel);
      const info = lstatSync(full);
      const mode = info.mode & 0o777;
      if (info.isDirectory()) {
        entries.push({ path: rel, type: 'dir', mode, size: 0, sha256: '' });
        walk(rel);
      } else if (info.isSymbolicLink()) {
        const target = readlinkSync(full);
        entries.push({ path: rel, type: 'symlink', mode, size: 0, sha256: createHash('sha256').update(target).digest('hex'), target });
      } else if (info.isFile()) {
        let bytes: Buffer;
        try {
          bytes = readFileSync(full);
        } catch {
          throw new UploadError('upload', `cannot read ${full}`, 'readable files');
        }
        entries.push({ path: rel, type: 'file', mode, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      }
    }
  };
  walk('');
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (entries.length === 0) throw new UploadError('upload', `${path} is empty`, 'a directory with something to deploy');
  return {
    root: path,
    kind: 'dir',
    entries,
    skipped: [],
    listHash: contentListHash(entries),
    totalBytes: entries.reduce((sum, entry) => sum + entry.size, 0),
    open: (entry) => createReadStream(join(path, entry.path)),
  };
}
