/**
 * The record of a release's content (src/remote/host/tree-list.sh) made cheap
 * for an upload (uploaded-sums.sh): the files still as uploaded take their
 * SHA-256 from the content list, only the others are read, and the record is
 * the same bytes as one that reads every file. Sourced from the files and run
 * by a real sh, with sha256sum (and nproc) wrapped on PATH to see what is read.
 */
import { afterAll, beforeEach, expect, test } from '@jest/globals';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { type UploadEntry, renderEntry, sortEntries } from '../../src/core/content-list.js';
import { hostFile } from '../support/host-files.js';

const FUNCTIONS = [hostFile('identity.sh'), hostFile('past-the-stamp.sh'), hostFile('tree-list.sh'), hostFile('uploaded-sums.sh')].join('\n');
const REAL_SHA256SUM = execFileSync('sh', ['-c', 'command -v sha256sum'], { encoding: 'utf8' }).trim();

const root = mkdtempSync(join(tmpdir(), 'tagflip-treelist-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dir: string;
let release: string;
beforeEach(() => {
  dir = mkdtempSync(join(root, 'case-'));
  release = join(dir, 'release');
  mkdirSync(join(dir, 'bin'));
  // Every sha256sum logs the names it is given (NUL-ended), then hashes them.
  writeFileSync(join(dir, 'bin/sha256sum'), `#!/bin/sh\nprintf '%s\\0' "$@" >> "$SUMS_LOG"\nexec '${REAL_SHA256SUM}' "$@"\n`);
  chmodSync(join(dir, 'bin/sha256sum'), 0o755);
});

/** Runs `body` after the functions in sh, with the wrapped sha256sum; `cpus` as nproc says it. */
function sh(body: string, log = 'sums.log', cpus?: number): string {
  if (cpus !== undefined) {
    writeFileSync(join(dir, 'bin/nproc'), `#!/bin/sh\necho ${cpus}\n`);
    chmodSync(join(dir, 'bin/nproc'), 0o755);
  }
  const result = spawnSync('sh', ['-c', `${FUNCTIONS}\n${body}`], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, SUMS_LOG: join(dir, log) },
  });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return result.stdout;
}

/** What sha256sum was given, as bytes (latin1: one character a byte), without its options. */
const hashed = (log = 'sums.log') =>
  readFileSync(join(dir, log), 'latin1')
    .split('\0')
    .filter((name) => name.startsWith('./'))
    .sort();

/** Writes a file of the release, and the directories on its way. */
function put(path: string, text: string) {
  mkdirSync(join(release, path, '..'), { recursive: true });
  writeFileSync(join(release, path), text);
}

/** The content list the runner would send for the release as it is now (src/core/content-list.ts). */
function contentList(): string {
  const entries: UploadEntry[] = [];
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const full = join(at, name);
      const path = relative(release, full);
      const stat = lstatSync(full);
      const mode = stat.mode & 0o777;
      if (stat.isSymbolicLink()) {
        const target = readlinkSync(full);
        entries.push({ path, type: 'symlink', mode: 0o777, size: 0, sha256: createHash('sha256').update(target).digest('hex'), target });
      } else if (stat.isDirectory()) {
        entries.push({ path, type: 'dir', mode, size: 0, sha256: '' });
        walk(full);
      } else {
        entries.push({ path, type: 'file', mode, size: stat.size, sha256: createHash('sha256').update(readFileSync(full)).digest('hex') });
      }
    }
  };
  walk(release);
  return sortEntries(entries)
    .map((entry) => `${renderEntry(entry)}\n`)
    .join('');
}

/**
 * An upload as the upload step leaves it: the files, their content list
 * (.files) and their identities (.ids, sorted), kept once the clock moved past
 * them (upload.sh).
 */
function upload() {
  put('a.txt', 'a\n');
  put('app/main.py', 'print(1)\n');
  put('app/append.log', 'one\n');
  put('app/same-size.txt', 'aaaa\n');
  put('app/removed.txt', 'gone\n');
  put('app/to-link.txt', 'replaced by a link\n');
  put('dir with space/x y.txt', 'spaces\n');
  put('café.txt', 'utf-8 name\n');
  // JSON escapes these names: their lines never match, and they are read.
  put('say "hi".txt', 'quoted\n');
  put('back\\slash.txt', 'backslash\n');
  put('empty', '');
  symlinkSync('a.txt', join(release, 'link'));
  writeFileSync(join(dir, 'list'), contentList());
  sh(`cd release && tf_identity_owner && tf_identities . > ../ids && LC_ALL=C sort -z -o ../ids ../ids && cd .. &&
    tf_stamp=stamp tf_probe=probe && : > stamp && tf_past_the_stamp || exit 7`);
}

/** What a build does to the upload: every kind of change the record must catch. */
function build() {
  sh(`cd release &&
    printf 'two\\n' >> app/append.log &&
    printf 'bbbb\\n' 1<> app/same-size.txt &&
    printf 'added\\n' > new.txt &&
    rm app/removed.txt &&
    rm app/to-link.txt && ln -s ../a.txt app/to-link.txt &&
    printf 'latin-1\\n' > "$(printf 'caf\\351')"`);
}

const records = (name: string) => readFileSync(join(dir, name)).toString('latin1').split('\0').slice(0, -1);

test('after an upload and a build, only what the build wrote is read, and the record is the one a full read writes, byte for byte', () => {
  upload();
  build();
  const counts = sh(
    'tf_uploaded_sums release list ids known || exit 3; tf_tree_list release fast known || exit 4; echo "$tf_tree_count $tf_tree_taken"; [ ! -e known.work.now ] || exit 5',
    'fast.log',
  );
  sh('tf_tree_list release full || exit 4', 'full.log');
  expect(readFileSync(join(dir, 'fast')).equals(readFileSync(join(dir, 'full')))).toBe(true);
  // The build's files, and the two whose names JSON escapes: nothing else.
  const changed = ['./app/append.log', './app/same-size.txt', './back\\slash.txt', './caf\xe9', './new.txt', './say "hi".txt'].sort();
  expect(hashed('fast.log')).toEqual(changed);
  expect(counts.trim()).toBe('6 5');
  // The full read reads all 11 files.
  expect(hashed('full.log')).toHaveLength(11);
  const all = records('full');
  expect(all).toContain(`f 644 8 ${createHash('sha256').update('one\ntwo\n').digest('hex')} app/append.log`);
  expect(all).toContain(`f 644 5 ${createHash('sha256').update('bbbb\n').digest('hex')} app/same-size.txt`);
  expect(all).toContain('l 777 8 - app/to-link.txt//../a.txt');
  expect(all).toContain(`f 644 11 ${createHash('sha256').update('utf-8 name\n').digest('hex')} caf\xc3\xa9.txt`);
  expect(all.some((record) => record.endsWith(' app/removed.txt'))).toBe(false);
  // No work file is left beside the record.
  expect(readdirSync(dir).filter((name) => name.includes('.work') || name.endsWith('.tmp'))).toEqual([]);
});

test('without the identity record (the clock never moved past it) nothing is known, and every file is read', () => {
  upload();
  build();
  rmSync(join(dir, 'ids'));
  sh('if tf_uploaded_sums release list ids known 2>/dev/null; then exit 3; fi; [ ! -e known ] || exit 5; tf_tree_list release fast "" || exit 4', 'fast.log');
  sh('tf_tree_list release full || exit 4', 'full.log');
  expect(readFileSync(join(dir, 'fast')).equals(readFileSync(join(dir, 'full')))).toBe(true);
  expect(hashed('fast.log')).toHaveLength(11);
});

test('a file whose identity is as recorded but whose size the list does not give is read; a chmod is a change', () => {
  upload();
  // A list that says another size for a.txt (a hand-edited list): its line matches nothing.
  const list = readFileSync(join(dir, 'list'), 'utf8').replace('"path":"a.txt","type":"file","mode":420,"size":2', '"path":"a.txt","type":"file","mode":420,"size":3');
  writeFileSync(join(dir, 'list'), list);
  sh('chmod 600 release/empty');
  sh('tf_uploaded_sums release list ids known || exit 3; tf_tree_list release fast known || exit 4', 'fast.log');
  sh('tf_tree_list release full || exit 4', 'full.log');
  expect(readFileSync(join(dir, 'fast')).equals(readFileSync(join(dir, 'full')))).toBe(true);
  expect(hashed('fast.log')).toEqual(['./a.txt', './back\\slash.txt', './empty', './say "hi".txt']);
});

test('files are read by as many sha256sum at once as the host has CPUs (at most 8), and the record is the same', () => {
  for (let i = 0; i < 40; i++) put(`d${i % 3}/f${i}`, `${i}\n`.repeat(i));
  sh('tf_tree_list release one || exit 4', 'one.log', 1);
  sh('tf_tree_list release four || exit 4', 'four.log', 4);
  sh('tf_tree_list release many || exit 4', 'many.log', 64);
  expect(readFileSync(join(dir, 'four')).equals(readFileSync(join(dir, 'one')))).toBe(true);
  expect(readFileSync(join(dir, 'many')).equals(readFileSync(join(dir, 'one')))).toBe(true);
  // One batch per part: the log holds one option list (-z --) per sha256sum.
  const runs = (log: string) => readFileSync(join(dir, log), 'latin1').split('\0').filter((arg) => arg === '-z').length;
  expect(runs('one.log')).toBe(1);
  expect(runs('four.log')).toBe(4);
  expect(runs('many.log')).toBe(8);
  expect(hashed('many.log')).toHaveLength(40);
  // Three files, eight CPUs: three parts.
  rmSync(release, { recursive: true });
  for (let i = 0; i < 3; i++) put(`f${i}`, `${i}\n`);
  sh('tf_tree_list release three || exit 4', 'three.log', 8);
  expect(runs('three.log')).toBe(3);
});

test('a file that cannot be read fails the record, in any part, and leaves no record nor work file', () => {
  for (let i = 0; i < 10; i++) put(`f${i}`, `${i}\n`);
  put('secret', 'x\n');
  chmodSync(join(release, 'secret'), 0);
  // As root every file can be read: the record is made as another user.
  expect(spawnSync('su', ['nobody', '-s', '/bin/sh', '-c', 'true']).status).toBe(0);
  chmodSync(dir, 0o777);
  chmodSync(root, 0o755);
  for (const cpus of [1, 4]) {
    writeFileSync(join(dir, 'bin/nproc'), `#!/bin/sh\necho ${cpus}\n`);
    chmodSync(join(dir, 'bin/nproc'), 0o755);
    const script = `${FUNCTIONS}\ncd '${dir}' && if tf_tree_list release out 2>/dev/null; then exit 3; fi; [ ! -e out ] || exit 5; ls -A | grep -q work && exit 6; exit 0`;
    const run = spawnSync('su', ['nobody', '-s', '/bin/sh', '-c', `PATH='${join(dir, 'bin')}':"$PATH" SUMS_LOG=/dev/null sh -c "$1"`, 'sh', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  }
});

test('what another user could have written is read, never taken from the list: files in a directory others can write, and one rewritten with its mtime put back', () => {
  upload();
  // Uploaded into a directory every user can write: any of them could have swapped its file since.
  put('pub/js/app.js', 'uploaded\n');
  chmodSync(join(release, 'pub'), 0o777);
  writeFileSync(join(dir, 'list'), contentList());
  sh(`cd release && tf_identity_owner && tf_identities . > ../ids && LC_ALL=C sort -z -o ../ids ../ids && cd .. &&
    tf_stamp=stamp tf_probe=probe && : > stamp && tf_past_the_stamp || exit 7`);
  // Rewritten in place, same size, its modification time put back as it was: only its change time tells.
  sh(`touch -r release/a.txt mtime && printf 'A\\n' 1<> release/a.txt && touch -r mtime release/a.txt`);
  sh('tf_uploaded_sums release list ids known || exit 3; tf_tree_list release fast known || exit 4', 'fast.log');
  sh('tf_tree_list release full || exit 4', 'full.log');
  expect(readFileSync(join(dir, 'fast')).equals(readFileSync(join(dir, 'full')))).toBe(true);
  expect(hashed('fast.log')).toEqual(['./a.txt', './back\\slash.txt', './pub/js/app.js', './say "hi".txt']);
  expect(records('fast')).toContain(`f 644 2 ${createHash('sha256').update('A\n').digest('hex')} a.txt`);
});

test('with an awk that cannot split NUL-ended records (BusyBox awk), nothing is known: every file is read, and the record is the same', () => {
  upload();
  build();
  writeFileSync(join(dir, 'bin/awk'), '#!/bin/sh\nexec busybox awk "$@"\n');
  chmodSync(join(dir, 'bin/awk'), 0o755);
  sh('if tf_uploaded_sums release list ids known 2>/dev/null; then exit 3; fi; [ ! -e known ] || exit 5; tf_tree_list release fast "" || exit 4', 'fast.log');
  rmSync(join(dir, 'bin/awk'));
  sh('tf_tree_list release full || exit 4', 'full.log');
  expect(readFileSync(join(dir, 'fast')).equals(readFileSync(join(dir, 'full')))).toBe(true);
  expect(hashed('fast.log')).toHaveLength(11);
  // With the host's awk, the same upload and build read only the six.
  sh('tf_uploaded_sums release list ids known || exit 3; tf_tree_list release again known || exit 4', 'again.log');
  expect(readFileSync(join(dir, 'again')).equals(readFileSync(join(dir, 'full')))).toBe(true);
  expect(hashed('again.log')).toHaveLength(6);
});

test('given the recorded identities as the ones now (no build ran), no identity is listed again: one find, the tree walk, and the same record', () => {
  upload();
  const REAL_FIND = execFileSync('sh', ['-c', 'command -v find'], { encoding: 'utf8' }).trim();
  writeFileSync(join(dir, 'bin/find'), `#!/bin/sh\necho find >> '${join(dir, 'finds.log')}'\nexec '${REAL_FIND}' "$@"\n`);
  chmodSync(join(dir, 'bin/find'), 0o755);
  const counts = sh('tf_uploaded_sums release list ids known ids || exit 3; tf_tree_list release fast known || exit 4; echo "$tf_tree_count $tf_tree_taken"; [ -e ids ] || exit 5', 'fast.log');
  expect(readFileSync(join(dir, 'finds.log'), 'utf8')).toBe('find\n');
  rmSync(join(dir, 'bin/find'));
  sh('tf_tree_list release full || exit 4', 'full.log');
  expect(readFileSync(join(dir, 'fast')).equals(readFileSync(join(dir, 'full')))).toBe(true);
  // Only the two names JSON escapes are read; the nine others come from the list.
  expect(hashed('fast.log')).toEqual(['./back\\slash.txt', './say "hi".txt']);
  expect(counts.trim()).toBe('2 9');
});

test('given the recorded identities as the ones now, what another user could have swapped is still read: a file in a directory others can write', () => {
  upload();
  put('pub/js/app.js', 'uploaded\n');
  chmodSync(join(release, 'pub'), 0o777);
  writeFileSync(join(dir, 'list'), contentList());
  sh(`cd release && tf_identity_owner && tf_identities . > ../ids && LC_ALL=C sort -z -o ../ids ../ids || exit 7`);
  // Another user swaps it for a file of their own, of the same size, between the upload step and the record.
  sh(`printf 'payload!\\n' > release/pub/js/app.js.new && mv release/pub/js/app.js.new release/pub/js/app.js`);
  sh('tf_uploaded_sums release list ids known ids || exit 3; tf_tree_list release fast known || exit 4', 'fast.log');
  sh('tf_tree_list release full || exit 4', 'full.log');
  expect(readFileSync(join(dir, 'fast')).equals(readFileSync(join(dir, 'full')))).toBe(true);
  expect(hashed('fast.log')).toEqual(['./back\\slash.txt', './pub/js/app.js', './say "hi".txt']);
  expect(records('fast')).toContain(`f 644 9 ${createHash('sha256').update('payload!\n').digest('hex')} pub/js/app.js`);
});
