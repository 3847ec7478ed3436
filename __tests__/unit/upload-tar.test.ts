import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, mkdirSync, openSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { planUpload } from '../../src/upload/diff.js';
import { prepareTransfer } from '../../src/upload/transfer.js';
import { tarStream } from '../../src/upload/tar.js';
import { UploadError, readUpload } from '../../src/upload/tree.js';
import { describeTree, extract, listedContent, removeDir, tarBytes, tempDir, writeTree } from './upload-fixtures.js';


/** A sink that counts bytes (and optionally hashes them), holding nothing. */
function counter() {
  const state = { bytes: 0, hash: createHash('sha256') };
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      state.bytes += chunk.length;
      state.hash.update(chunk);
      done();
    },
  });
  return { state, sink };
}

let dir: string;
let tree: string;
const long = `${'a-rather-long-directory-name/'.repeat(5)}and-a-file-name-past-one-hundred-bytes.txt`;
const longTarget = `../${'x'.repeat(120)}/target`;

beforeAll(() => {
  dir = tempDir('tar');
  tree = join(dir, 'tree');
  writeTree(tree, {
    'src/lib/deep/module.js': 'export {};\n',
    'src/index.js': 'import "./lib/deep/module.js";\n',
    'empty/': '',
    'bin/start': { mode: 0o755, data: '#!/bin/sh\nexec node src/index.js\n' },
    'private.key': { mode: 0o600, data: 'secret' },
    'docs/name with spaces – ünïcödé ✓.txt': 'utf-8 name',
    [long]: 'long path',
    'link-rel': { link: 'src/index.js' },
    'link-abs': { link: '/etc/hostname' },
    'link-long': { link: longTarget },
    'locked/inside.txt': 'in a read-only directory',
    'zero': '',
  });
  chmodSync(join(tree, 'locked'), 0o555);
  // 50 MB of varied bytes, written in pieces.
  const big = openSync(join(tree, 'big.bin'), 'w');
  for (let i = 0; i < 50; i += 1) writeSync(big, createHash('sha512').update(String(i)).digest().toString('hex').repeat(8192).slice(0, 1 << 20));
  closeSync(big);
});
afterAll(() => {
  chmodSync(join(tree, 'locked'), 0o755);
  removeDir(dir);
});

describe('tarStream', () => {
  test('GNU tar extracts exactly the tree: types, modes, bytes, link targets; the size is known before streaming', async () => {
    const source = await readUpload(tree, []);
    const tar = tarStream(source, source.entries);
    const { state, sink } = counter();
    await pipeline(tarBytes(tar), sink);
    expect(state.bytes).toBe(tar.size);
    expect(tar.size % 512).toBe(0);

    const out = join(dir, 'gnu');
    mkdirSync(out);
    await extract(tarBytes(tar), out);
    const expected = describeTree(tree);
    expect(expected['locked']).toBe('dir 555');
    expect(expected[long]).toMatch(/^file 644 9 /);
    expect(describeTree(out)).toEqual(expected);
  });

  // BusyBox is installed by .ci/run: hosts that run it are a target too.
  test('BusyBox tar extracts the same tree', async () => {
    const source = await readUpload(tree, []);
    const out = join(dir, 'busybox');
    mkdirSync(out);
    await extract(tarBytes(tarStream(source, source.entries)), out, ['busybox', 'tar', '-xf', '-']);
    expect(describeTree(out)).toEqual(describeTree(tree));
  });

  test('a delta stream plus the unchanged files copied gives the same tree as a full one', async () => {
    const source = await readUpload(tree, []);
    const previous = source.entries.filter((entry) => entry.path !== 'src/index.js').map((entry) => (entry.path === 'bin/start' ? { ...entry, mode: 0o644 } : entry));
    const plan = planUpload(source, listedContent(previous));
    expect(plan.send.filter((entry) => entry.type === 'file').map((entry) => entry.path)).toEqual(['bin/start', 'src/index.js']);
    const out = join(dir, 'delta');
    mkdirSync(out);
    const tar = tarStream(source, plan.send);
    expect(tar.size).toBeLessThan(64 * 1024);
    await extract(tarBytes(tar), out);
    // What the host does for the rest: copy from the current release (here, the tree itself).
    chmodSync(join(out, 'locked'), 0o755);
    for (const entry of plan.unchanged) execFileSync('cp', ['-p', join(tree, entry.path), join(out, entry.path)]);
    chmodSync(join(out, 'locked'), 0o555);
    expect(describeTree(out)).toEqual(describeTree(tree));
  });

  test('inline members come first, from memory', async () => {
    const source = await readUpload(tree, []);
    const entries = source.entries.filter((entry) => entry.path === 'src/index.js' || entry.path === 'src');
    const tar = tarStream(source, entries, [{ path: '.tagflip-unchanged', data: Buffer.from('a\0b\0') }]);
    const out = join(dir, 'inline');
    mkdirSync(out);
    await extract(tarBytes(tar), out);
    const listed = execFileSync('tar', ['-tf', '-'], { input: await collect(tarBytes(tar)) }).toString().split('\n');
    expect(listed.slice(0, 3)).toEqual(['.tagflip-unchanged', 'src/', 'src/index.js']);
    expect(describeTree(out)['.tagflip-unchanged']).toBe(`file 600 4 ${createHash('sha256').update('a\0b\0').digest('hex')}`);
  });

  test('a file that changed size since it was hashed fails the stream, named', async () => {
    const site = join(dir, 'changing');
    writeTree(site, { 'grows.txt': 'short', 'shrinks.txt': 'a longer text' });
    const source = await readUpload(site, []);
    appendFileSync(join(site, 'grows.txt'), ' and longer');
    const grows = source.entries.filter((entry) => entry.path === 'grows.txt');
    await expect(collect(tarBytes(tarStream(source, grows)))).rejects.toThrow(new UploadError("'grows.txt' changed since it was read (5 bytes then, more than 5 now)", 'files left alone during the deploy'));
    truncateSync(join(site, 'shrinks.txt'), 2);
    const shrinks = source.entries.filter((entry) => entry.path === 'shrinks.txt');
    await expect(collect(tarBytes(tarStream(source, shrinks)))).rejects.toThrow("'shrinks.txt' changed since it was read (13 bytes then, 2 now)");
  });

  test('many small files packed into pieces arrive intact and in order, around files larger than a piece', async () => {
    const site = join(dir, 'many');
    const spec: Record<string, string | Buffer> = {};
    for (let i = 0; i < 60; i += 1) spec[`f${String(i).padStart(2, '0')}.txt`] = `file ${i}\n`.repeat(i * 37);
    spec['f20-big.bin'] = Buffer.alloc(600 * 1024, 7);
    spec['f40-exact.bin'] = Buffer.alloc(256 * 1024, 9);
    writeTree(site, spec);
    const source = await readUpload(site, []);
    const out = join(dir, 'many-out');
    mkdirSync(out);
    await extract(tarBytes(tarStream(source, source.entries)), out);
    expect(describeTree(out)).toEqual(describeTree(site));
  });

  test('a file swapped for a symlink since it was hashed is not followed out of the tree', async () => {
    const site = join(dir, 'swapped');
    writeTree(site, { 'config.txt': 'x'.repeat(10) });
    const source = await readUpload(site, []);
    rmSync(join(site, 'config.txt'));
    symlinkSync('/etc/hostname', join(site, 'config.txt'));
    await expect(collect(tarBytes(tarStream(source, source.entries)))).rejects.toThrow(new UploadError("'config.txt' cannot be read any more (ELOOP)", 'files left alone during the deploy'));
  });

  test('a file removed before its turn fails the stream, named', async () => {
    const site = join(dir, 'vanishing');
    const spec: Record<string, string> = {};
    for (let i = 0; i < 30; i += 1) spec[`f${String(i).padStart(2, '0')}.txt`] = `file ${i}\n`;
    writeTree(site, spec);
    const source = await readUpload(site, []);
    rmSync(join(site, 'f05.txt'));
    await expect(collect(tarBytes(tarStream(source, source.entries)))).rejects.toThrow(new UploadError("'f05.txt' cannot be read any more (ENOENT)", 'files left alone during the deploy'));
  });

  test('from a .tar.gz: one pass in archive order, hard link copies included', async () => {
    const archive = join(dir, 'site.tgz');
    execFileSync('ln', ['-f', join(tree, 'src/index.js'), join(dir, 'hard.js')]);
    execFileSync('tar', ['-czf', archive, '-C', tree, '.', '-C', dir, 'hard.js']);
    const source = await readUpload(archive, []);
    const out = join(dir, 'from-tgz');
    mkdirSync(out);
    await extract(tarBytes(tarStream(source, source.entries)), out);
    const expected = describeTree(tree);
    expected['hard.js'] = expected['src/index.js'];
    expect(describeTree(out)).toEqual(expected);
  });

  test('memory stays flat: hashing and streaming a 200 MB file grows RSS by less than 64 MB', async () => {
    const site = join(dir, 'huge');
    mkdirSync(site);
    // Sparse: 200 MB to read, no disk used.
    writeFileSync(join(site, 'huge.bin'), '');
    truncateSync(join(site, 'huge.bin'), 200 * 1024 * 1024);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const source = await readUpload(site, []);
      const tar = tarStream(source, source.entries);
      const { state, sink } = counter();
      await pipeline(tarBytes(tar), sink);
      expect(state.bytes).toBe(tar.size);
      expect(tar.size).toBeGreaterThan(200 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect((peak - before) / 1024 / 1024).toBeLessThan(64);
  });
});

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('prepareTransfer', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  test('the stream reaches the connection in writes of 64 KiB or more (the last may be less), not header by header', async () => {
    const site = join(dir, 'small-files');
    const spec: Record<string, string> = {};
    for (let i = 0; i < 400; i += 1) spec[`d${i % 7}/f${i}.txt`] = `file ${i}\n`.repeat(40);
    writeTree(site, spec);
    const source = await readUpload(site, []);
    const transfer = prepareTransfer(source, null, '', false);
    const sizes: number[] = [];
    const chunks: Buffer[] = [];
    for await (const chunk of transfer.stream()) {
      sizes.push((chunk as Buffer).length);
      chunks.push(chunk as Buffer);
    }
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(transfer.size);
    expect(sizes.slice(0, -1).every((size) => size >= 64 * 1024)).toBe(true);
    // The stream starts with the tar (the unchanged files' list travels in the script).
    const { tar } = transfer.sections;
    const out = join(dir, 'small-files-out');
    mkdirSync(out);
    execFileSync('tar', ['--no-same-owner', '-xf', '-', '-C', out], { input: Buffer.concat(chunks).subarray(0, tar) });
    expect(describeTree(out)).toEqual(describeTree(site));
  });

  test('pieces handed back once taken are filled again, and the stream is the same bytes', async () => {
    // Both tars carry the time they are made in every header: the same second for both.
    jest.spyOn(Date, 'now').mockReturnValue(Date.UTC(2026, 0, 1));
    const source = await readUpload(tree, []);
    const expected = await collect(tarBytes(tarStream(source, source.entries)));
    const transfer = prepareTransfer(source, null, '', false);
    const copies: Buffer[] = [];
    const seen = new Set<Buffer>();
    for await (const chunk of transfer.stream()) {
      const piece = chunk as Buffer;
      seen.add(piece);
      // Copied, as the connection copies it into its packets, then handed back.
      copies.push(Buffer.from(piece));
      transfer.taken(piece);
      // Only the stream's own pieces are kept: a buffer of anyone else's is not.
      transfer.taken(Buffer.alloc(piece.length));
    }
    const sent = Buffer.concat(copies);
    expect(sent.subarray(0, transfer.sections.tar).equals(expected)).toBe(true);
    expect(sent.subarray(transfer.sections.tar).equals(source.list)).toBe(true);
    // 50 MB in pieces of 256 KiB, from two buffers (and the last piece's view).
    expect(copies.length).toBeGreaterThan(150);
    expect(seen.size).toBeLessThanOrEqual(3);
  });

  test('files are reused only from the copy the host made with the facts: the plan lists them, and without that copy everything is sent', async () => {
    const site = join(dir, 'reuse');
    writeTree(site, { 'same.txt': 'same\n', 'changed.txt': 'new\n', 'kept/deep/x.txt': 'x\n', 'app/': '' });
    const source = await readUpload(site, []);
    const sha = (path: string) => source.entries.find((entry) => entry.path === path)!.sha256;
    const file = (path: string, sha256 = 'f'.repeat(64), size = 4) => ({ path, type: 'file' as const, mode: 0o644, size, sha256 });
    const previous = [file('same.txt', sha('same.txt'), 5), file('changed.txt'), file('kept/deep/x.txt', sha('kept/deep/x.txt'), 2), file('gone.txt')];
    const paths = (base64: string) => Buffer.from(base64, 'base64').toString('utf8').split('\0');
    const copied = prepareTransfer(source, listedContent(previous), 'v1', true);
    expect(paths(copied.sections.unchanged)).toEqual(['kept/deep/x.txt', 'same.txt', '']);
    expect(copied.sections.from).toBe('v1');
    expect(copied.plan.send.map((entry) => entry.path)).toEqual(['app', 'changed.txt', 'kept', 'kept/deep']);
    const notCopied = prepareTransfer(source, listedContent(previous), 'v1', false);
    expect(notCopied.sections.unchanged).toBe('');
    expect(notCopied.sections.from).toBe('');
    expect(notCopied.plan.send.filter((entry) => entry.type === 'file')).toHaveLength(3);
  });
});
