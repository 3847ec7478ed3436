import { describe, expect, test } from '@jest/globals';
import { compileExcludes, excluderWithParents } from '../../src/upload/exclude.js';

/** [path, isDir, excluded?] against one set of lines. */
function check(lines: string[], cases: [string, boolean, boolean][]) {
  const excluded = compileExcludes(lines);
  expect(cases.map(([path, isDir]) => [path, isDir, excluded(path, isDir)])).toEqual(cases);
}

describe('upload-exclude lines', () => {
  test('a trailing slash matches directories only, at any level', () => {
    check(['node_modules/'], [
      ['node_modules', true, true],
      ['packages/a/node_modules', true, true],
      ['node_modules', false, false],
      ['node_modules_old', true, false],
    ]);
  });

  test('a pattern without a slash matches the name at any level', () => {
    check(['*.log'], [
      ['app.log', false, true],
      ['var/log/app.log', false, true],
      ['logs', true, false],
      ['app.log.1', false, false],
      ['app.log', true, true],
    ]);
  });

  test('a leading slash anchors at the top of the upload', () => {
    check(['/build'], [
      ['build', true, true],
      ['build', false, true],
      ['src/build', true, false],
      ['builder', true, false],
    ]);
  });

  test('an inner slash anchors too', () => {
    check(['src/gen'], [
      ['src/gen', true, true],
      ['lib/src/gen', true, false],
    ]);
  });

  test('** matches zero or more directories; a trailing /** everything inside', () => {
    check(['docs/**/*.md', 'cache/**', '**/tmp'], [
      ['docs/a.md', false, true],
      ['docs/x/y/a.md', false, true],
      ['docs/a.txt', false, false],
      ['other/docs/a.md', false, false],
      ['cache', true, false],
      ['cache/x', false, true],
      ['cache/x/y', true, true],
      ['tmp', true, true],
      ['a/b/tmp', false, true],
    ]);
  });

  test('! re-includes, the last matching line wins', () => {
    check(['*.log', '!keep.log'], [
      ['a.log', false, true],
      ['keep.log', false, false],
      ['sub/keep.log', false, false],
    ]);
    check(['!keep.log', '*.log'], [['keep.log', false, true]]);
  });

  test('comments, blank lines, escapes and trailing spaces', () => {
    check(['# a comment', '', '   ', '\\#hash', '\\!bang', 'trailing   ', 'kept\\ ', 'lines\r'], [
      ['# a comment', false, false],
      ['#hash', false, true],
      ['!bang', false, true],
      ['trailing', false, true],
      ['kept ', false, true],
      ['kept', false, false],
      ['lines', false, true],
    ]);
  });

  test('? and [...] classes; * never crosses a slash', () => {
    check(['file?.txt', '[abc]x', '[!0-9]y', 'a*z'], [
      ['file1.txt', false, true],
      ['file12.txt', false, false],
      ['bx', false, true],
      ['dx', false, false],
      ['qy', false, true],
      ['7y', false, false],
      ['a/z', false, false],
      ['abcz', false, true],
    ]);
  });

  test('regex characters in a pattern are literal', () => {
    check(['a+b(c).txt', 'x.y'], [
      ['a+b(c).txt', false, true],
      ['aab(c)xtxt', false, false],
      ['xzy', false, false],
    ]);
  });

  test('.git is always excluded, and a negation cannot bring it back', () => {
    check(['!.git', '!.git/'], [
      ['.git', true, true],
      ['sub/.git', false, true],
      ['.github', true, false],
      ['.gitignore', false, false],
    ]);
  });

  test('lines given as one text with newlines', () => {
    check(['node_modules/\n*.log'], [
      ['node_modules', true, true],
      ['x.log', false, true],
    ]);
  });

  test('with parents: anything under an excluded directory is excluded, even if re-included', () => {
    const excluded = excluderWithParents(compileExcludes(['node_modules/', '!node_modules/keep.js', '/build']));
    expect(excluded('node_modules/keep.js', false)).toBe(true);
    expect(excluded('a/node_modules/x/y.js', false)).toBe(true);
    expect(excluded('build/out/main.js', false)).toBe(true);
    expect(excluded('src/build/main.js', false)).toBe(false);
    expect(excluded('src/main.js', false)).toBe(false);
  });
});
