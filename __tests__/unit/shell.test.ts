import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { quote, renderAssignments } from '../../src/remote/shell.js';

/** What /bin/sh makes of `printf %s <quoted>`: the bytes it prints. */
function roundTrip(value: string): Buffer {
  return execFileSync('/bin/sh', ['-c', `printf %s ${quote(value)}`]);
}

/** A deterministic pseudo-random printable ASCII string (space to ~). */
function randomPrintable(length: number, seed = 12345): string {
  let state = seed;
  let text = '';
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    text += String.fromCharCode(32 + (state % 95));
  }
  return text;
}

describe('quote', () => {
  test.each([
    ['plain', 'v3.0', "'v3.0'"],
    ['empty', '', "''"],
    ['a single quote', "'", `''\\'''`],
    ['quotes inside', "a'b'c", `'a'\\''b'\\''c'`],
    ['double quotes and $', '"$HOME"', `'"$HOME"'`],
  ])('%s: %j is written as %s', (_what, value, expected) => {
    expect(quote(value)).toBe(expected);
  });

  const HOSTILE: [string, string][] = [
    ['a single quote', "'"],
    ['two single quotes', "''"],
    ['a quote that tries to close', "x'; id; echo '"],
    ['a double quote', '"'],
    ['command substitution', '$(id)'],
    ['variable', '$HOME ${PATH} $1 $@ $$'],
    ['backticks', '`id`'],
    ['a backslash', '\\'],
    ['backslash escapes', '\\n\\t\\\\\\\''],
    ['newlines', 'line1\nline2\n\n'],
    ['a trailing newline', 'x\n'],
    ['a carriage return and tab', 'a\r\tb'],
    ['a glob', '*'],
    ['globs', '/* ? [a-z]'],
    ['a tilde', '~'],
    ['a tilde user', '~root/x'],
    ['printf options', '-n'],
    ['printf format', '%s %d %%'],
    ['a lone dash', '-'],
    ['semicolons and pipes', 'a;b|c&d>e<f'],
    ['braces', '{a,b} $((1+1))'],
    ['a comment', '# not a comment'],
    ['unicode', 'héllo wörld ✓ 日本語 🚀'],
    ['fullwidth and cyrillic', 'v1．0 vе1'],
    ['the empty string', ''],
    ['only spaces', '   '],
    ['control characters', '\u0001\u001b[31m\u007f'],
    ['a 10k random printable string', randomPrintable(10_000)],
  ];

  test.each(HOSTILE)('%s round-trips through /bin/sh byte for byte', (_what, value) => {
    expect(roundTrip(value).equals(Buffer.from(value, 'utf8'))).toBe(true);
  });

  test('the random string really contains every hostile ASCII character', () => {
    const text = randomPrintable(10_000);
    for (const char of `'"$\`\\*?~;|&<>(){}[]# `) expect(text).toContain(char);
  });

  test('a NUL byte throws', () => {
    expect(() => quote('a\0b')).toThrow('a shell value cannot contain a NUL byte');
    expect(() => quote('\0')).toThrow(Error);
  });
});

describe('renderAssignments', () => {
  test('plain, exported and secret assignments', () => {
    const text = renderAssignments([
      { name: 'release', value: 'v1' },
      { name: 'TAGFLIP_RELEASE', value: 'v1', exported: true },
      { name: 'TOKEN', value: "s3'cret", exported: true, secret: true },
      { name: '_x9', value: '' },
    ]);
    expect(text).toBe(["release='v1'", "export TAGFLIP_RELEASE='v1'", `export TOKEN='s3'\\''cret'`, "_x9=''"].join('\n'));
  });

  test('redact replaces only secret values', () => {
    const assignments = [
      { name: 'release', value: 'v1' },
      { name: 'TOKEN', value: 'hunter2', exported: true, secret: true },
      { name: 'PUBLIC', value: 'shown', exported: true, secret: false },
    ];
    expect(renderAssignments(assignments, true)).toBe(["release='v1'", "export TOKEN='***'", "export PUBLIC='shown'"].join('\n'));
    expect(renderAssignments(assignments, false)).toBe(["release='v1'", "export TOKEN='hunter2'", "export PUBLIC='shown'"].join('\n'));
    expect(renderAssignments(assignments)).toBe(renderAssignments(assignments, false));
  });

  test("redact shows 'shown' in place of the value (quoted), and only when redacting", () => {
    const assignments = [{ name: 'tf_user_env', value: "APP_ENV=prod\nTOKEN=hunt'er2", shown: 'APP_ENV=prod\nTOKEN=***' }];
    expect(renderAssignments(assignments, true)).toBe("tf_user_env='APP_ENV=prod\nTOKEN=***'");
    expect(renderAssignments(assignments, false)).toBe("tf_user_env='APP_ENV=prod\nTOKEN=hunt'\\''er2'");
  });

  test('no assignments render as the empty string', () => {
    expect(renderAssignments([])).toBe('');
  });

  test.each(['1X', 'A-B', 'a b', '', 'x;id', '$(id)', 'A=B', 'é', 'x\n'])('refuses the variable name %j', (name) => {
    expect(() => renderAssignments([{ name, value: 'v' }])).toThrow(`not a shell variable name: ${name}`);
  });

  test('the rendered block sets exactly those values in a real shell', () => {
    const values = { A: "it's $(id)", B: '`id`\nline2', C: '\\' };
    const block = renderAssignments(Object.entries(values).map(([name, value]) => ({ name, value, exported: true })));
    const out = execFileSync('/bin/sh', ['-c', `${block}\nprintf '%s\\0' "$A" "$B" "$C"`]).toString('utf8');
    expect(out.split('\0').slice(0, 3)).toEqual(Object.values(values));
  });

  test('a NUL in a value throws', () => {
    expect(() => renderAssignments([{ name: 'A', value: '\0' }])).toThrow('NUL');
  });
});
