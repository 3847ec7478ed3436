/**
 * A user-supplied archive as an upload. The archive is read once to list and
 * hash it and to refuse hostile members before anything is sent: absolute
 * names, `..`, a member under a symlink the archive made (`link -> /etc`, then
 * `link/passwd`), hard links to anything but an earlier file of the archive,
 * devices and FIFOs. Hard links inside the archive become plain copies. The
 * host only ever receives a stream tagflip wrote from these checked entries.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { type UploadEntry, sortEntries } from '../core/content-list.js';
import { UploadError } from './errors.js';
import { compileExcludes, excluderWithParents } from './exclude.js';
import { ByteReader, TarFormatError, type TarMember, isGzip, tarBytes, tarMembers } from './tar-reader.js';
import { type ArchiveMembers, type Skipped, inOrder } from './source.js';

const SAFE_ARCHIVE =
  'an archive whose members stay inside the release: relative names without "..", nothing under a symlink of the archive, hard links only to earlier files of the archive, no device or FIFO members';

interface Listed {
  entries: UploadEntry[];
  skipped: Skipped[];
  /** Where each file's bytes start in the tar stream (a hard link copy points at its target's). */
  offsets: Map<string, number>;
}

function hostile(archive: string, member: string, why: string): UploadError {
  return new UploadError(`archive ${archive}: member '${member}' ${why}`, SAFE_ARCHIVE, member);
}

/** A member's name (or link target) as a release path: '' for the root itself; throws for absolute names and '..'. */
function releasePath(archive: string, member: TarMember, name = member.name, what = 'is'): string {
  if (name.startsWith('/')) throw hostile(archive, member.name, `${what} an absolute path`);
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw hostile(archive, member.name, `${what} a path with a ".." component`);
  return parts.join('/');
}

async function list(file: string, gzip: boolean, excludes: readonly string[]): Promise<Listed> {
  const archive = basename(file);
  const excluded = excluderWithParents(compileExcludes(excludes));
  // Every path the archive has made so far (excluded ones too: they would exist on disk during a plain extraction).
  const kinds = new Map<string, 'file' | 'dir' | 'symlink'>();
  const entries = new Map<string, UploadEntry>();
  const files = new Map<string, { entry: UploadEntry; offset: number }>();
  const skipped: Skipped[] = [];

  const add = (entry: UploadEntry, isDir: boolean) => {
    if (!excluded(entry.path, isDir)) entries.set(entry.path, entry);
  };
  const parentsOf = (member: TarMember, path: string) => {
    const parts = path.split('/');
    for (let depth = 1; depth < parts.length; depth += 1) {
      const parent = parts.slice(0, depth).join('/');
      const kind = kinds.get(parent);
      if (kind === 'symlink') throw hostile(archive, member.name, `passes through the symlink '${parent}' made earlier in the archive`);
      if (kind === 'file') throw hostile(archive, member.name, `is under '${parent}', a file of the archive`);
      if (kind === undefined) {
        // A member without its directory's own member: the directory is made as tar would.
        kinds.set(parent, 'dir');
        add({ path: parent, type: 'dir', mode: 0o755, size: 0, sha256: '' }, true);
      }
    }
  };

  const reader = new ByteReader(tarBytes(file, gzip));
  try {
    for await (const member of tarMembers(reader)) {
      const path = releasePath(archive, member);
      if (member.type === 'chardev' || member.type === 'blockdev') throw hostile(archive, member.name, 'is a device file');
      if (member.type === 'fifo') throw hostile(archive, member.name, 'is a FIFO');
      if (member.type === 'other') throw hostile(archive, member.name, `has an unsupported type '${member.flag.replace(/\0/, '\\0')}'`);
      if (path === '') {
        if (member.type !== 'dir') throw hostile(archive, member.name, 'names the release directory itself but is not a directory');
        continue;
      }
      parentsOf(member, path);
      const type = member.type === 'hardlink' ? 'file' : member.type;
      const before = kinds.get(path);
      if (before !== undefined && before !== type) throw hostile(archive, member.name, `replaces the ${before === 'dir' ? 'directory' : before} of the same name made earlier in the archive`);
      kinds.set(path, type);
      if (member.mode & 0o7000) skipped.push({ path, why: 'setuid/setgid/sticky bits dropped' });
      const mode = member.mode & 0o777;

      if (member.type === 'dir') add({ path, type: 'dir', mode, size: 0, sha256: '' }, true);
      else if (member.type === 'symlink') {
        if (member.linkname === '') throw hostile(archive, member.name, 'is a symlink with an empty target');
        add({ path, type: 'symlink', mode: 0o777, size: 0, sha256: createHash('sha256').update(member.linkname).digest('hex'), target: member.linkname }, false);
      } else if (member.type === 'hardlink') {
        const target = releasePath(archive, member, member.linkname, `is a hard link to '${member.linkname}',`);
        const original = files.get(target);
        if (!original) throw hostile(archive, member.name, `is a hard link to '${member.linkname}', which is not an earlier file of the archive`);
        const entry = { ...original.entry, path };
        files.set(path, { entry, offset: original.offset });
        add(entry, false);
      } else {
        // Every file is hashed, excluded or not: a hard link may copy it.
        const hash = createHash('sha256');
        for await (const chunk of reader.take(member.size)) hash.update(chunk);
        const entry: UploadEntry = { path, type: 'file', mode, size: member.size, sha256: hash.digest('hex') };
        files.set(path, { entry, offset: member.offset });
        add(entry, false);
      }
    }
  } catch (error) {
    if (error instanceof TarFormatError || (error as NodeJS.ErrnoException).code?.startsWith('Z_')) {
      throw new UploadError(`${archive} is not a readable tar archive (${error instanceof TarFormatError ? error.message : 'bad gzip data'})`, 'a .tar, .tar.gz or .tgz archive');
    }
    throw error;
  } finally {
    await reader.close();
  }
  const listed = sortEntries([...entries.values()]);
  const offsets = new Map(listed.filter((entry) => entry.type === 'file').map((entry) => [entry.path, files.get(entry.path)!.offset]));
  return { entries: listed, skipped, offsets };
}

/** List, hash and check an archive; the reader gives file bytes back from it. */
export async function readArchive(file: string, excludes: readonly string[]): Promise<{ entries: UploadEntry[]; skipped: Skipped[]; reader: ArchiveMembers }> {
  const gzip = await isGzip(file);
  const { entries, skipped, offsets } = await list(file, gzip, excludes);
  const offsetOf = (entry: UploadEntry) => {
    const offset = offsets.get(entry.path);
    if (offset === undefined) throw new Error(`'${entry.path}' is not a file of ${file}`);
    return offset;
  };

  if (!gzip) {
    // A plain tar can be read at any offset: each file is a byte range of it.
    const open = (entry: UploadEntry): Readable =>
      entry.size === 0 ? Readable.from([]) : createReadStream(file, { start: offsetOf(entry), end: offsetOf(entry) + entry.size - 1, highWaterMark: 1 << 18 });
    return { entries, skipped, reader: { kind: 'archive', open, openEach: inOrder(open) } };
  }

  // gzip cannot seek: one entry alone costs a scan from the start; many are read in one pass, in archive order.
  const open = (entry: UploadEntry): Readable => {
    const offset = offsetOf(entry);
    return Readable.from(
      (async function* () {
        const reader = new ByteReader(tarBytes(file, true));
        try {
          await reader.skip(offset);
          yield* reader.take(entry.size);
        } finally {
          await reader.close();
        }
      })(),
      { objectMode: false },
    );
  };
  const openEach = async function* (wanted: readonly UploadEntry[]) {
    const ordered = [...wanted].sort((a, b) => offsetOf(a) - offsetOf(b));
    let reader = new ByteReader(tarBytes(file, true));
    try {
      for (const entry of ordered) {
        const offset = offsetOf(entry);
        if (offset < reader.position) {
          // A second copy of the same bytes (a hard link): start over.
          await reader.close();
          reader = new ByteReader(tarBytes(file, true));
        }
        await reader.skip(offset - reader.position);
        yield { entry, data: reader.take(entry.size) };
      }
    } finally {
      await reader.close();
    }
  };
  return { entries, skipped, reader: { kind: 'archive', open, openEach } };
}
