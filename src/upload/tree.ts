/**
 * Reading the upload on the runner, once for all hosts: a directory (walked
 * with lstat, symlinks never followed), an archive (see archive.ts) or a single
 * file. Every regular file is hashed once (for files on this machine, by a
 * worker thread started before the walk, largest files first, and by this
 * thread from the smallest up); nothing is held in memory.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { readArchive } from './archive.js';
import { type UploadEntry, contentList } from '../core/content-list.js';
import { UploadError, unreadable } from './errors.js';
import { compileExcludes } from './exclude.js';
import { type HashedFile, type Hasher, startHasher } from './hasher.js';
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
const ARCHIVE_NAME = /\.(tar|tar\.gz|tgz)$/i;

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
