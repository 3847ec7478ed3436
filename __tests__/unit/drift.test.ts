import type { ControlLine } from '../../src/core/control-line.js';
import { DRIFT_SHOWN, type DriftEntry, driftReport, readDriftEntries, renderDrift, showPath } from '../../src/core/drift.js';

const answer = (bytes: Buffer, length = bytes.length): ControlLine[] => {
  const base64 = bytes.toString('base64');
  const parts = base64 ? [base64.slice(0, 8), base64.slice(8)].filter(Boolean) : [];
  return [...parts.map((part) => ({ kind: 'drift-part', args: [part], rest: part })), { kind: 'drift-done', args: [String(length)], rest: String(length) }];
};

describe('showPath', () => {
  test.each([
    ['plain/path.txt', Buffer.from('plain/path.txt'), 'plain/path.txt'],
    ['UTF-8 stays as it is', Buffer.from('café/ü'), 'café/ü'],
    ['not UTF-8: each such byte as \\xNN', Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'caf\\xe9'],
    ['a newline cannot forge a log line', Buffer.from('a\nerror: b'), 'a\\x0aerror: b'],
    ['a backslash is doubled, so \\xNN is unambiguous', Buffer.from('a\\x41'), 'a\\\\x41'],
  ])('%s', (_name, bytes, shown) => {
    expect(showPath(bytes)).toBe(shown);
  });
});

describe('readDriftEntries', () => {
  test('kinds, directories (a trailing /) and bytes', () => {
    const bytes = Buffer.concat([Buffer.from('a new\0c caf'), Buffer.from([0xe9]), Buffer.from('\0r old/dir/\0')]);
    expect(readDriftEntries(answer(bytes))).toEqual([
      { kind: 'added', path: 'new', isDir: false },
      { kind: 'changed', path: 'caf\\xe9', isDir: false },
      { kind: 'removed', path: 'old/dir', isDir: true },
    ]);
  });

  test('an answer that is not whole, or not ours, reads as none', () => {
    const bytes = Buffer.from('a new\0');
    expect(readDriftEntries(answer(bytes, bytes.length + 1))).toBeNull();
    expect(readDriftEntries(answer(bytes).slice(0, -1))).toBeNull();
    expect(readDriftEntries(answer(Buffer.from('x new\0')))).toBeNull();
    expect(readDriftEntries(answer(Buffer.alloc(0)))).toEqual([]);
  });
});

describe('driftReport', () => {
  test('counts are whole, paths stop at DRIFT_SHOWN; ignored entries are counted apart', () => {
    const entries: DriftEntry[] = Array.from({ length: DRIFT_SHOWN + 5 }, (_, i) => ({ kind: 'added' as const, path: `f${i}`, isDir: false }));
    entries.push({ kind: 'removed', path: 'cache', isDir: true });
    const report = driftReport('v1', entries, (entry) => entry.path === 'cache');
    expect(report).toMatchObject({ state: 'drifted', added: { count: DRIFT_SHOWN + 5 }, removed: { count: 0, paths: [] }, ignored: 1 });
    expect(report.added.paths).toHaveLength(DRIFT_SHOWN);
    expect(renderDrift(report)).toContain('    … and 5 more added');
  });

  test('nothing left once ignored is clean', () => {
    const report = driftReport('v1', [{ kind: 'changed', path: 'x.pyc', isDir: false }], () => true);
    expect(report.state).toBe('clean');
    expect(renderDrift(report)).toEqual(['  drift: v1 is as deployed (1 ignored by drift-ignore)']);
  });
});
