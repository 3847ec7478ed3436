import { describe, expect, test } from '@jest/globals';
import { adoptedNow, departedRecord } from '../../src/core/adopt.js';
import { readHostFacts } from '../../src/core/facts.js';
import { NOW, parseHistoryEntry, parseManifest } from '../../src/core/manifest.js';
import { activationStack, factsAfterFlip, planPrune, planRollback, rollbackTarget } from '../../src/core/plan.js';
import { statusReport } from '../../src/commands/status.js';
import { control, facts, manifest } from './host-facts.js';
import { SimulatedHost } from './simulated-host.js';

/** A site deployed by hand: current -> releases/vhand, another hand-made directory, no records at all. */
const handSite = (changes: Parameters<typeof facts>[0] = {}) => facts({ current: 'vhand', dirs: ['old-by-hand', 'vhand'], ...changes });

describe('departedRecord: the record of the release a deploy replaces', () => {
  test('a recorded release: its record, now inactive', () => {
    const v1 = manifest('v1', 'active', '', { commit: 'c1', finished: '2024-06-01T10:01:00Z' });
    expect(departedRecord(facts({ current: 'v1', dirs: ['v1'], records: [v1] }), 'v1')).toEqual({ ...v1, state: 'inactive' });
  });

  test('a current release without a record is adopted: inactive, marked, with what the host tells', () => {
    const f = handSite({ currentCommit: '0123456789abcdef0123456789abcdef01234567', dataCurrent: 'd1', data: ['d1'] });
    expect(departedRecord(f, 'vhand')).toEqual({
      release: 'vhand',
      state: 'inactive',
      commit: '0123456789abcdef0123456789abcdef01234567',
      dataRelease: 'd1',
      previousRelease: '',
      started: '',
      finished: '',
      activated: '',
      exitCode: null,
      failedStep: '',
      actor: '',
      runUrl: '',
      host: '',
      adopted: NOW,
    });
  });

  test('nothing to adopt: no current, or a current whose directory is gone', () => {
    expect(departedRecord(facts(), '')).toBeNull();
    expect(departedRecord(facts({ current: 'gone', dirs: [] }), 'gone')).toBeNull();
  });

  test('adoptedNow: only a record adopted by the flip that writes it', () => {
    const adopted = departedRecord(handSite(), 'vhand');
    expect(adoptedNow(adopted)).toBe(true);
    // Read back from the host, its time is filled: adopted long ago, not now.
    expect(adoptedNow({ ...adopted!, adopted: '2024-06-01T10:00:00Z' })).toBe(false);
    expect(adoptedNow(manifest('v1', 'inactive'))).toBe(false);
    expect(adoptedNow(null)).toBe(false);
  });
});

describe('after the first flip on a hand-made site', () => {
  const before = handSite();
  const r1 = manifest('r1', 'ready', 'vhand', { finished: '2024-06-01T10:05:00Z' });
  const after = factsAfterFlip(before, r1, departedRecord(before, 'vhand'), 'deploy');

  test('the history places the adopted release below the new one; a bare rollback goes back to it', () => {
    expect(after.history.map((entry) => `${entry.event}:${entry.status}:${entry.release}`)).toEqual(['adopt:adopted:vhand', 'deploy:deployed:r1']);
    expect(activationStack(after)).toEqual(['vhand', 'r1']);
    expect(rollbackTarget(after)).toBe('vhand');
    expect(planRollback(after, '')).toMatchObject({ action: 'flip', target: 'vhand', from: 'r1', fromState: 'rolled-back' });
  });

  test('retention with keep-releases 1 keeps it (the rollback target) and leaves the unknown directory alone', () => {
    expect(planPrune(after, 1, ['r1', rollbackTarget(after)])).toEqual({ remove: [], keep: ['r1', 'vhand'], removeData: [], unknown: ['old-by-hand'] });
  });

  test('without the adoption (the old behaviour) vhand would be neither a rollback target nor kept', () => {
    const unadopted = factsAfterFlip(before, r1, null, 'deploy');
    expect(rollbackTarget(unadopted)).toBe('');
    expect(planPrune(unadopted, 1, ['r1']).remove).toEqual([]);
  });
});

describe('a hand-made site over several runs (keep-releases 1)', () => {
  const host = new SimulatedHost(1);
  host.facts = handSite();

  test('deploy r1: vhand adopted and kept as the rollback target; old-by-hand left alone', () => {
    expect(host.deploy('r1')).toMatchObject({ action: 'build', previousRelease: 'vhand' });
    expect([host.current, host.rollbackTarget, host.removed]).toEqual(['r1', 'vhand', []]);
    expect(host.states).toEqual({ r1: 'active', vhand: 'inactive' });
    expect(host.facts.manifests.get('vhand')?.adopted).toMatch(/^2024-06-01T/);
    expect(host.dirs).toEqual(['old-by-hand', 'r1', 'vhand']);
  });

  test('rollback: back on vhand; r1 rolled-back and kept; a second deploy would not adopt vhand again', () => {
    expect(host.rollback()).toMatchObject({ target: 'vhand', from: 'r1' });
    expect([host.current, host.states]).toEqual(['vhand', { r1: 'rolled-back', vhand: 'active' }]);
    expect(host.dirs).toEqual(['old-by-hand', 'r1', 'vhand']);
  });

  test('deploy r2, r3: vhand is pruned once it is old and nothing protects it; old-by-hand never', () => {
    host.deploy('r2');
    expect(host.facts.history.filter((entry) => entry.event === 'adopt')).toHaveLength(1);
    expect([host.current, host.rollbackTarget]).toEqual(['r2', 'vhand']);
    expect(host.dirs).toEqual(['old-by-hand', 'r2', 'vhand']);
    host.deploy('r3');
    expect([host.current, host.rollbackTarget, host.removed]).toEqual(['r3', 'r2', ['vhand']]);
    expect(host.dirs).toEqual(['old-by-hand', 'r2', 'r3']);
    expect(host.prune(undefined, 0)).toEqual([]);
    expect(host.dirs).toContain('old-by-hand');
  });
});

describe('reading adoption back', () => {
  test('an adopted record keeps its mark; records without it have none', () => {
    const text = JSON.stringify({ ...manifest('vhand', 'inactive'), adopted: '2024-06-01T10:00:00Z' });
    expect(parseManifest(text)?.adopted).toBe('2024-06-01T10:00:00Z');
    expect(parseManifest(JSON.stringify(manifest('v1', 'inactive')))).not.toHaveProperty('adopted');
  });

  test('an adopt history line is read', () => {
    expect(parseHistoryEntry('{"time":"t","event":"adopt","status":"adopted","release":"vhand","previousRelease":""}')).toMatchObject({ event: 'adopt', release: 'vhand' });
  });

  test('the commit of an unrecorded current: a git object name, or nothing', () => {
    const read = (value: string) => readHostFacts([control('fact current releases/vhand'), control(`fact current-commit ${value}`)]).currentCommit;
    expect(read('0123456789abcdef0123456789abcdef01234567')).toBe('0123456789abcdef0123456789abcdef01234567');
    expect(read('abc1234')).toBe('abc1234');
    for (const bad of ['', 'main', 'abc', 'ABCDEF0123', '0123456 rm -rf', 'x'.repeat(40)]) expect(read(bad)).toBe('');
  });

  test('status: a directory without a record is unknown; an adopted release is marked', () => {
    const f = facts({
      current: 'r1',
      dirs: ['old-by-hand', 'r1', 'vhand'],
      records: [manifest('r1', 'active', 'vhand', { finished: '2024-06-01T10:05:00Z' }), { ...manifest('vhand', 'inactive', '', { started: '' }), adopted: '2024-06-01T10:05:00Z' }],
      history: [parseHistoryEntry('{"event":"adopt","status":"adopted","release":"vhand"}')!, parseHistoryEntry('{"event":"deploy","status":"deployed","release":"r1","previousRelease":"vhand"}')!],
    });
    expect(statusReport(f).releases.map((release) => [release.release, release.state, release.adopted, release.rollbackTarget])).toEqual([
      ['r1', 'active', false, false],
      ['vhand', 'inactive', true, true],
      ['old-by-hand', 'unknown', false, false],
    ]);
  });
});
