/**
 * The host side as shell files (src/remote/host/*.sh): embedded as they are,
 * clean to ShellCheck as they are, read by one function that puts the
 * includes in (host-pieces.ts).
 */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pieceReader } from '../../src/remote/host-pieces.js';
import { HOST_DIR, hostFileNames } from '../support/host-files.js';

const ROOT = join(HOST_DIR, '../../..');

describe('the host scripts', () => {
  test('src/remote/host-files.ts is what the .sh files make (npm run embed)', () => {
    const result = spawnSync('node', ['scripts/embed-host.mjs', '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  test('ShellCheck finds nothing in the files as they are, at warning level, following their includes', () => {
    const result = spawnSync('shellcheck', ['-S', 'warning', '-x', ...hostFileNames().map((name) => join(HOST_DIR, name))], { cwd: ROOT, encoding: 'utf8' });
    expect(result.error).toBeUndefined();
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  test('the ShellCheck check is real: a finding in a file is reported', () => {
    const result = spawnSync('shellcheck', ['-S', 'warning', '-s', 'sh', '-'], { input: 'tf_x=$(ls *)\nrm -rf "$tf_x"/$1\n', encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stdout).toContain('SC2115');
  });

  test('every shellcheck disable carries its reason on the line', () => {
    const bare = hostFileNames().flatMap((name) =>
      readFileSync(join(HOST_DIR, name), 'utf8')
        .split('\n')
        .map((line, index) => ({ line, where: `${name}:${index + 1}` }))
        .filter(({ line }) => /#\s*shellcheck\s+disable=/.test(line) && !/#\s*shellcheck\s+disable=\S+\s+#\s*\S/.test(line))
        .map(({ where, line }) => `${where}: ${line.trim()}`),
    );
    expect(bare).toEqual([]);
  });

  test('docs/architecture.md draws every file (which phase sends it, what it reads and writes)', () => {
    const drawing = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
    expect(hostFileNames().filter((name) => !drawing.includes(name))).toEqual([]);
  });

  test('every file opens with its header for ShellCheck and its reader', () => {
    for (const name of hostFileNames()) expect(readFileSync(join(HOST_DIR, name), 'utf8')).toMatch(/^# shellcheck shell=sh\n(#.*\n)*\n/);
  });
});

describe('pieceReader', () => {
  const header = '# shellcheck shell=sh\n# what it is\n\n';
  const read = pieceReader({
    'a.sh': `${header}echo a\n  . ./b.sh\nsh -c '@tagflip:include c.sh@ && echo done'\n`,
    'b.sh': `${header}echo b1\necho b2\n`,
    'c.sh': `${header}echo c\n`,
    'loop.sh': `${header}. ./loop2.sh\n`,
    'loop2.sh': `${header}. ./loop.sh\n`,
    'bare.sh': 'echo no header\n',
    'lost.sh': `${header}. ./nowhere.sh\n`,
  });

  test('drops the header and the last newline, puts in included files (indentation before the first line) and inline ones', () => {
    expect(read('a.sh')).toBe("echo a\n  echo b1\necho b2\nsh -c 'echo c && echo done'");
  });

  test.each([
    ['loop.sh', 'host scripts include each other: loop.sh -> loop2.sh -> loop.sh'],
    ['bare.sh', 'bare.sh must open with "# shellcheck shell=sh"'],
    ['lost.sh', 'there is no host script nowhere.sh (included by lost.sh)'],
    ['gone.sh', 'there is no host script gone.sh'],
  ])('%s: %s', (name, message) => {
    expect(() => read(name)).toThrow(message);
  });
});
