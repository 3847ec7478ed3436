import { describe, expect, test } from '@jest/globals';
import { type HostResult, type StatusReport, hostsOutput, releasesOutput, renderStatus, renderSummary, summarize } from '../../src/core/result.js';
import { host } from './host-result.js';

describe('summarize', () => {
  test('one host: its values are the outputs', () => {
    const only = host();
    expect(summarize([only])).toEqual({
      ok: true,
      status: 'deployed',
      release: 'v3.0',
      previousRelease: 'v2.9',
      releasePath: '/srv/app/releases/v3.0',
      dataRelease: '',
      previousDataRelease: '',
      hosts: [only],
    });
  });

  test.each(['deployed', 'unchanged', 'rolled-back', 'failed', 'dry-run'] as const)('one host %s: the run has that status', (status) => {
    expect(summarize([host({ status })]).status).toBe(status);
  });

  test('any failed host fails the run; release values come from the first host', () => {
    const hosts = [host(), host({ host: 'deploy@web2', status: 'failed', release: 'v2.9', previousRelease: 'v2.8', error: 'boom' })];
    expect(summarize(hosts)).toEqual({
      ok: false,
      status: 'failed',
      release: 'v3.0',
      previousRelease: 'v2.9',
      releasePath: '/srv/app/releases/v3.0',
      dataRelease: '',
      previousDataRelease: '',
      hosts,
    });
  });

  test('data-release and previous-data-release come from the first host', () => {
    const hosts = [host({ dataRelease: 'v3.0', previousDataRelease: 'v2.0' }), host({ host: 'deploy@web2', dataRelease: 'x', previousDataRelease: 'y' })];
    expect(summarize(hosts)).toMatchObject({ dataRelease: 'v3.0', previousDataRelease: 'v2.0' });
  });

  test('a failed first host: its (unchanged) current release is reported', () => {
    const failed = host({ status: 'failed', release: 'v2.9', previousRelease: 'v2.8', releasePath: '/srv/app/releases/v2.9', error: 'x' });
    expect(summarize([failed])).toMatchObject({ status: 'failed', release: 'v2.9', previousRelease: 'v2.8', releasePath: '/srv/app/releases/v2.9' });
  });
});

describe('renderSummary', () => {
  test('one row per host, durations to a tenth, empty cells shown as –', () => {
    const result = summarize([host(), host({ host: 'deploy@web2:2222', status: 'unchanged', previousRelease: '', buildSeconds: 0, totalSeconds: 0.04 })]);
    expect(renderSummary(result, 'tagflip deploy v3.0')).toBe(
      [
        '### tagflip deploy v3.0: deployed',
        '',
        '| host | status | release | previous | build | total | error |',
        '| --- | --- | --- | --- | --- | --- | --- |',
        '| deploy@web1 | deployed | v3.0 | v2.9 | 12.3 s | 14.0 s | – |',
        '| deploy@web2:2222 | unchanged | v3.0 | – | 0.0 s | 0.0 s | – |',
        '',
      ].join('\n'),
    );
  });

  test('pipes are escaped and newlines joined, so an error cannot break the table', () => {
    const result = summarize([
      host({ status: 'failed', error: 'deploy@web1: build failed: exit | 2\nsee log || retry', release: 'a|b', previousRelease: '|' }),
    ]);
    const row = renderSummary(result, 'T').split('\n')[4];
    expect(row).toBe('| deploy@web1 | failed | a\\|b | \\| | 12.3 s | 14.0 s | deploy@web1: build failed: exit \\| 2 see log \\|\\| retry |');
    expect(renderSummary(result, 'T').split('\n')).toHaveLength(6);
    // Exactly the 8 column separators remain unescaped.
    expect(row.match(/(?<!\\)\|/g)).toHaveLength(8);
  });

  test('a multi-line error stays on its row: every line break (\\r too) a space, the ends trimmed', () => {
    const text = renderSummary(summarize([host({ status: 'failed', error: 'a\n\nb\n' }), host({ status: 'failed', error: 'c\rd\r\n' })]), 'T');
    expect(text.split('\n')[4]).toBe('| deploy@web1 | failed | v3.0 | v2.9 | 12.3 s | 14.0 s | a  b |');
    expect(text.split('\n')[5]).toBe('| deploy@web1 | failed | v3.0 | v2.9 | 12.3 s | 14.0 s | c d |');
    expect(text).not.toContain('\r');
  });

  test('warnings follow the table, one WARNING block each, naming the host, on one line', () => {
    const result = summarize([
      host({ status: 'rolled-back', warnings: ['data/current goes back from data release v3.0 to v2.0:\ndata written since is not in v2.0'] }),
      host({ host: 'deploy@web2', warnings: [] }),
      host({ host: 'deploy@web3', warnings: ['first', 'second'] }),
    ]);
    expect(renderSummary(result, 'T').split('\n').slice(7)).toEqual([
      '',
      '> [!WARNING]',
      '> deploy@web1: data/current goes back from data release v3.0 to v2.0: data written since is not in v2.0',
      '',
      '> [!WARNING]',
      '> deploy@web3: first',
      '',
      '> [!WARNING]',
      '> deploy@web3: second',
      '',
    ]);
  });

  test('no warnings: nothing after the table', () => {
    const text = renderSummary(summarize([host({ warnings: [] }), host({ host: 'deploy@web2' })]), 'T');
    expect(text.endsWith('| 14.0 s | – |\n')).toBe(true);
    expect(text).not.toContain('WARNING');
  });

  test('the title line carries the run status', () => {
    const text = renderSummary(summarize([host(), host({ status: 'failed' })]), 'tagflip deploy v3.0');
    expect(text.startsWith('### tagflip deploy v3.0: failed\n')).toBe(true);
  });
});

describe('hostsOutput', () => {
  test('kebab-case keys, seconds to a tenth', () => {
    const output = hostsOutput([host(), host({ host: 'local', status: 'failed', error: 'x "quoted"', buildSeconds: 0.05, totalSeconds: 1.25 })]);
    expect(JSON.parse(output)).toEqual([
      {
        host: 'deploy@web1',
        status: 'deployed',
        release: 'v3.0',
        'previous-release': 'v2.9',
        'release-path': '/srv/app/releases/v3.0',
        'data-release': '',
        'previous-data-release': '',
        'build-seconds': 12.3,
        'total-seconds': 14,
        error: '',
      },
      {
        host: 'local',
        status: 'failed',
        release: 'v3.0',
        'previous-release': 'v2.9',
        'release-path': '/srv/app/releases/v3.0',
        'data-release': '',
        'previous-data-release': '',
        'build-seconds': 0.1,
        'total-seconds': 1.3,
        error: 'x "quoted"',
      },
    ]);
    expect(output).not.toContain('\n');
  });

  test('no hosts is an empty array', () => {
    expect(hostsOutput([])).toBe('[]');
  });

  test('data-release and previous-data-release, in that order after release-path', () => {
    const [output] = JSON.parse(hostsOutput([host({ status: 'rolled-back', dataRelease: 'v2.0', previousDataRelease: 'v3.0', warnings: ['w'] })]));
    expect(Object.keys(output)).toEqual([
      'host',
      'status',
      'release',
      'previous-release',
      'release-path',
      'data-release',
      'previous-data-release',
      'build-seconds',
      'total-seconds',
      'error',
    ]);
    expect([output['data-release'], output['previous-data-release']]).toEqual(['v2.0', 'v3.0']);
  });
});

describe('hostsOutput: removed releases', () => {
  test('listed when retention removed any, left out otherwise', () => {
    const output = JSON.parse(hostsOutput([host({ removed: ['v1', 'v2'] }), host({ removed: [] }), host({ status: 'rolled-back' })]));
    expect(output[0]).toEqual({
      host: 'deploy@web1',
      status: 'deployed',
      release: 'v3.0',
      'previous-release': 'v2.9',
      'release-path': '/srv/app/releases/v3.0',
      'data-release': '',
      'previous-data-release': '',
      'build-seconds': 12.3,
      'total-seconds': 14,
      error: '',
      removed: ['v1', 'v2'],
    });
    expect(output[1]).not.toHaveProperty('removed');
    expect(output[2]).not.toHaveProperty('removed');
    expect(output[2].status).toBe('rolled-back');
  });
});

const REPORT: StatusReport = {
  current: 'v3.0',
  rollbackTarget: 'v2.9',
  lockHolder: { command: 'deploy', release: 'v4.0', actor: 'alice', runUrl: 'https://github.com/o/r/actions/runs/9', host: 'deploy@web2', since: '2024-06-01T11:00:00Z' },
  releases: [
    { release: 'v3.0', state: 'active', commit: 'abcdef0123456789abcdef0123456789abcdef01', finished: '2024-06-01T10:03:00Z', actor: 'carol', current: true, rollbackTarget: false, adopted: false },
    { release: 'v2.9', state: 'inactive', commit: '', finished: '2024-06-01T10:02:00Z', actor: '', current: false, rollbackTarget: true, adopted: false },
    { release: 'v2.8', state: 'rolled-back', commit: '1111111', finished: '2024-06-01T10:01:00Z', actor: 'bob', current: false, rollbackTarget: false, adopted: false },
    { release: 'stray', state: 'unknown', commit: '', finished: '', actor: '', current: false, rollbackTarget: false, adopted: false },
  ],
};

const statusHost = (changes: Partial<HostResult> = {}): HostResult =>
  host({ status: 'unchanged', release: 'v3.0', previousRelease: 'v2.9', buildSeconds: 0, totalSeconds: 0.5, report: REPORT, ...changes });

describe('releasesOutput', () => {
  test('one object per host, kebab-case keys, every release field by field', () => {
    const output = releasesOutput([statusHost()]);
    expect(output).not.toContain('\n');
    expect(JSON.parse(output)).toEqual([
      {
        host: 'deploy@web1',
        current: 'v3.0',
        'rollback-target': 'v2.9',
        lock: { command: 'deploy', release: 'v4.0', actor: 'alice', runUrl: 'https://github.com/o/r/actions/runs/9', host: 'deploy@web2', since: '2024-06-01T11:00:00Z' },
        releases: [
          { release: 'v3.0', state: 'active', commit: 'abcdef0123456789abcdef0123456789abcdef01', finished: '2024-06-01T10:03:00Z', actor: 'carol', current: true, 'rollback-target': false, adopted: false },
          { release: 'v2.9', state: 'inactive', commit: '', finished: '2024-06-01T10:02:00Z', actor: '', current: false, 'rollback-target': true, adopted: false },
          { release: 'v2.8', state: 'rolled-back', commit: '1111111', finished: '2024-06-01T10:01:00Z', actor: 'bob', current: false, 'rollback-target': false, adopted: false },
          { release: 'stray', state: 'unknown', commit: '', finished: '', actor: '', current: false, 'rollback-target': false, adopted: false },
        ],
        error: '',
      },
    ]);
  });

  test('not locked: lock is null', () => {
    expect(JSON.parse(releasesOutput([statusHost({ report: { ...REPORT, lockHolder: null } })]))[0].lock).toBeNull();
  });

  test('a host that failed before its status was read: empty values and the error', () => {
    expect(JSON.parse(releasesOutput([statusHost({ status: 'failed', report: undefined, error: 'deploy@web1: connection refused' })]))).toEqual([
      { host: 'deploy@web1', current: '', 'rollback-target': '', lock: null, releases: [], error: 'deploy@web1: connection refused' },
    ]);
  });

  test('no hosts: an empty array', () => {
    expect(releasesOutput([])).toBe('[]');
  });
});

describe('renderStatus', () => {
  test('current, rollback target, lock holder, then one aligned line per release with its marks', () => {
    expect(renderStatus(statusHost())).toEqual([
      'deploy@web1: current v3.0, rollback target v2.9',
      '  locked by deploy v4.0 by alice https://github.com/o/r/actions/runs/9 since 2024-06-01T11:00:00Z',
      '  release  state        commit        finished              actor',
      '  v3.0     active       abcdef012345  2024-06-01T10:03:00Z  carol  <- current',
      '  v2.9     inactive     -             2024-06-01T10:02:00Z  -      <- rollback target',
      '  v2.8     rolled-back  1111111       2024-06-01T10:01:00Z  bob',
      '  stray    unknown      -             -                     -',
    ]);
  });

  test('every column starts at the same place on every line, whatever is empty; adopted releases are marked', () => {
    const releases = [
      { release: 'r1', state: 'active' as const, commit: '', finished: '2024-06-01T10:05:00Z', actor: 'a-long-actor-name', current: true, rollbackTarget: false, adopted: false },
      { release: 'a-much-longer-name', state: 'inactive' as const, commit: 'abc1234', finished: '', actor: '', current: false, rollbackTarget: true, adopted: true },
      { release: 'old-by-hand', state: 'unknown' as const, commit: '', finished: '', actor: '', current: false, rollbackTarget: false, adopted: false },
    ];
    const lines = renderStatus(statusHost({ report: { ...REPORT, releases } })).slice(2);
    expect(lines[2]).toBe('  a-much-longer-name  inactive  abc1234  -                     -                  <- rollback target, adopted');
    const starts = (line: string) => [...line.matchAll(/(?<= {2})\S/g)].map((match) => match.index);
    for (const line of lines) expect(starts(line).slice(0, 5)).toEqual(starts(lines[0]).slice(0, 5));
  });

  test('nothing deployed, not locked', () => {
    expect(renderStatus(statusHost({ report: { current: '', rollbackTarget: '', lockHolder: null, releases: [] } }))).toEqual([
      'deploy@web1: current (none), rollback target (none)',
      '  not locked',
    ]);
  });

  test('a lock holder with few details', () => {
    const report = { ...REPORT, lockHolder: { command: 'prune', release: '', actor: '', runUrl: '', host: 'h', since: '' }, releases: [] };
    expect(renderStatus(statusHost({ report }))[1]).toBe('  locked by prune');
  });

  test('no report: what failed, the host named once; the error itself is in the log already, not printed twice (issue 22)', () => {
    expect(renderStatus(statusHost({ report: undefined, error: 'deploy@web1: preflight failed' }))).toEqual(['deploy@web1: no status: preflight failed (the error is in the log)']);
    const hostKey = 'deploy@web1: connect failed: host key verification failed: the server offered ssh-ed25519 SHA256:x, but known-hosts lists only …';
    expect(renderStatus(statusHost({ report: undefined, error: hostKey }))).toEqual(['deploy@web1: no status: connect failed (the error is in the log)']);
    expect(renderStatus(statusHost({ report: undefined }))).toEqual(['deploy@web1: no status']);
  });
});
