import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTempDir } from './fixtures.js';

/**
 * Every entry under `dir` as one line (path, type, permission bits, SHA-256 of
 * the bytes or the link text), sorted: two trees are identical when these are.
 */
export function treeHash(dir: string, skip: readonly string[] = []): string[] {
  const lines: string[] = [];
  const walk = (relative: string) => {
    for (const name of readdirSync(join(dir, relative)).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      if (skip.includes(path)) continue;
      const full = join(dir, path);
      const stat = lstatSync(full);
      const mode = (stat.mode & 0o777).toString(8);
      if (stat.isSymbolicLink()) lines.push(`${path} link ${readlinkSync(full)}`);
      else if (stat.isDirectory()) {
        lines.push(`${path} dir ${mode}`);
        walk(path);
      } else lines.push(`${path} file ${mode} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`);
    }
  };
  walk('');
  return lines;
}

/** Bytes that differ from run to run and do not compress. */
export function noise(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  let x = seed || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes.writeInt32LE(x | 0, Math.min(i, size - 4));
  }
  return bytes;
}

/**
 * A tree with what an upload must carry exactly: nested and empty directories,
 * relative and absolute symlinks, an executable, a name with spaces and UTF-8,
 * and one `bigMegabytes` MB file.
 */
export function sampleTree(bigMegabytes = 20): string {
  const dir = openTempDir('tagflip-upload-');
  mkdirSync(join(dir, 'app/lib/deep'), { recursive: true });
  mkdirSync(join(dir, 'empty'));
  writeFileSync(join(dir, 'app/lib/deep/module.js'), 'export const answer = 42;\n');
  writeFileSync(join(dir, 'app/index.js'), 'console.log("v1");\n');
  writeFileSync(join(dir, 'keep.txt'), 'unchanged between releases\n');
  writeFileSync(join(dir, 'gone.txt'), 'removed in the next release\n');
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(dir, 'run.sh'), 0o755);
  writeFileSync(join(dir, 'modes.txt'), 'its mode changes\n');
  writeFileSync(join(dir, 'Grüße aus Köln.txt'), 'ä ö ü ß\n');
  writeFileSync(join(dir, 'big.bin'), noise(bigMegabytes * 1024 * 1024, 7));
  symlinkSync('lib/deep/module.js', join(dir, 'app/link-relative'));
  symlinkSync('/etc/hostname', join(dir, 'link-absolute'));
  symlinkSync('keep.txt', join(dir, 'current-doc'));
  return dir;
}
