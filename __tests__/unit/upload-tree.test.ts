import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { UploadError, readUpload, scanUpload } from '../../src/upload/tree.js';
import { removeDir, tempDir, writeTree } from './upload-fixtures.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

async function refusal(promise: Promise<unknown>): Promise<UploadError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UploadError);
  return error as UploadError;
}

let dir: string;
beforeEach(() => {
  dir = tempDir('tree');
});
afterEach(() => removeDir(dir));

describe('readUpload: a directory', () => {
  test('lists dirs (empty ones too), files with hashes and modes, symlinks unfollowed, sorted as a tree', async () => {
    const root = join(dir, 'site');
    writeTree(root, {
      'a/b/c.txt': 'hello',
      'a b.txt': 'spaces',
      'empty/': '',
      'bin/run': { mode: 0o755, data: '#!/bin/sh\n' },
      'link-rel': { link: 'a/b/c.txt' },
      'link-abs': { link: '/etc' },
      'dangling': { link: 'nowhere' },
    });
    const source = await readUpload(root, []);
    expect(source.kind).toBe('dir');
    expect(source.root).toBe(root);
    expect(source.entries.map(({ path, type, mode, size }) => `${path} ${type} ${mode.toString(8)} ${size}`)).toEqual([
      'a dir 755 0',
      'a/b dir 755 0',
      'a/b/c.txt file 644 5',
      'a b.txt file 644 6',
      'bin dir 755 0',
      'bin/run file 755 10',
      'dangling symlink 777 0',
      'empty dir 755 0',
      'link-abs symlink 777 0',
      'link-rel symlink 777 0',
    ]);
    const byPath = new Map(source.entries.map((entry) => [entry.path, entry]));
    expect(byPath.get('a/b/c.txt')!.sha256).toBe(sha('hello'));
    expect(byPath.get('link-abs')).toEqual({ path: 'link-abs', type: 'symlink', mode: 0o777, size: 0, sha256: sha('/etc'), target: '/etc' });
    expect(byPath.get('empty')!.sha256).toBe('');
    expect(source.totalBytes).toBe(5 + 6 + 10);
    expect(source.listHash).toBe(sha(source.list.toString('utf8')));
    expect(source.list.toString('utf8')).toBe(source.lines.map((line) => `${line}\n`).join(''));
    expect(source.skipped).toEqual([]);
    // The tar reads each file where it lies.
    expect(source.reader.kind).toBe('local');
    if (source.reader.kind === 'local') expect(readFileSync(source.reader.pathOf(byPath.get('a/b/c.txt')!), 'utf8')).toBe('hello');
  });

  test('FIFOs, sockets and devices are skipped and reported; setuid/setgid/sticky bits dropped and reported', async () => {
    const root = join(dir, 'site');
    writeTree(root, { 'keep.txt': 'x', 'suid': { mode: 0o755, data: 'x' }, 'shared/': '' });
    chmodSync(join(root, 'suid'), 0o4755);
    chmodSync(join(root, 'shared'), 0o3775);
    execFileSync('mkfifo', [join(root, 'fifo')]);
    execFileSync('mknod', [join(root, 'null-dev'), 'c', '1', '3']);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(root, 'sock'), resolve));
    try {
      const source = await readUpload(root, []);
      expect(source.entries.map(({ path, mode }) => `${path} ${mode.toString(8)}`)).toEqual(['keep.txt 644', 'shared 775', 'suid 755']);
      expect(source.skipped).toEqual([
        { path: 'fifo', why: 'FIFO: not transferred' },
        { path: 'null-dev', why: 'device file: not transferred' },
        { path: 'shared', why: 'setuid/setgid/sticky bits dropped' },
        { path: 'sock', why: 'socket: not transferred' },
        { path: 'suid', why: 'setuid/setgid/sticky bits dropped' },
      ]);
    } finally {
      server.close();
    }
  });

  test('.git is always left out; upload-exclude lines apply; excluded directories are not entered', async () => {
    const root = join(dir, 'site');
    writeTree(root, {
      '.git/HEAD': 'ref',
      'sub/.git': 'gitdir: ../.git/modules/sub',
      '.github/workflows/x.yml': 'on: push',
      'node_modules/x/index.js': 'x',
      'app.log': 'log',
      'keep.log': 'kept',
      'build/out.js': 'out',
      'src/build/in.js': 'in',
      'docs/a/b.md': 'md',
      'docs/a/b.txt': 'txt',
    });
    const source = await readUpload(root, ['node_modules/', '*.log', '!keep.log', '/build', 'docs/**/*.md', '# comment', '']);
    expect(source.entries.map((entry) => entry.path)).toEqual([
      '.github',
      '.github/workflows',
      '.github/workflows/x.yml',
      'docs',
      'docs/a',
      'docs/a/b.txt',
      'keep.log',
      'src',
      'src/build',
      'src/build/in.js',
      'sub',
    ]);
  });

  test('5,000 small files are read and hashed quickly', async () => {
    const root = join(dir, 'many');
    for (let d = 0; d < 50; d += 1) {
      mkdirSync(join(root, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f += 1) writeFileSync(join(root, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`.repeat(100));
    }
    const started = Date.now();
    const source = await readUpload(root, []);
    const elapsed = Date.now() - started;
    expect(source.entries.filter((entry) => entry.type === 'file')).toHaveLength(5000);
    expect(source.entries.find((entry) => entry.path === 'd7/f3.txt')!.sha256).toBe(sha('file 7/3\n'.repeat(100)));
    expect(elapsed).toBeLessThan(5000);
  });

  test('hashed(): this thread hashes alongside the worker, from the same counter; every file gets its own hash', async () => {
    const root = join(dir, 'shared');
    const expected = new Map<string, string>();
    for (let d = 0; d < 20; d += 1) {
      mkdirSync(join(root, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f += 1) {
        const text = `file ${d}/${f}\n`.repeat(50 + f);
        writeFileSync(join(root, `d${d}`, `f${f}.txt`), text);
        expected.set(`d${d}/f${f}.txt`, sha(text));
      }
    }
    const scan = await scanUpload(root, []);
    const source = await scan.hashed();
    // Asked at once, while the worker was still starting: this thread took files too, and left some to it or not.
    expect(scan.hashedHere()).toBeGreaterThan(0);
    expect(scan.hashedHere()).toBeLessThanOrEqual(2000);
    const files = source.entries.filter((entry) => entry.type === 'file');
    expect(files).toHaveLength(2000);
    for (const entry of files) expect(entry.sha256).toBe(expected.get(entry.path));
    // The same source every time it is asked for.
    expect(await scan.hashed()).toBe(source);
  });

  test('hashed(): a file that changed size before it was hashed fails the hashes, named, whichever thread read it', async () => {
    const root = join(dir, 'changing');
    mkdirSync(root);
    for (let f = 0; f < 500; f += 1) writeFileSync(join(root, `f${String(f).padStart(3, '0')}.txt`), 'x'.repeat(1000));
    const scan = await scanUpload(root, []);
    // Listed at 1000 bytes; the worker is still starting when it shrinks.
    truncateSync(join(root, 'f499.txt'), 10);
    const error = await refusal(scan.hashed());
    expect(error.message).toContain("'f499.txt' changed while being read (1000 bytes, then 10)");
    await expect(scan.hashed()).rejects.toThrow("'f499.txt' changed while being read");
  });

  test('a missing path, an empty directory, everything excluded: refused naming the input', async () => {
    expect((await refusal(readUpload(join(dir, 'missing'), []))).message).toBe(
      `upload: '${join(dir, 'missing')}' does not exist; expected a directory, a .tar, .tar.gz or .tgz archive, or a single file on the runner`,
    );
    mkdirSync(join(dir, 'empty'));
    expect((await refusal(readUpload(join(dir, 'empty'), []))).message).toMatch(/^upload: directory '.*empty' has nothing to upload \(it is empty\); expected a directory/);
    writeTree(join(dir, 'logs'), { 'a.log': 'x', '.git/HEAD': 'y' });
    expect((await refusal(readUpload(join(dir, 'logs'), ['*.log']))).message).toMatch(/has nothing to upload \(nothing is left after upload-exclude\)/);
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    expect((await refusal(readUpload(join(dir, 'pipe'), []))).message).toMatch(/is neither a directory nor a regular file/);
  });

  test('a file name that is not UTF-8 is refused, named', async () => {
    const root = join(dir, 'site');
    mkdirSync(root);
    writeFileSync(Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff]), Buffer.from('.txt')]), 'x');
    const error = await refusal(readUpload(root, []));
    expect(error.message).toMatch(/the name 'bad-ÿ.txt' is not valid UTF-8/);
  });

  test('a single plain file is one entry named by its basename; a relative path is from the working directory', async () => {
    writeFileSync(join(dir, 'app.jar'), 'jar bytes', { mode: 0o640 });
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const source = await readUpload('app.jar', ['*.jar']);
      expect(source.kind).toBe('file');
      expect(source.root).toBe(join(dir, 'app.jar'));
      expect(source.entries).toEqual([{ path: 'app.jar', type: 'file', mode: 0o640, size: 9, sha256: sha('jar bytes') }]);
    } finally {
      process.chdir(cwd);
    }
  });
});
