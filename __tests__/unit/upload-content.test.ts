import { describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { type UploadEntry, comparePaths, contentListHash, parseContentList, renderContentList } from '../../src/core/content-list.js';
import { planUpload } from '../../src/upload/diff.js';
import type { UploadSource } from '../../src/upload/tree.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const file = (path: string, text: string, mode = 0o644): UploadEntry => ({ path, type: 'file', mode, size: Buffer.byteLength(text), sha256: sha(text) });
const dir = (path: string): UploadEntry => ({ path, type: 'dir', mode: 0o755, size: 0, sha256: '' });
const link = (path: string, target: string): UploadEntry => ({ path, type: 'symlink', mode: 0o777, size: 0, sha256: sha(target), target });

const entries = [file('a b.txt', 'x'), link('a/link', '../a b.txt'), dir('a'), file('a/ü.txt', 'yy', 0o755)];

describe('content list', () => {
  test('one JSON object per line, in tree order, fixed keys', () => {
    expect(renderContentList(entries)).toBe(
      [
        `{"path":"a","type":"dir","mode":493,"size":0,"sha256":""}`,
        `{"path":"a/link","type":"symlink","mode":511,"size":0,"sha256":"${sha('../a b.txt')}","target":"../a b.txt"}`,
        `{"path":"a/ü.txt","type":"file","mode":493,"size":2,"sha256":"${sha('yy')}"}`,
        `{"path":"a b.txt","type":"file","mode":420,"size":1,"sha256":"${sha('x')}"}`,
        '',
      ].join('\n'),
    );
  });

  test('parse(render(x)) is x, sorted; the hash does not depend on the input order', () => {
    const text = renderContentList(entries);
    expect(parseContentList(text)).toEqual([entries[2], entries[1], entries[3], entries[0]]);
    expect(contentListHash([...entries].reverse())).toBe(contentListHash(entries));
    expect(contentListHash(entries)).toBe(sha(text));
    expect(contentListHash([...entries.slice(1), { ...entries[0], mode: 0o600 }])).not.toBe(contentListHash(entries));
  });

  test('parsing is tolerant: malformed lines are ignored', () => {
    const good = renderContentList([file('ok', 'ok')]);
    const text = [
      'not json',
      '{"path":"/abs","type":"file","mode":420,"size":1,"sha256":"' + sha('x') + '"}',
      '{"path":"a/../b","type":"file","mode":420,"size":1,"sha256":"' + sha('x') + '"}',
      '{"path":"x","type":"fifo","mode":420,"size":0,"sha256":""}',
      '{"path":"x","type":"file","mode":4095,"size":1,"sha256":"' + sha('x') + '"}',
      '{"path":"x","type":"file","mode":420,"size":-1,"sha256":"' + sha('x') + '"}',
      '{"path":"x","type":"file","mode":420,"size":1,"sha256":"short"}',
      '{"path":"l","type":"symlink","mode":511,"size":0,"sha256":"' + sha('') + '"}',
      '[1,2]',
      good.trim(),
      '',
    ].join('\n');
    expect(parseContentList(text)).toEqual([file('ok', 'ok')]);
  });

  test('tree order: a directory, everything under it, then its next sibling', () => {
    expect(['a b', 'a/x', 'a', 'a-b/c', 'a.txt', 'a/x/y'].sort(comparePaths)).toEqual(['a', 'a/x', 'a/x/y', 'a b', 'a-b/c', 'a.txt']);
  });
});

describe('planUpload', () => {
  const source = (list: UploadEntry[]) => ({ entries: list }) as UploadSource;

  test('without a previous list everything is sent', () => {
    const plan = planUpload(source(entries), null);
    expect(plan.send).toEqual(entries);
    expect(plan.unchanged).toEqual([]);
    expect(plan.sendBytes).toBe(3);
  });

  test('only regular files identical in path, type, mode, size and hash are copied on the host', () => {
    const now = [dir('d'), file('same', 'same'), file('changed', 'new'), file('chmod', 'x', 0o755), file('added', 'a'), link('retargeted', 'b'), link('link-same', 'a'), file('was-link', 'a')];
    const before = [dir('d'), file('same', 'same'), file('changed', 'old'), file('chmod', 'x', 0o644), file('removed', 'r'), link('retargeted', 'a'), link('link-same', 'a'), link('was-link', 'a')];
    const plan = planUpload(source(now), before);
    expect(plan.unchanged.map((entry) => entry.path)).toEqual(['same']);
    expect(plan.send.map((entry) => entry.path)).toEqual(['d', 'changed', 'chmod', 'added', 'retargeted', 'link-same', 'was-link']);
    expect(plan.sendBytes).toBe(3 + 1 + 1 + 1);
  });
});
