import { describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { type UploadEntry, comparePaths, contentList, sortEntries } from '../../src/core/content-list.js';
import { planUpload } from '../../src/upload/diff.js';
import type { UploadSource } from '../../src/upload/tree.js';
import { listedContent, sourceOf } from './upload-fixtures.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const file = (path: string, text: string, mode = 0o644): UploadEntry => ({ path, type: 'file', mode, size: Buffer.byteLength(text), sha256: sha(text) });
const dir = (path: string): UploadEntry => ({ path, type: 'dir', mode: 0o755, size: 0, sha256: '' });
const link = (path: string, target: string): UploadEntry => ({ path, type: 'symlink', mode: 0o777, size: 0, sha256: sha(target), target });

const entries = [file('a b.txt', 'x'), link('a/link', '../a b.txt'), dir('a'), file('a/ü.txt', 'yy', 0o755)];

describe('content list', () => {
  test('one JSON object per line, in tree order, fixed keys; each line as it is in the list', async () => {
    const list = await contentList([...entries]);
    expect(list.lines).toEqual(list.text.toString('utf8').split('\n').slice(0, -1));
    expect(list.text.toString('utf8')).toBe(
      [
        `{"path":"a","type":"dir","mode":493,"size":0,"sha256":""}`,
        `{"path":"a/link","type":"symlink","mode":511,"size":0,"sha256":"${sha('../a b.txt')}","target":"../a b.txt"}`,
        `{"path":"a/ü.txt","type":"file","mode":493,"size":2,"sha256":"${sha('yy')}"}`,
        `{"path":"a b.txt","type":"file","mode":420,"size":1,"sha256":"${sha('x')}"}`,
        '',
      ].join('\n'),
    );
  });

  test('the hash does not depend on the input order', async () => {
    const hash = async (list: UploadEntry[]) => (await contentList(list)).hash;
    const { text } = await contentList([...entries]);
    expect(await hash([...entries].reverse())).toBe(await hash([...entries]));
    expect(await hash([...entries])).toBe(sha(text.toString('utf8')));
    expect(await hash([...entries.slice(1), { ...entries[0], mode: 0o600 }])).not.toBe(await hash([...entries]));
  });

  test('thousands of entries are listed without holding the event loop', async () => {
    const many = Array.from({ length: 5000 }, (_, index) => file(`d${index % 50}/f${index}.txt`, `file ${index}`));
    // Another task on the event loop, one step per turn: it can step only while the list lets it.
    let turns = 0;
    let listing = true;
    const step = () => {
      turns += 1;
      if (listing) setImmediate(step);
    };
    setImmediate(step);
    const list = await contentList(many);
    listing = false;
    expect(list.lines).toHaveLength(5000);
    // Made in one go, it would have let the other task step not once; it gives it a turn between slices.
    expect(turns).toBeGreaterThanOrEqual(5);
  });

  test('tree order: a directory, everything under it, then its next sibling', () => {
    const order = ['a', 'a/x', 'a/x/y', 'a b', 'a-b/c', 'a.txt'];
    expect(['a b', 'a/x', 'a', 'a-b/c', 'a.txt', 'a/x/y'].sort(comparePaths)).toEqual(order);
    expect(sortEntries(['a b', 'a/x', 'a', 'a-b/c', 'a.txt', 'a/x/y'].map((path) => ({ path }))).map(({ path }) => path)).toEqual(order);
  });
});

describe('planUpload', () => {
  const source = (list: UploadEntry[]): UploadSource => sourceOf(list);

  test('without a previous list everything is sent', () => {
    const plan = planUpload(source(entries), null);
    expect(plan.send).toEqual(entries);
    expect(plan.unchanged).toEqual([]);
    expect(plan.sendBytes).toBe(3);
  });

  test('only regular files identical in path, type, mode, size and hash are copied on the host', () => {
    const now = [dir('d'), file('same', 'same'), file('changed', 'new'), file('chmod', 'x', 0o755), file('added', 'a'), link('retargeted', 'b'), link('link-same', 'a'), file('was-link', 'a')];
    const before = [dir('d'), file('same', 'same'), file('changed', 'old'), file('chmod', 'x', 0o644), file('removed', 'r'), link('retargeted', 'a'), link('link-same', 'a'), link('was-link', 'a')];
    const plan = planUpload(source(now), listedContent(before));
    expect(plan.unchanged.map((entry) => entry.path)).toEqual(['same']);
    expect(plan.send.map((entry) => entry.path)).toEqual(['d', 'changed', 'chmod', 'added', 'retargeted', 'link-same', 'was-link']);
    expect(plan.sendBytes).toBe(3 + 1 + 1 + 1);
  });

  test('a file listed the same but changed on the host since, or listed in a form tagflip does not write, is sent', () => {
    const now = [file('same', 'same'), file('rewritten', 'r'), file('spaced', 's'), file('reordered', 'o')];
    const listed = listedContent(now);
    const files = new Set([...listed.files].filter((path) => path !== 'rewritten'));
    const { path, type, mode, size, sha256 } = file('reordered', 'o');
    const lines = new Set([...listed.lines].map((line) => line.replace('"spaced",', '"spaced", ')).filter((line) => !line.includes('"reordered"')));
    lines.add(JSON.stringify({ type, path, mode, size, sha256 }));
    const plan = planUpload(source(now), { lines, files });
    expect(plan.unchanged.map((entry) => entry.path)).toEqual(['same']);
    expect(plan.send.map((entry) => entry.path)).toEqual(['rewritten', 'spaced', 'reordered']);
  });
});
