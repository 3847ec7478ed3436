/** renderRecord (placeholders the remote shell fills in) and parseManifest (what it accepts, what it refuses). */
import { describe, expect, test } from '@jest/globals';
import { CODE, COMMIT, NOW, STEP, parseManifest, renderRecord } from '../../src/core/manifest.js';
import { building } from './script-fixtures.js';

describe('renderRecord and parseManifest', () => {
  test('the code placeholder is unquoted, the others stay strings', () => {
    expect(renderRecord({ a: NOW, b: COMMIT, c: STEP, exitCode: CODE, d: 1, e: null })).toBe(
      '{"a":"@tagflip:now@","b":"@tagflip:commit@","c":"@tagflip:step@","exitCode":@tagflip:code@,"d":1,"e":null}',
    );
  });

  test('a record without placeholders is plain JSON', () => {
    const record = building();
    expect(renderRecord(record)).toBe(JSON.stringify(record));
    expect(parseManifest(renderRecord(record))).toEqual(record);
  });

  test('after sed-like substitution of every placeholder the record parses', () => {
    const rendered = renderRecord({ ...building(), state: 'failed', commit: COMMIT, finished: NOW, exitCode: CODE, failedStep: STEP });
    expect(() => JSON.parse(rendered)).toThrow();
    const filled = rendered
      .replaceAll(NOW, '2024-06-01T10:04:00Z')
      .replaceAll(COMMIT, 'abcdef0123456789abcdef0123456789abcdef01')
      .replaceAll(CODE, '2')
      .replaceAll(STEP, 'build');
    expect(parseManifest(filled)).toEqual({
      ...building(),
      state: 'failed',
      commit: 'abcdef0123456789abcdef0123456789abcdef01',
      finished: '2024-06-01T10:04:00Z',
      exitCode: 2,
      failedStep: 'build',
    });
  });

  test('a value that merely contains the code placeholder is not unquoted', () => {
    const rendered = renderRecord({ actor: 'x@tagflip:code@', exitCode: CODE });
    expect(rendered).toBe('{"actor":"x@tagflip:code@","exitCode":@tagflip:code@}');
  });

  test.each(['building', 'ready', 'active', 'inactive', 'failed', 'rolled-back'] as const)('state %s is accepted', (state) => {
    expect(parseManifest(JSON.stringify({ release: 'v1', state }))?.state).toBe(state);
  });

  test('missing and mistyped fields get their defaults', () => {
    expect(parseManifest('{"release":"v1","state":"ready","commit":5,"exitCode":"2","actor":null,"extra":"x"}')).toEqual({
      release: 'v1',
      state: 'ready',
      commit: '',
      dataRelease: '',
      previousRelease: '',
      started: '',
      finished: '',
      activated: '',
      exitCode: null,
      failedStep: '',
      actor: '',
      runUrl: '',
      host: '',
    });
  });

  test.each([
    ['the empty string', ''],
    ['garbage', 'not json at all'],
    ['truncated JSON', '{"release":"v1","state":"rea'],
    ['null', 'null'],
    ['a number', '42'],
    ['a string', '"v1"'],
    ['an array', '[{"release":"v1","state":"ready"}]'],
    ['an empty object', '{}'],
    ['an unknown state', '{"release":"v1","state":"done"}'],
    ['a state in another case', '{"release":"v1","state":"Ready"}'],
    ['no state', '{"release":"v1"}'],
    ['no release', '{"state":"ready"}'],
    ['an empty release', '{"release":"","state":"ready"}'],
    ['a non-string release', '{"release":1,"state":"ready"}'],
    ['an unfilled placeholder', `{"release":"v1","state":"failed","exitCode":${CODE}}`],
  ])('parseManifest refuses %s', (_what, text) => {
    expect(parseManifest(text)).toBeNull();
  });
});
