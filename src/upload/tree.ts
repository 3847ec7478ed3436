/**
 * Reading the upload on the runner, once for all hosts: a directory (walked
 * with lstat, symlinks never followed), an archive (see archive.ts) or a single
 * file. Every regular file is hashed once (in a worker thread for files on this
 * machine); nothing is held in memory.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { readArchive } from './archive.js';
import { type UploadEntry, contentListHash, sortEntries } from '../core/content-list.js';
import { UploadError } from './errors.js';
import { compileExcludes } from './exclude.js';
import type { Skipped, SourceReader } from './source.js';

export { UploadError } from './errors.js';
export type { Skipped } from './source.js';

export interface UploadSource {
  /** Absolute path on the runner. */
  root: string;
  kind: 'dir' | 'archive' | 'file';
  /** Sorted by path; what lands in releases/<tag>/. */
  entries: UploadEntry[];
  /** What is not transferred (setuid bits, devices, FIFOs, sockets); excluded paths are simply not listed. */
  skipped: Skipped[];
  /** contentListHash(entries). */
  listHash: string;
  /** Sum of the files' sizes. */
  totalBytes: number;
  /** Where the files' bytes come from. */
  reader: SourceReader;
}

const UPLOAD_FORM = 'a directory, a .tar, .tar.gz or .tgz archive, or a single file on the runner';
const READABLE = 'files and directories the runner can read';
const ARCHIVE_NAME = /\.(tar|tar\.gz|tgz)$/i;
/** Reads while hashing (synchronous, one buffer). */
const HASH_CHUNK = 1 << 20;

function unreadable(path: string, error: unknown): UploadError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  const problem = code === 'ENOENT' ? 'disappeared while being read' : code === 'ELOOP' ? 'became a symlink while being read' : `cannot be read (${code})`;
  return new UploadError(`'${path}' ${problem}`, READABLE, path);
}

function changedWhileRead(path: string, expectedSize: number, size: number): UploadError {
  return new UploadError(`'${path}' changed while being read (${expectedSize} bytes, then ${size})`, 'files left alone while tagflip reads them', path);
}

/**
 * The hashing of the files on this machine, run in a worker thread: it goes on while
 * the hosts connect (their SSH handshakes need the main thread), and the hashes
 * are needed only once the facts are in. Synchronous reads: from the page
 * cache, thousands of small files are read several times faster than through
 * the thread pool. Plain JavaScript, so that the bundle can start it as it is.
 * Answers with every hash in order, or with the first file that could not be
 * read (its index and error code) or that had changed size.
 */
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { closeSync, constants, openSync, readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buffer = Buffer.allocUnsafe(workerData.chunk);
function hashAll() {
  const hashes = [];
  for (let index = 0; index < workerData.files.length; index += 1) {
    const [path, size] = workerData.files[index];
    const hash = createHash('sha256');
    let fd;
    let read = 0;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      for (;;) {
        // What is left plus one byte, to see a file that grew; a short read is the end.
        const wanted = Math.max(1, Math.min(buffer.length, size - read + 1));
        const got = readSync(fd, buffer, 0, wanted, null);
        hash.update(buffer.subarray(0, got));
        read += got;
        if (got < wanted) break;
      }
    } catch (error) {
      return { index, code: error.code || String(error) };
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (read !== size) return { index, read };
    hashes.push(hash.digest('hex'));
  }
  return { hashes };
}
parentPort.postMessage(hashAll());
`;

type HashAnswer = { hashes: string[] } | { index: number; code: string } | { index: number; read: number };

/** Hash `files` in a worker thread (HASH_WORKER); sets each entry's sha256. */
function hashFiles(files: readonly { entry: UploadEntry; absolute: string }[]): Promise<void> {
  if (files.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const worker = new Worker(HASH_WORKER, { eval: true, workerData: { chunk: HASH_CHUNK, files: files.map(({ entry, absolute }) => [absolute, entry.size]) } });
    // A run that ends early (every host failed to connect) does not wait for it.
    worker.unref();
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the hashing worker stopped (exit ${code}) before it answered`)));
    worker.once('message', (answer: HashAnswer) => {
      if ('hashes' in answer) {
        answer.hashes.forEach((sha256, index) => (files[index].entry.sha256 = sha256));
        resolve();
        return;
      }
      const { entry } = files[answer.index];
      if ('code' in answer) reject(unreadable(entry.path, Object.assign(new Error(answer.code), { code: answer.code })));
      else reject(changedWhileRead(entry.path, entry.size, answer.read));
    });
  });
}

function nameOf(raw: Buffer, directory: string): string {
  const name = raw.toString('utf8');
  if (!Buffer.from(name, 'utf8').equals(raw)) {
    const shown = directory ? `${directory}/${raw.toString('latin1')}` : raw.toString('latin1');
    throw new UploadError(`the name '${shown}' is not valid UTF-8`, 'file names in UTF-8', shown);
  }
  return name;
}

/**
 * Walk a directory: every entry with its type, mode and size, files not yet
 * hashed. Synchronous: it runs before any connection, with nothing else to do,
 * and lstat through the thread pool costs several times more per entry. Every
 * file and directory must be readable by the runner (access(2), so ACLs count):
 * an unreadable one is refused here, before connecting.
 */
function walkDirectory(root: string, excludes: readonly string[]) {
  const excluded = compileExcludes(excludes);
  const entries: UploadEntry[] = [];
  const skipped: Skipped[] = [];
  const files: { entry: UploadEntry; absolute: string }[] = [];
  const pending = [''];
  while (pending.length > 0) {
    const directory = pending.pop()!;
    const absoluteDir = join(root, directory);
    let raw: Buffer[];
    try {
      raw = readdirSync(absoluteDir, { encoding: 'buffer' });
    } catch (error) {
      throw unreadable(directory || '.', error);
    }
    for (const rawName of raw) {
      const name = nameOf(rawName, directory);
      const path = directory ? `${directory}/${name}` : name;
      const absolute = join(absoluteDir, name);
      let stats;
      try {
        stats = lstatSync(absolute);
      } catch (error) {
        throw unreadable(path, error);
      }
      if (excluded(path, stats.isDirectory())) continue;
      const special = stats.mode & 0o7000;
      if (special && (stats.isFile() || stats.isDirectory())) skipped.push({ path, why: 'setuid/setgid/sticky bits dropped' });
      const mode = stats.mode & 0o777;
      if (stats.isDirectory()) {
        entries.push({ path, type: 'dir', mode, size: 0, sha256: '' });
        pending.push(path);
      } else if (stats.isSymbolicLink()) {
        let target: string;
        try {
          target = readlinkSync(absolute);
        } catch (error) {
          throw unreadable(path, error);
        }
        entries.push({ path, type: 'symlink', mode: 0o777, size: 0, sha256: createHash('sha256').update(target).digest('hex'), target });
      } else if (stats.isFile()) {
        try {
          accessSync(absolute, constants.R_OK);
        } catch (error) {
          throw unreadable(path, error);
        }
        const entry: UploadEntry = { path, type: 'file', mode, size: stats.size, sha256: '' };
        entries.push(entry);
        files.push({ entry, absolute });
      } else {
        const kind = stats.isFIFO() ? 'FIFO' : stats.isSocket() ? 'socket' : 'device file';
        skipped.push({ path, why: `${kind}: not transferred` });
      }
    }
  }
  return { entries, skipped, files };
}

/** Files on this machine: tar.ts reads each where it is. */
function localFiles(pathOf: (entry: UploadEntry) => string): SourceReader {
  return { kind: 'local', pathOf };
}

function sortSkipped(skipped: Skipped[]): Skipped[] {
  return skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function source(root: string, kind: UploadSource['kind'], entries: UploadEntry[], skipped: Skipped[], reader: SourceReader): UploadSource {
  sortEntries(entries);
  return {
    root,
    kind,
    entries,
    skipped: sortSkipped(skipped),
    listHash: contentListHash(entries),
    totalBytes: entries.reduce((sum, entry) => sum + entry.size, 0),
    reader,
  };
}

/**
 * An upload checked and listed, its files still being hashed: what can be
 * refused before connecting (a missing, empty or unreadable path, a hostile
 * archive) has been; `hashed` settles once every file's SHA-256 is known.
 */
export interface ScannedUpload {
  root: string;
  kind: UploadSource['kind'];
  /** Entries (files, directories, symlinks) and the sum of the files' sizes. */
  count: number;
  totalBytes: number;
  skipped: Skipped[];
  /** The whole source. Rejects (UploadError) only when a file changes or disappears while it is read. */
  hashed: Promise<UploadSource>;
}

function scanned(done: UploadSource): ScannedUpload {
  return { root: done.root, kind: done.kind, count: done.entries.length, totalBytes: done.totalBytes, skipped: done.skipped, hashed: Promise.resolve(done) };
}

/**
 * Check and list the upload once, for every host, and start hashing it; files
 * on this machine are hashed in the background (hashFiles), so the hosts can
 * connect meanwhile. `path` is absolute, or relative to the working directory.
 * Throws UploadError (the input named) when the path is missing, empty,
 * unreadable, or an archive with a hostile member.
 */
export async function scanUpload(path: string, excludes: readonly string[]): Promise<ScannedUpload> {
  const root = resolve(path);
  let stats;
  try {
    stats = await stat(root);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? String(error)})`;
    throw new UploadError(`'${path}' ${problem}`, UPLOAD_FORM);
  }

  if (stats.isDirectory()) {
    const { entries, skipped, files } = walkDirectory(root, excludes);
    if (entries.length === 0) {
      const why = excludes.some((line) => line.trim() !== '' && !line.trim().startsWith('#')) ? 'nothing is left after upload-exclude' : 'it is empty';
      throw new UploadError(`directory '${path}' has nothing to upload (${why})`, UPLOAD_FORM);
    }
    return hashing(root, 'dir', entries, skipped, files, (entry) => join(root, entry.path));
  }
  if (!stats.isFile()) throw new UploadError(`'${path}' is neither a directory nor a regular file`, UPLOAD_FORM);

  if (ARCHIVE_NAME.test(root)) {
    let archive;
    try {
      archive = await readArchive(root, excludes);
    } catch (error) {
      if (error instanceof UploadError) throw error;
      throw unreadable(path, error);
    }
    if (archive.entries.length === 0) throw new UploadError(`archive '${path}' has nothing to upload (no members${excludes.length ? ' left after upload-exclude' : ''})`, UPLOAD_FORM);
    return scanned(source(root, 'archive', archive.entries, archive.skipped, archive.reader));
  }

  const name = basename(root);
  const skipped: Skipped[] = stats.mode & 0o7000 ? [{ path: name, why: 'setuid/setgid/sticky bits dropped' }] : [];
  const entry: UploadEntry = { path: name, type: 'file', mode: stats.mode & 0o777, size: stats.size, sha256: '' };
  try {
    accessSync(root, constants.R_OK);
  } catch (error) {
    throw unreadable(path, error);
  }
  return hashing(root, 'file', [entry], skipped, [{ entry, absolute: root }], () => root);
}

/** A directory or single file, listed and checked: its files are hashed in the background (hashFiles) while the hosts connect. */
function hashing(root: string, kind: 'dir' | 'file', entries: UploadEntry[], skipped: Skipped[], files: { entry: UploadEntry; absolute: string }[], pathOf: (entry: UploadEntry) => string): ScannedUpload {
  const hashed = hashFiles(files).then(() => source(root, kind, entries, skipped, localFiles(pathOf)));
  // Seen by whoever awaits it; not an unhandled rejection when every host failed before.
  hashed.catch(() => undefined);
  const totalBytes = files.reduce((sum, { entry }) => sum + entry.size, 0);
  return { root, kind, count: entries.length, totalBytes, skipped: sortSkipped(skipped), hashed };
}

/** Check, list and hash the upload: scanUpload, then its hashes. */
export async function readUpload(path: string, excludes: readonly string[]): Promise<UploadSource> {
  return (await scanUpload(path, excludes)).hashed;
}
