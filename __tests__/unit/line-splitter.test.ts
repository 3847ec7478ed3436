import { describe, expect, test } from '@jest/globals';
import { CUT_MARK, LineSplitter, MAX_LINE } from '../../src/remote/line-splitter.js';

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
