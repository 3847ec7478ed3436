/** Trees on disk for the upload tests, and an independent way to compare them. */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { type ListedContent, type UploadEntry, renderEntry } from '../../src/core/content-list.js';
import type { UploadSource } from '../../src/upload/tree.js';

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `tagflip-${label}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Write files (string or Buffer), directories (path ending in '/') and symlinks ({ link }) under root. */
export function writeTree(root: string, spec: Record<string, string | Buffer | { link: string } | { mode: number; data: string }>): void {
  for (const [path, value] of Object.entries(spec)) {
    const absolute = join(root, path);
    if (path.endsWith('/')) {
      mkdirSync(absolute, { recursive: true });
      continue;
    }
    mkdirSync(join(absolute, '..'), { recursive: true });
    if (typeof value === 'object' && 'link' in value) execFileSync('ln', ['-s', value.link, absolute]);
    else if (typeof value === 'object' && 'mode' in value) writeFileSync(absolute, value.data, { mode: value.mode });
    else writeFileSync(absolute, value);
  }
}

/**
 * Every path under root with its type, permission bits, and the SHA-256 of its
 * bytes or link text: written without the code under test, to compare trees.
 */
export function describeTree(root: string): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const absolute = join(dir, name);
      const path = prefix + name;
      const stats = lstatSync(absolute);
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isDirectory()) {
        found[path] = `dir ${mode}`;
        walk(absolute, `${path}/`);
      } else if (stats.isSymbolicLink()) found[path] = `symlink -> ${readlinkSync(absolute)}`;
      else found[path] = `file ${mode} ${stats.size} ${createHash('sha256').update(readFileSync(absolute)).digest('hex')}`;
    }
  };
  walk(root, '');
  return found;
}

/** Pipe a stream into `tar -x` (GNU tar, or another tar binary given as argv) in dir. */
export async function extract(stream: NodeJS.ReadableStream, dir: string, command: string[] = ['tar', '--no-same-owner', '-xf', '-']): Promise<void> {
  const child = spawn(command[0], [...command.slice(1)], { cwd: dir, stdio: ['pipe', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await pipeline(stream, child.stdin);
  const code = await exited;
  if (code !== 0) throw new Error(`${command[0]} exited ${code}: ${stderr}`);
}

/**
 * Python's tarfile writes the hostile archives: an independent tar writer that
 * does what it is told. One interpreter for all of them (it takes a moment to start).
 */
export function pythonTars(archives: Record<string, string>): void {
  const scripts = Object.entries(archives).map(
    ([file, script]) => `t = tarfile.open(${JSON.stringify(file)}, 'w:gz' if ${JSON.stringify(file)}.endswith('gz') else 'w')\n${script}\nt.close()\n`,
  );
  const add = `def add(name, type=tarfile.REGTYPE, data=b'', linkname='', mode=0o644):\n    i = tarfile.TarInfo(name); i.type = type; i.size = len(data) if type == tarfile.REGTYPE else 0; i.linkname = linkname; i.mode = mode\n    t.addfile(i, io.BytesIO(data) if type == tarfile.REGTYPE else None)\n`;
  execFileSync('python3', ['-c', `import tarfile, io\n${add}${scripts.join('')}`]);
}

/** A tar stream's pieces (tar.ts) as a readable of bytes. */
export const tarBytes = (tar: { chunks(): Iterable<Buffer> | AsyncIterable<Buffer> }) => Readable.from(tar.chunks(), { objectMode: false });

/** The ListedContent (facts.ts) of a current release holding exactly `entries`, every file still as listed. */
export function listedContent(entries: readonly UploadEntry[]): ListedContent {
  return { lines: new Set(entries.map(renderEntry)), files: new Set(entries.filter((entry) => entry.type === 'file').map((entry) => entry.path)) };
}

/** An UploadSource of these entries alone, for what reads only its entries and their lines. */
export function sourceOf(entries: UploadEntry[]): UploadSource {
  return { entries, lines: entries.map(renderEntry) } as UploadSource;
}
