import { describe, expect, test } from '@jest/globals';
import { CUT_MARK, LineSplitter, MAX_LINE } from '../../src/remote/line-splitter.js';
import { secretMasker } from '../../src/core/logger.js';

/** Feed the chunks; each line as [text, cut]. */
function split(chunks: string[], max = 8): [string, boolean][] {
  const lines: [string, boolean][] = [];
  const splitter = new LineSplitter((line, cut) => lines.push([line, cut]), max);
  chunks.forEach((chunk) => splitter.push(chunk));
  return lines;
}

describe('LineSplitter', () => {
  test('the cap is 64 Ki characters, and the mark says so', () => {
    expect(MAX_LINE).toBe(65536);
    expect(CUT_MARK).toBe('…[line cut at 65536 characters]');
  });

  test('lines up to the cap pass whole, across chunks; an unfinished line is held', () => {
    expect(split(['ab\ncd', 'ef\n\n12345678\n', 'held'])).toEqual([
      ['ab', false],
      ['cdef', false],
      ['', false],
      ['12345678', false],
    ]);
  });

  test('a longer line is cut into pieces of the cap, each but the last marked; all are flagged cut', () => {
    expect(split(['1234567890123456789\nnext\n'])).toEqual([
      [`12345678${CUT_MARK}`, true],
      [`90123456${CUT_MARK}`, true],
      ['789', true],
      ['next', false],
    ]);
  });

  test('the same cuts whatever the chunks', () => {
    const text = '1234567890123456789\nnext\n';
    const whole = split([text]);
    for (let at = 1; at < text.length; at++) expect(split([text.slice(0, at), text.slice(at)])).toEqual(whole);
    expect(split(Array.from(text))).toEqual(whole);
  });

  test('a line of exactly the cap is not cut, even when its newline comes later', () => {
    expect(split(['12345678', '\n'])).toEqual([['12345678', false]]);
    expect(split(['1234567', '8', '9\n'])).toEqual([
      [`12345678${CUT_MARK}`, true],
      ['9', true],
    ]);
  });

  test('a cut never splits a surrogate pair', () => {
    expect(split(['1234567🚀9\n'])).toEqual([
      [`1234567${CUT_MARK}`, true],
      ['🚀9', true],
    ]);
  });

  test('an endless line holds no more than the cap', () => {
    let longest = 0;
    const splitter = new LineSplitter((line) => (longest = Math.max(longest, line.length)));
    const chunk = 'x'.repeat(100_000);
    for (let i = 0; i < 50; i++) splitter.push(chunk);
    expect(longest).toBe(MAX_LINE + CUT_MARK.length);
  });
});

describe('LineSplitter: a line that is cut is masked before the cut', () => {
  /** Feed the chunks with secrets; each line as [text, cut]. */
  function masked(chunks: string[], secrets: string[], max = 8): [string, boolean][] {
    const lines: [string, boolean][] = [];
    const splitter = new LineSplitter((line, cut) => lines.push([line, cut]), max, secrets);
    chunks.forEach((chunk) => splitter.push(chunk));
    return lines;
  }
  const unmarked = (lines: [string, boolean][]) => lines.map(([line]) => line.replace(CUT_MARK, '')).join('');

  test('the issue: 65,531 characters, then a secret: masked before the cut, so no half of it anywhere', () => {
    const secret = 'S3CRETVALUE';
    const lines = masked([`${'x'.repeat(65_531)}${secret} done\n`], [secret], MAX_LINE);
    expect(lines).toEqual([
      [`${'x'.repeat(65_531)}*** d${CUT_MARK}`, true],
      ['one', true],
    ]);
    // Where the mask would not fit before the cap, the piece ends before it.
    expect(masked([`${'x'.repeat(65_534)}${secret} done\n`], [secret], MAX_LINE)).toEqual([
      [`${'x'.repeat(65_534)}${CUT_MARK}`, true],
      ['*** done', true],
    ]);
  });

  test('a secret across the cut at every offset, in any chunks: never split, never shown', () => {
    const secret = 'TOPSECRET';
    for (let before = 0; before <= 20; before++) {
      const line = `${'a'.repeat(before)}${secret}${'b'.repeat(20)}`;
      const expected = `${'a'.repeat(before)}***${'b'.repeat(20)}`;
      const whole = masked([`${line}\n`], [secret]);
      expect(unmarked(whole)).toBe(expected);
      for (const [piece] of whole) {
        expect(piece.replace(CUT_MARK, '').length).toBeLessThanOrEqual(8);
        // A MASK is never split: every run of * is one or more whole ***.
        for (const run of piece.match(/\*+/g) ?? []) expect(run.length % 3).toBe(0);
        for (let i = 2; i < secret.length; i++) {
          expect(piece).not.toContain(secret.slice(0, i + 1));
          expect(piece).not.toContain(secret.slice(secret.length - i - 1));
        }
      }
      for (let at = 1; at < line.length; at++) expect(masked([line.slice(0, at), `${line.slice(at)}\n`], [secret])).toEqual(whole);
      expect(masked([...Array.from(line), '\n'], [secret])).toEqual(whole);
    }
  });

  test('several secrets of different lengths, each across a cut somewhere, in any chunks', () => {
    const secrets = ['k3y', 'passw0rd-long', 'TOKEN-0123456789-abcdefghijklmnop', 'Z'];
    const line = `..k3y...passw0rd-long.....TOKEN-0123456789-abcdefghijklmnop.Z..k3y-passw0rd-long`;
    const expected = secretMasker(secrets)(line);
    for (const max of [5, 7, 8, 13, 16]) {
      const whole = masked([`${line}\n`], secrets, max);
      expect(unmarked(whole)).toBe(expected);
      for (let at = 1; at < line.length; at++) expect(masked([line.slice(0, at), `${line.slice(at)}\n`], secrets, max)).toEqual(whole);
    }
  });

  test('overlapping occurrences are masked as one stretch, so no part of either shows', () => {
    // "abcdef": abc and bcdef overlap; "aaaaaa" holds aaaa three times over.
    expect(unmarked(masked(['0123456789abcdef.\n'], ['abc', 'bcdef']))).toBe('0123456789***.');
    expect(unmarked(masked(['0123456789aaaaaa.\n'], ['aaaa']))).toBe('0123456789***.');
    // Adjacent secrets are two masks, as in a whole line.
    expect(unmarked(masked(['0123456789abcabc.\n'], ['abc']))).toBe('0123456789******.');
  });

  test('a secret longer than the cap is still masked whole; memory stays the cap plus the secret', () => {
    const secret = 'S'.repeat(30);
    const lines = masked([`${'x'.repeat(10)}${secret}${'y'.repeat(10)}\n`], [secret]);
    expect(unmarked(lines)).toBe(`${'x'.repeat(10)}***${'y'.repeat(10)}`);
  });

  test('a line that passes whole is passed on as it came: the reader tells control lines from output, and masks', () => {
    expect(masked(['S3CRET\n'], ['S3CRET'])).toEqual([['S3CRET', false]]);
  });

  test('secrets with a newline in them are not looked for (they never stand within a line)', () => {
    expect(masked(['0123456789a\nb\n'], ['a\nb'])).toEqual([
      [`01234567${CUT_MARK}`, true],
      ['89a', true],
      ['b', false],
    ]);
  });

  test('a mask never splits a surrogate pair either', () => {
    expect(masked(['123456🚀SECRET9\n'], ['SECRET'])).toEqual([
      [`123456🚀${CUT_MARK}`, true],
      ['***9', true],
    ]);
  });

  test('an endless line with secrets holds no more than the cap', () => {
    let longest = 0;
    let shown = '';
    const splitter = new LineSplitter((line) => {
      longest = Math.max(longest, line.length);
      if (shown.length < 200_000) shown += line.replace(CUT_MARK, '');
    }, MAX_LINE, ['S3CRETVALUE']);
    const chunk = `${'x'.repeat(9_995)}S3CRETVALUE`;
    for (let i = 0; i < 500; i++) splitter.push(chunk);
    expect(longest).toBe(MAX_LINE + CUT_MARK.length);
    expect(shown).not.toContain('S3C');
    expect(shown).not.toContain('LUE');
  });
});
