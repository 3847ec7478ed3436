/** summarize with several hosts and every command: ok, status and where the outputs come from. */
import { describe, expect, test } from '@jest/globals';
import { type HostResult, type HostStatus, hostRows, renderSummary, summarize } from '../../src/core/result.js';

function host(name: string, changes: Partial<HostResult> = {}): HostResult {
  return {
    host: name,
    status: 'deployed',
    release: 'v3.0',
    previousRelease: 'v2.9',
    releasePath: '/srv/app/releases/v3.0',
    dataRelease: 'v3.0',
    previousDataRelease: 'v2.9',
    buildSeconds: 10,
    totalSeconds: 12,
    error: '',
    ...changes,
  };
}

/** A host that could not be reached: it knows nothing about its releases. */
function unreachable(name: string): HostResult {
  return host(name, {
    status: 'failed',
    release: '',
    previousRelease: '',
    releasePath: '',
    dataRelease: '',
    previousDataRelease: '',
    buildSeconds: 0,
    totalSeconds: 30,
    error: `${name}: connection failed: connect ECONNREFUSED`,
  });
}

const outputsOf = (result: ReturnType<typeof summarize>) => ({
  release: result.release,
  previousRelease: result.previousRelease,
  releasePath: result.releasePath,
  dataRelease: result.dataRelease,
  previousDataRelease: result.previousDataRelease,
});

describe('summarize: ok', () => {
  test('every host deployed: ok', () => {
    expect(summarize([host('web1'), host('web2'), host('web3')])).toMatchObject({ ok: true, status: 'deployed' });
  });

  test.each([0, 1, 2])('one failed host (at position %i) among deployed ones: not ok, status failed', (position) => {
    const hosts = [host('web1'), host('web2'), host('web3')];
    hosts[position] = host(`web${position + 1}`, { status: 'failed', error: 'boom' });
    expect(summarize(hosts)).toMatchObject({ ok: false, status: 'failed' });
  });

  test('a failed last host among unchanged ones: not ok', () => {
    expect(summarize([host('web1', { status: 'unchanged' }), host('web2', { status: 'failed' })])).toMatchObject({ ok: false, status: 'failed' });
  });

  test('deploy: one rolled-back host (verify failed) makes the run not ok, status rolled-back', () => {
    const result = summarize([host('web1', { status: 'deployed' }), host('web2', { status: 'rolled-back', release: 'v2.9', error: 'verify failed' })], 'deploy');
    expect(result).toMatchObject({ ok: false, status: 'rolled-back' });
  });

  test('deploy: every host rolled back is not ok', () => {
    const hosts = ['web1', 'web2'].map((name) => host(name, { status: 'rolled-back', release: 'v2.9', previousRelease: 'v3.0' }));
    expect(summarize(hosts, 'deploy')).toMatchObject({ ok: false, status: 'rolled-back' });
  });

  test('deploy is the default command: a rolled-back host fails it', () => {
    expect(summarize([host('web1', { status: 'rolled-back' })])).toMatchObject({ ok: false, status: 'rolled-back' });
  });

  test('deploy: failed wins over rolled-back', () => {
    const hosts = [host('web1', { status: 'rolled-back' }), host('web2', { status: 'failed', error: 'NEEDS ATTENTION' })];
    expect(summarize(hosts, 'deploy')).toMatchObject({ ok: false, status: 'failed' });
  });

  test('rollback: rolled-back hosts are what a rollback is for: ok', () => {
    const hosts = ['web1', 'web2', 'web3'].map((name) => host(name, { status: 'rolled-back', release: 'v2.9', previousRelease: 'v3.0' }));
    expect(summarize(hosts, 'rollback')).toMatchObject({ ok: true, status: 'rolled-back', release: 'v2.9', previousRelease: 'v3.0' });
  });

  test('rollback: a failed host still fails it', () => {
    const hosts = [host('web1', { status: 'rolled-back' }), host('web2', { status: 'failed' })];
    expect(summarize(hosts, 'rollback')).toMatchObject({ ok: false, status: 'failed' });
  });

  test.each(['status', 'prune'])('%s: unchanged hosts are ok', (command) => {
    expect(summarize([host('web1', { status: 'unchanged' }), host('web2', { status: 'unchanged' })], command)).toMatchObject({ ok: true, status: 'unchanged' });
  });

  test.each(['status', 'prune'])('%s: a failed host is not ok', (command) => {
    expect(summarize([host('web1', { status: 'unchanged' }), unreachable('web2')], command)).toMatchObject({ ok: false, status: 'failed' });
  });

  test('dry-run hosts are ok, status dry-run', () => {
    expect(summarize([host('web1', { status: 'dry-run' }), host('web2', { status: 'dry-run' })])).toMatchObject({ ok: true, status: 'dry-run' });
  });

  test.each<[HostStatus[], string, boolean]>([
    [['deployed'], 'deploy', true],
    [['unchanged'], 'deploy', true],
    [['dry-run'], 'deploy', true],
    [['failed'], 'deploy', false],
    [['rolled-back'], 'deploy', false],
    [['rolled-back'], 'rollback', true],
    [['failed'], 'rollback', false],
    [['unchanged'], 'rollback', true],
    [['rolled-back', 'rolled-back'], 'rollback', true],
    [['deployed', 'unchanged'], 'deploy', true],
    [['deployed', 'rolled-back'], 'deploy', false],
    [['rolled-back', 'failed'], 'rollback', false],
  ])('statuses %j with command %s: ok is %s', (statuses, command, ok) => {
    const hosts = statuses.map((status, index) => host(`web${index + 1}`, { status }));
    expect(summarize(hosts, command).ok).toBe(ok);
  });
});

describe('summarize: the outputs come from the first host that has a release', () => {
  test('an unreachable first host does not blank the outputs: they come from the second', () => {
    const second = host('web2', { release: 'v2.9', previousRelease: 'v2.8', releasePath: '/srv/app/releases/v2.9', dataRelease: 'd2', previousDataRelease: 'd1' });
    const result = summarize([unreachable('web1'), second, host('web3')]);
    expect(outputsOf(result)).toEqual({ release: 'v2.9', previousRelease: 'v2.8', releasePath: '/srv/app/releases/v2.9', dataRelease: 'd2', previousDataRelease: 'd1' });
    expect(result).toMatchObject({ ok: false, status: 'failed' });
  });

  test('several unreachable hosts first: the first with a release is used', () => {
    const result = summarize([unreachable('web1'), unreachable('web2'), host('web3', { release: 'v1', releasePath: '/srv/app/releases/v1' }), host('web4')]);
    expect(result.release).toBe('v1');
    expect(result.releasePath).toBe('/srv/app/releases/v1');
  });

  test('every host unreachable: empty outputs, status failed', () => {
    const result = summarize([unreachable('web1'), unreachable('web2')]);
    expect(outputsOf(result)).toEqual({ release: '', previousRelease: '', releasePath: '', dataRelease: '', previousDataRelease: '' });
    expect(result).toMatchObject({ ok: false, status: 'failed' });
  });

  test('a first host with a release but no previous release: its empty previous-release is used, not another host’s', () => {
    const result = summarize([host('web1', { previousRelease: '', previousDataRelease: '' }), host('web2')]);
    expect(result.previousRelease).toBe('');
    expect(result.previousDataRelease).toBe('');
  });

  test('the first host with a release wins even when it failed (its unchanged current is reported)', () => {
    const failed = host('web1', { status: 'failed', release: 'v2.9', previousRelease: 'v2.8', releasePath: '/srv/app/releases/v2.9', error: 'build failed' });
    const result = summarize([failed, host('web2')]);
    expect(outputsOf(result)).toMatchObject({ release: 'v2.9', previousRelease: 'v2.8', releasePath: '/srv/app/releases/v2.9' });
  });

  test('the hosts are passed through as given, in order', () => {
    const hosts = [unreachable('web1'), host('web2'), host('web3')];
    const result = summarize(hosts);
    expect(result.hosts).toBe(hosts);
    expect(result.hosts.map((entry) => entry.host)).toEqual(['web1', 'web2', 'web3']);
  });

  test('a rollback across hosts: outputs from the first host with a release', () => {
    const hosts = [unreachable('web1'), host('web2', { status: 'rolled-back', release: 'v2.9', previousRelease: 'v3.0', releasePath: '/srv/app/releases/v2.9' })];
    expect(summarize(hosts, 'rollback')).toMatchObject({ ok: false, status: 'failed', release: 'v2.9', previousRelease: 'v3.0', releasePath: '/srv/app/releases/v2.9' });
  });
});

describe('summarize: status of a mixed fleet', () => {
  // docs/inputs-and-outputs.md, outputs: `unchanged` means "current did not change". When one host
  // already ran the release and another was deployed, current did change.
  test('deploy: first host unchanged, second deployed: the run status is deployed', () => {
    const result = summarize([host('web1', { status: 'unchanged' }), host('web2', { status: 'deployed' })], 'deploy');
    expect(result.status).toBe('deployed');
  });

  test('deploy: first host deployed, second unchanged: deployed', () => {
    expect(summarize([host('web1', { status: 'deployed' }), host('web2', { status: 'unchanged' })], 'deploy').status).toBe('deployed');
  });
});

describe('a flip whose answer never came (status unknown)', () => {
  const unknownHost = (name: string) =>
    host(name, { status: 'unknown', release: 'v2.9', unconfirmedRelease: 'v3.0', error: `${name}: flip unknown: current is either releases/v2.9 or releases/v3.0` });

  test('unknown wins over every other status, and fails the step', () => {
    for (const other of ['deployed', 'failed', 'rolled-back'] as HostStatus[]) {
      const result = summarize([host('web1', { status: other }), unknownHost('web2')], 'deploy');
      expect([result.status, result.ok]).toEqual(['unknown', false]);
    }
    expect(summarize([unknownHost('web1')], 'rollback')).toMatchObject({ status: 'unknown', ok: false, release: 'v2.9' });
  });

  test('the hosts output and the summary name both releases', () => {
    const result = summarize([unknownHost('web1')], 'deploy');
    expect(hostRows(result.hosts)[0]).toMatchObject({ status: 'unknown', release: 'v2.9', 'unconfirmed-release': 'v3.0' });
    expect(hostRows([host('web2')])[0]).not.toHaveProperty('unconfirmed-release');
    expect(renderSummary(result, 'tagflip deploy v3.0')).toContain('| web1 | unknown | v2.9 or v3.0 | v2.9 |');
  });
});
