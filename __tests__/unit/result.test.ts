import { describe, expect, test } from '@jest/globals';
import { type HostResult, hostsOutput, renderSummary, summarize } from '../../src/result.js';

function host(changes: Partial<HostResult> = {}): HostResult {
  return {
    host: 'deploy@web1',
    status: 'deployed',
    release: 'v3.0',
    previousRelease: 'v2.9',
    releasePath: '/srv/app/releases/v3.0',
    buildSeconds: 12.345,
    totalSeconds: 14,
    error: '',
    ...changes,
  };
}

describe('summarize', () => {
  test('one host: its values are the outputs', () => {
    const only = host();
    expect(summarize([only])).toEqual({
      status: 'deployed',
      release: 'v3.0',
      previousRelease: 'v2.9',
      releasePath: '/srv/app/releases/v3.0',
      hosts: [only],
    });
  });

  test.each(['deployed', 'unchanged', 'failed', 'dry-run'] as const)('one host %s: status %s', (status) => {
    expect(summarize([host({ status })]).status).toBe(status);
  });

  test('any failed host fails the run; release values come from the first host', () => {
    const hosts = [host(), host({ host: 'deploy@web2', status: 'failed', release: 'v2.9', previousRelease: 'v2.8', error: 'boom' })];
    expect(summarize(hosts)).toEqual({
      status: 'failed',
      release: 'v3.0',
      previousRelease: 'v2.9',
      releasePath: '/srv/app/releases/v3.0',
      hosts,
    });
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

  test('a multi-line error stays on its row', () => {
    const text = renderSummary(summarize([host({ status: 'failed', error: 'a\n\nb\n' })]), 'T');
    expect(text.split('\n')[4]).toBe('| deploy@web1 | failed | v3.0 | v2.9 | 12.3 s | 14.0 s | a  b  |');
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
});
