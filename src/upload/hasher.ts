/**
 * Hashing the upload's files on the runner: a worker thread started before
 * the walk takes them largest first, and this thread from the smallest up.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { UploadEntry } from '../core/content-list.js';
import { UploadError, unreadable } from './errors.js';

/** Reads while hashing (synchronous, one buffer). */
const HASH_CHUNK = 1 << 20;

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

export interface HashJob {
  /** Settles once every file's sha256 is set: hashing on this thread too, from the back of the list, until no file is left. */
  done(): Promise<void>;
  /** Settles once every file's sha256 is set, whoever hashed them. */
  finished: Promise<void>;
  /** How many files this thread hashed. */
  hashedHere(): number;
}

export interface HashedFile {
  entry: UploadEntry;
  absolute: string;
}

/** The hashing thread, started before it has its files (HASH_WORKER); hash() gives them, stop() ends it unused. */
export interface Hasher {
  hash(files: readonly HashedFile[]): HashJob;
  stop(): void;
}

export function startHasher(): Hasher {
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
