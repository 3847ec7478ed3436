import { describe, expect, test } from '@jest/globals';
import type { LockHolder } from '../../src/core/manifest.js';
import { statusReport } from '../../src/commands/status.js';
import { facts, history, manifest } from './host-facts.js';

const HOLDER: LockHolder = {
  command: 'deploy',
  release: 'v4',
  actor: 'alice',
  runUrl: 'https://github.com/o/r/actions/runs/9',
  host: 'deploy@web1',
  since: '2024-06-01T11:00:00Z',
};

const done = (minute: number) => `2024-06-01T10:${String(minute).padStart(2, '0')}:00Z`;

describe('statusReport', () => {
  test('an empty host', () => {
    expect(statusReport(facts({ deployPathExists: false }))).toEqual({ current: '', rollbackTarget: '', lockHolder: null, releases: [] });
  });

  test('every release with its fields, newest finished first; directories without a record last', () => {
    const f = facts({
      current: 'v3',
      dirs: ['v1', 'v2', 'v3', 'stray'],
      records: [
        manifest('v1', 'inactive', '', { commit: 'c1', finished: done(1), actor: 'alice' }),
        manifest('v2', 'inactive', 'v1', { commit: 'c2', finished: done(2), actor: 'bob' }),
        manifest('v3', 'active', 'v2', { commit: 'c3', finished: done(3), actor: 'carol' }),
        manifest('v4', 'failed', 'v3', { finished: done(4), actor: 'dave', exitCode: 2, failedStep: 'build' }),
      ],
      history: [history.deployed('v1'), history.deployed('v2', 'v1'), history.deployed('v3', 'v2'), history.failed('v4', 'v3')],
      lockHolder: HOLDER,
    });
    expect(statusReport(f)).toEqual({
      current: 'v3',
      rollbackTarget: 'v2',
      lockHolder: HOLDER,
      releases: [
        { release: 'v4', state: 'failed', commit: '', finished: done(4), actor: 'dave', current: false, rollbackTarget: false, adopted: false },
        { release: 'v3', state: 'active', commit: 'c3', finished: done(3), actor: 'carol', current: true, rollbackTarget: false, adopted: false },
        { release: 'v2', state: 'inactive', commit: 'c2', finished: done(2), actor: 'bob', current: false, rollbackTarget: true, adopted: false },
        { release: 'v1', state: 'inactive', commit: 'c1', finished: done(1), actor: 'alice', current: false, rollbackTarget: false, adopted: false },
        { release: 'stray', state: 'unknown', commit: '', finished: '', actor: '', current: false, rollbackTarget: false, adopted: false },
      ],
    });
  });

  test('after rollbacks: rolled-back releases are listed with their state and never the target', () => {
    const f = facts({
      current: 'v2',
      dirs: ['v1', 'v2', 'v3'],
      records: [
        manifest('v1', 'inactive', '', { finished: done(1) }),
        manifest('v2', 'active', 'v1', { finished: done(2) }),
        manifest('v3', 'rolled-back', 'v2', { finished: done(3) }),
      ],
      history: [history.deployed('v1'), history.deployed('v2', 'v1'), history.deployed('v3', 'v2'), history.rolledBack('v2', 'v3')],
    });
    const report = statusReport(f);
    expect([report.current, report.rollbackTarget]).toEqual(['v2', 'v1']);
    expect(report.releases.map((release) => [release.release, release.state, release.current, release.rollbackTarget])).toEqual([
      ['v3', 'rolled-back', false, false],
      ['v2', 'active', true, false],
      ['v1', 'inactive', false, true],
    ]);
  });

  test('releases without a finished time: the newer start first, then by name (newest-looking first)', () => {
    const f = facts({
      dirs: ['b1', 'b2', 'n1', 'n2'],
      records: [
        manifest('b1', 'building', '', { started: '2024-06-01T10:01:00Z' }),
        manifest('b2', 'building', '', { started: '2024-06-01T10:02:00Z' }),
        manifest('r', 'ready', '', { finished: done(0) }),
      ],
    });
    expect(statusReport(f).releases.map((release) => release.release)).toEqual(['r', 'b2', 'b1', 'n2', 'n1']);
  });

  test('a current release made by hand (no record) is listed and marked current', () => {
    const report = statusReport(facts({ current: 'hand', dirs: ['hand'] }));
    expect(report).toEqual({
      current: 'hand',
      rollbackTarget: '',
      lockHolder: null,
      releases: [{ release: 'hand', state: 'unknown', commit: '', finished: '', actor: '', current: true, rollbackTarget: false, adopted: false }],
    });
  });
});
