/**
 * Reading the upload on the runner, once for all hosts: a directory (walked
 * with lstat, symlinks never followed), an archive (see archive.ts) or a single
 * file. Every regular file is hashed once (for files on this machine, by a
 * worker thread started before the walk, largest files first, and by this
 * thread from the smallest up); nothing is held in memory.
 */
import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { readArchive } from './archive.js';
import { type UploadEntry, contentList } from '../core/content-list.js';
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
  /** Each entry's line of the content list (renderEntry), in the same order. */
  lines: string[];
  /** The content list, as it is written on the host. */
  list: Buffer;
  /** Its SHA-256: the release's source identity. */
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
 * Hashing one file, in the text both hashing threads run (HASH_WORKER, and
 * this thread, as hashSteps): what is left plus one byte is asked for, to
 * see a file that grew; a short read is the end. Synchronous reads: from the
 * page cache, thousands of small files are read several times faster than
 * through the thread pool. A step is one read of up to a buffer (1 MiB), so
 * that this thread can hash a large file in slices (hashFiles). Plain
 * JavaScript, so that the bundle can start it as it is. Gives the digest, or
 * the error code, or how much there was to read.
 */
const HASH_STEPS = `function* hashSteps(fs, createHash, buffer, path, size) {
  const hash = createHash('sha256');
  let fd;
  let read = 0;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    for (;;) {
      const wanted = Math.max(1, Math.min(buffer.length, size - read + 1));
      const got = fs.readSync(fd, buffer, 0, wanted, null);
      hash.update(buffer.subarray(0, got));
      read += got;
      if (got < wanted) break;
      yield;
    }
  } catch (error) {
    return { code: error.code || String(error) };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return read === size ? { digest: hash.digest() } : { read };
}
function hashOne(fs, createHash, buffer, path, size) {
  const steps = hashSteps(fs, createHash, buffer, path, size);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}`;

type HashResult = { digest: Buffer } | { code: string } | { read: number };
type HashSteps = (fs: Pick<typeof import('node:fs'), 'openSync' | 'readSync' | 'closeSync' | 'constants'>, hash: typeof createHash, buffer: Buffer, path: string, size: number) => Generator<undefined, HashResult>;
const hashSteps = new Function(`${HASH_STEPS}\nreturn hashSteps;`)() as HashSteps;
const FS = { openSync, readSync, closeSync, constants };

/**
 * The hashing thread. It is started before the walk (a worker takes some 35 ms
 * to start) and waits for its files: the list, largest first, which it takes
 * from the front while this thread may take from the back (hashFiles). Each
 * file is claimed with one compare-and-swap, so exactly one thread hashes it,
 * and the digest goes in its place in the shared array. Answers `done` once it
 * meets a file the other thread has (that one and all after it are claimed),
 * or the first file that could not be read (its index and error code) or that
 * had changed size; a failure on either side stops both (claims[0]).
 */
const HASH_WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
${HASH_STEPS}
parentPort.once('message', ({ chunk, claims: shared, digests: digestBytes, files }) => {
  const buffer = Buffer.allocUnsafe(chunk);
  const claims = new Int32Array(shared);
  const digests = new Uint8Array(digestBytes);
  const hashAll = () => {
    for (let index = 0; index < files.length; index += 1) {
      if (Atomics.load(claims, 0) !== 0 || Atomics.compareExchange(claims, index + 1, 0, 1) !== 0) break;
      const [path, size] = files[index];
      const result = hashOne(fs, createHash, buffer, path, size);
      if (!result.digest) {
        Atomics.store(claims, 0, 1);
        return { index, ...result };
      }
      digests.set(result.digest, index * 32);
    }
    return { done: true };
  };
  parentPort.postMessage(hashAll());
});
`;

type HashAnswer = { done: true } | { index: number; code: string } | { index: number; read: number };

/**
 * How long this thread hashes before it lets the event loop run: while the
 * hosts connect (their handshakes need this thread), short slices; once
 * nothing but the hashes is left to wait for (HashJob.done), longer ones.
 */
const HELP_SLICE_MS = { connecting: 2, done: 8 };

interface HashJob {
  /** Settles once every file's sha256 is set: hashing on this thread too, from the back of the list, until no file is left. */
  done(): Promise<void>;
  /** Settles once every file's sha256 is set, whoever hashed them. */
  finished: Promise<void>;
  /** How many files this thread hashed. */
  hashedHere(): number;
}

interface HashedFile {
  entry: UploadEntry;
  absolute: string;
}

/** The hashing thread, started before it has its files (HASH_WORKER); hash() gives them, stop() ends it unused. */
interface Hasher {
  hash(files: readonly HashedFile[]): HashJob;
  stop(): void;
}

function startHasher(): Hasher {
  const thread = new Worker(HASH_WORKER, { eval: true });
  // A run that ends early (a bad input, every host failed to connect) does not wait for it.
  thread.unref();
  const answer = new Promise<HashAnswer>((resolve, reject) => {
    thread.once('error', reject);
    thread.once('exit', (code) => reject(new Error(`the hashing worker stopped (exit ${code}) before it answered`)));
    thread.once('message', resolve);
  });
  answer.catch(() => undefined);
  const stop = () => void thread.terminate();
  return {
    stop,
    hash(files) {
      if (files.length === 0) {
        stop();
        return { done: () => Promise.resolve(), finished: Promise.resolve(), hashedHere: () => 0 };
      }
      return hashFiles(files, thread, answer);
    },
  };
}

/**
 * Hash `files` in the hashing thread, largest first, and on this thread from
 * the smallest up: a little while the hosts connect, then all that is left once
 * done() is called. Sets each entry's sha256.
 */
function hashFiles(files: readonly HashedFile[], thread: Worker, answer: Promise<HashAnswer>): HashJob {
  const ordered = [...files].sort((a, b) => b.entry.size - a.entry.size);
  const claims = new Int32Array(new SharedArrayBuffer(4 * (ordered.length + 1)));
  const digests = new Uint8Array(new SharedArrayBuffer(32 * ordered.length));
  const failure = (index: number, result: { code: string } | { read: number }) => {
    const { entry } = ordered[index];
    return 'code' in result ? unreadable(entry.path, Object.assign(new Error(result.code), { code: result.code })) : changedWhileRead(entry.path, entry.size, result.read);
  };
  thread.postMessage({ chunk: HASH_CHUNK, claims: claims.buffer, digests: digests.buffer, files: ordered.map(({ entry, absolute }) => [absolute, entry.size]) });
  const worker = answer.then((result) => {
    if (!('done' in result)) throw failure(result.index, result);
  });

  let asked = false;
  let back = ordered.length - 1;
  let here = 0;
  /** The file this thread is hashing, a read at a time, across slices. */
  let current: { index: number; steps: Generator<undefined, HashResult> } | null = null;
  const buffer = Buffer.allocUnsafe(HASH_CHUNK);
  /** The pause between two slices while connecting (done() makes it keep the process alive). */
  let nap: NodeJS.Timeout | null = null;
  /** One helping run: until the files meet the thread's (or a failure stops both). */
  const helper = async () => {
    for (;;) {
      const until = performance.now() + (asked ? HELP_SLICE_MS.done : HELP_SLICE_MS.connecting);
      while (performance.now() < until) {
        if (Atomics.load(claims, 0) !== 0) {
          current?.steps.return({ read: 0 });
          current = null;
          return;
        }
        if (!current) {
          if (back < 0 || Atomics.compareExchange(claims, back + 1, 0, 1) !== 0) return;
          const { entry, absolute } = ordered[back];
          current = { index: back, steps: hashSteps(FS, createHash, buffer, absolute, entry.size) };
          back -= 1;
        }
        const step = current.steps.next();
        if (!step.done) continue;
        const { index } = current;
        current = null;
        const result = step.value;
        if (!('digest' in result)) {
          Atomics.store(claims, 0, 1);
          throw failure(index, result);
        }
        digests.set(result.digest, index * 32);
        here += 1;
      }
      // While connecting, the pause does not keep the process alive: a run that
      // ends early (every host failed to connect) does not wait for the hashes.
      await new Promise((resolve) => {
        if (asked) setImmediate(resolve);
        else nap = setTimeout(resolve, 0).unref();
      });
      nap = null;
    }
  };
  let helping: Promise<void> = Promise.resolve();
  let active = false;
  /** This thread's failure, kept: a later helping run finds nothing to do, and must not hide it. */
  let failed: unknown = null;
  const help = () => {
    if (active) return;
    active = true;
    helping = helper()
      .catch((error: unknown) => {
        failed ??= error;
      })
      .finally(() => (active = false));
  };
  const settled = () => {
    if (failed) throw failed;
  };
  // Once the thread answers, every file is claimed; this thread may still be
  // reading its last one (a large file goes in slices), so its run is awaited.
  const finished = worker
    .then(() => helping)
    .then(() => {
      settled();
      ordered.forEach(({ entry }, index) => (entry.sha256 = Buffer.from(digests.buffer, index * 32, 32).toString('hex')));
    });
  // Seen by whoever calls done(); not an unhandled rejection when nobody does (every host failed before).
  finished.catch(() => undefined);
  setImmediate(help);
  return {
    done: () => {
      asked = true;
      nap?.ref();
      help();
      // Either failure is the run's: the first one rejects.
      return Promise.all([helping.then(settled), finished]).then(() => undefined);
    },
    finished,
    hashedHere: () => here,
  };
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
  const files: HashedFile[] = [];
  const owner = process.getuid?.();
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
        // Root reads any file here (should a file system refuse it, hashing it
        // fails, still before anything changes on a host). The owner's read bit
        // answers for the owner (an ACL does not change it); access(2) for anyone else.
        if (!(owner === 0 || (owner !== undefined && stats.uid === owner && stats.mode & 0o400))) {
          try {
            accessSync(absolute, constants.R_OK);
          } catch (error) {
            throw unreadable(path, error);
          }
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

/** The upload whole: entries sorted, their content list made (contentList, in slices). */
async function source(root: string, kind: UploadSource['kind'], entries: UploadEntry[], skipped: Skipped[], reader: SourceReader): Promise<UploadSource> {
  const { lines, text, hash } = await contentList(entries);
  return {
    root,
    kind,
    entries,
    skipped: sortSkipped(skipped),
    lines,
    list: text,
    listHash: hash,
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
  /**
   * The whole source, with this thread hashing too until the hashes are in:
   * for when nothing else is left to do before them (the hosts' handshakes
   * need this thread). Rejects (UploadError) only when a file changes or
   * disappears while it is read.
   */
  hashed(): Promise<UploadSource>;
  /** How many files this thread hashed (the rest, the worker). */
  hashedHere(): number;
}

function scanned(done: UploadSource): ScannedUpload {
  return { root: done.root, kind: done.kind, count: done.entries.length, totalBytes: done.totalBytes, skipped: done.skipped, hashed: () => Promise.resolve(done), hashedHere: () => 0 };
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
    // It starts while the tree is walked.
    const hasher = startHasher();
    try {
      const { entries, skipped, files } = walkDirectory(root, excludes);
      if (entries.length === 0) {
        const why = excludes.some((line) => line.trim() !== '' && !line.trim().startsWith('#')) ? 'nothing is left after upload-exclude' : 'it is empty';
        throw new UploadError(`directory '${path}' has nothing to upload (${why})`, UPLOAD_FORM);
      }
      return hashing(hasher, root, 'dir', entries, skipped, files, (entry) => join(root, entry.path));
    } catch (error) {
      hasher.stop();
      throw error;
    }
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
    return scanned(await source(root, 'archive', archive.entries, archive.skipped, archive.reader));
  }

  const name = basename(root);
  const skipped: Skipped[] = stats.mode & 0o7000 ? [{ path: name, why: 'setuid/setgid/sticky bits dropped' }] : [];
  const entry: UploadEntry = { path: name, type: 'file', mode: stats.mode & 0o777, size: stats.size, sha256: '' };
  try {
    accessSync(root, constants.R_OK);
  } catch (error) {
    throw unreadable(path, error);
  }
  return hashing(startHasher(), root, 'file', [entry], skipped, [{ entry, absolute: root }], () => root);
}

/** A directory or single file, listed and checked: its files are hashed in the background (hashFiles) while the hosts connect. */
function hashing(hasher: Hasher, root: string, kind: 'dir' | 'file', entries: UploadEntry[], skipped: Skipped[], files: HashedFile[], pathOf: (entry: UploadEntry) => string): ScannedUpload {
  const job = hasher.hash(files);
  let whole: Promise<UploadSource> | null = null;
  const list = () => (whole ??= source(root, kind, entries, skipped, localFiles(pathOf)));
  // Listed (sorted, its content list made) once the worker is done, which is
  // mostly while the hosts' handshakes are on their way: not once the facts are in.
  job.finished.then(list, () => undefined);
  const hashed = async () => {
    await job.done();
    return list();
  };
  const totalBytes = files.reduce((sum, { entry }) => sum + entry.size, 0);
  return { root, kind, count: entries.length, totalBytes, skipped: sortSkipped(skipped), hashed, hashedHere: job.hashedHere };
}

/** Check, list and hash the upload: scanUpload, then its hashes. */
export async function readUpload(path: string, excludes: readonly string[]): Promise<UploadSource> {
  return (await scanUpload(path, excludes)).hashed();
}
