import { describe, expect, test } from '@jest/globals';
import type { Manifest, ReleaseState } from '../../src/core/manifest.js';
import { readHostFacts } from '../../src/core/facts.js';
import { PlanError, planPrune, rollbackTarget } from '../../src/core/plan.js';
import { control, facts, manifest } from './host-facts.js';
import { SimulatedHost } from './simulated-host.js';

/** A record finished at minute `minute` past 10:00. */
function at(release: string, state: ReleaseState, minute: number): Manifest {
  const time = `2024-06-01T10:${String(minute).padStart(2, '0')}:00Z`;
  return manifest(release, state, '', { started: time, finished: time });
}

/** v1 … v5, finished in that order, each with its directory; v5 current. */
const five = () =>
  facts({
    current: 'v5',
    dirs: ['v1', 'v2', 'v3', 'v4', 'v5'],
    records: [at('v1', 'inactive', 1), at('v2', 'inactive', 2), at('v3', 'inactive', 3), at('v4', 'inactive', 4), at('v5', 'active', 5)],
  });

describe('planPrune', () => {
  test('keeps the keep-releases newest complete releases by finished time; removes the rest, oldest first', () => {
    expect(planPrune(five(), 3, ['v5', 'v4'])).toEqual({ remove: ['v1', 'v2'], keep: ['v5', 'v4', 'v3'], removeData: [], unknown: [] });
  });

  test('keep 1: only the current one (and the rollback target)', () => {
    expect(planPrune(five(), 1, ['v5', 'v4'])).toEqual({ remove: ['v1', 'v2', 'v3'], keep: ['v5', 'v4'], removeData: [], unknown: [] });
  });

  test('keep as many as there are, or more: nothing to remove', () => {
    expect(planPrune(five(), 5, ['v5', 'v4'])).toEqual({ remove: [], keep: ['v5', 'v4', 'v3', 'v2', 'v1'], removeData: [], unknown: [] });
    expect(planPrune(five(), 1000, ['v5'])).toEqual({ remove: [], keep: ['v5', 'v4', 'v3', 'v2', 'v1'], removeData: [], unknown: [] });
  });

  test('finished time decides, not the name or the order of the directories', () => {
    const f = facts({
      current: 'b',
      dirs: ['c', 'a', 'b', 'd'],
      records: [at('a', 'inactive', 40), at('b', 'active', 30), at('c', 'inactive', 10), at('d', 'inactive', 20)],
    });
    expect(planPrune(f, 2, ['b'])).toEqual({ remove: ['c', 'd'], keep: ['a', 'b'], removeData: [], unknown: [] });
  });

  test('current and the rollback target are kept even when they are the oldest', () => {
    const f = facts({
      current: 'v1',
      dirs: ['v1', 'v2', 'v3', 'v4', 'v5'],
      records: [at('v1', 'active', 1), at('v2', 'inactive', 2), at('v3', 'inactive', 3), at('v4', 'inactive', 4), at('v5', 'inactive', 5)],
    });
    expect(planPrune(f, 1, ['v1', 'v2'])).toEqual({ remove: ['v3', 'v4'], keep: ['v5', 'v2', 'v1'], removeData: [], unknown: [] });
  });

  test('an empty rollback target protects nothing', () => {
    expect(planPrune(five(), 1, ['v5', ''])).toEqual({ remove: ['v1', 'v2', 'v3', 'v4'], keep: ['v5'], removeData: [], unknown: [] });
  });

  test('rolled-back releases count as complete', () => {
    const f = facts({ current: 'v2', dirs: ['v1', 'v2', 'v3'], records: [at('v1', 'inactive', 1), at('v2', 'active', 2), at('v3', 'rolled-back', 3)] });
    expect(planPrune(f, 2, ['v2', 'v1'])).toEqual({ remove: [], keep: ['v3', 'v2', 'v1'], removeData: [], unknown: [] });
    expect(planPrune(f, 2, ['v2'])).toEqual({ remove: ['v1'], keep: ['v3', 'v2'], removeData: [], unknown: [] });
  });

  test('ready releases (built, never activated) count as complete', () => {
    const f = facts({ current: 'v1', dirs: ['v1', 'v2'], records: [at('v1', 'active', 1), at('v2', 'ready', 2)] });
    expect(planPrune(f, 2, ['v1'])).toEqual({ remove: [], keep: ['v2', 'v1'], removeData: [], unknown: [] });
  });

  test('failed and half-built directories are removed whatever keep-releases says; directories without a record are left alone', () => {
    const f = facts({
      current: 'v3',
      dirs: ['v1', 'v2', 'v3', 'stray', 'v4'],
      records: [at('v1', 'failed', 1), at('v2', 'building', 2), at('v3', 'active', 3), manifest('v4', 'building', '', { started: '2024-06-01T10:04:00Z' })],
    });
    expect(planPrune(f, 1000, ['v3'])).toEqual({ remove: ['v1', 'v2', 'v4'], keep: ['v3'], removeData: [], unknown: ['stray'] });
  });

  test('records of failed releases (their directories are gone) are removed too, after the directories', () => {
    const f = facts({
      current: 'v3',
      dirs: ['v1', 'v3'],
      records: [at('v1', 'inactive', 1), at('v2', 'failed', 2), at('v3', 'active', 3), at('v4', 'failed', 4)],
    });
    expect(planPrune(f, 1, ['v3'])).toEqual({ remove: ['v1', 'v2', 'v4'], keep: ['v3'], removeData: [], unknown: [] });
    expect(planPrune(f, 5, ['v3'])).toEqual({ remove: ['v2', 'v4'], keep: ['v3', 'v1'], removeData: [], unknown: [] });
  });

  test('records of complete releases whose directories are gone are left alone', () => {
    const f = facts({ current: 'v3', dirs: ['v3'], records: [at('v1', 'inactive', 1), at('v2', 'rolled-back', 2), at('v3', 'active', 3)] });
    expect(planPrune(f, 1, ['v3'])).toEqual({ remove: [], keep: ['v3'], removeData: [], unknown: [] });
  });

  test('a current release without a record (made by hand) is left alone, protected or not', () => {
    const f = facts({ current: 'hand', dirs: ['hand', 'v1', 'v2'], records: [at('v1', 'inactive', 1), at('v2', 'inactive', 2)] });
    expect(planPrune(f, 1, ['hand', 'v2'])).toEqual({ remove: ['v1'], keep: ['v2'], removeData: [], unknown: ['hand'] });
    expect(planPrune(f, 0, [])).toEqual({ remove: ['v1', 'v2'], keep: [], removeData: [], unknown: ['hand'] });
  });

  test('directories without a record are never removed, whatever keep-releases and whatever their names', () => {
    const f = facts({
      current: 'v3',
      dirs: ['a-old', 'v0', 'v1', 'v3', 'zz'],
      records: [at('v1', 'inactive', 1), at('v3', 'active', 3)],
    });
    for (const keep of [0, 1, 2, 100]) {
      const plan = planPrune(f, keep, ['v3']);
      expect(plan.unknown).toEqual(['a-old', 'v0', 'zz']);
      expect(plan.remove.filter((release) => plan.unknown.includes(release))).toEqual([]);
      expect(plan.keep.filter((release) => plan.unknown.includes(release))).toEqual([]);
    }
  });

  test('a protected release without a directory is not listed as kept', () => {
    expect(planPrune(five(), 1, ['v5', 'gone'])).toEqual({ remove: ['v1', 'v2', 'v3', 'v4'], keep: ['v5'], removeData: [], unknown: [] });
  });

  test('finished missing: started decides; equal times: the name decides', () => {
    const f = facts({
      current: 'v9',
      dirs: ['x', 'y', 'z', 'v9'],
      records: [
        manifest('x', 'inactive', '', { started: '2024-06-01T10:05:00Z', finished: '' }),
        at('y', 'inactive', 5),
        at('z', 'inactive', 5),
        at('v9', 'active', 9),
      ],
    });
    expect(planPrune(f, 2, ['v9'])).toEqual({ remove: ['x', 'y'], keep: ['v9', 'z'], removeData: [], unknown: [] });
  });

  test('the release that serves is kept even when protect leaves it out, whatever keep-releases', () => {
    expect(planPrune(five(), 0, [])).toEqual({ remove: ['v1', 'v2', 'v3', 'v4'], keep: ['v5'], removeData: [], unknown: [] });
    const oldest = { ...five(), currentRelease: 'v1', currentTarget: 'releases/v1' };
    expect(planPrune(oldest, 1, [])).toEqual({ remove: ['v2', 'v3', 'v4'], keep: ['v5', 'v1'], removeData: [], unknown: [] });
  });

  // The host resolves current by real path (host/current.sh); before, an absolute link
  // was read as "no current" and keep-releases 1 removed the release that served.
  test.each(['/srv/app/releases/v1', './releases/v1', 'releases/v1/', '/srv/link-to-app/releases/v1'])(
    'current -> %j, resolved by the host to v1 (the oldest): keep-releases 1 keeps it',
    (target) => {
      const lines = [`fact current ${target}`, 'fact current-release v1', ...['v1', 'v2', 'v3'].map((dir) => `fact dir ${dir}`)].map(control);
      const f = { ...readHostFacts(lines), manifests: new Map([at('v1', 'active', 1), at('v2', 'inactive', 2), at('v3', 'inactive', 3)].map((record) => [record.release, record])) };
      const plan = planPrune(f, 1, [f.currentRelease, rollbackTarget(f)]);
      expect(plan.keep).toContain('v1');
      expect(plan.remove).toEqual(['v2']);
    },
  );

  test.each(['/srv/other/app', '../elsewhere', 'releases/v1/sub'])('current -> %j (outside releases/): PlanError naming it, nothing planned', (target) => {
    const f = { ...five(), currentRelease: '', currentTarget: target };
    expect(() => planPrune(f, 1, [])).toThrow(PlanError);
    expect(() => planPrune(f, 1, [])).toThrow(`current points to '${target}', which is not a release directory (releases/<name> in deploy-path); nothing was removed`);
  });

  test('a deploy after current was relinked by hand to an older release keeps that release for the flip back', () => {
    const host = new SimulatedHost(1);
    for (const release of ['v1', 'v2', 'v3']) host.deploy(release);
    // keep 1 left v3 and v2 (its rollback target); an operator then points current at v2 by hand.
    host.facts = { ...host.facts, currentRelease: 'v2', currentTarget: '/srv/app/releases/v2' };
    expect(host.deploy('v4').previousRelease).toBe('v2');
    // The history's rollback target is v3, but v2 is where a failed verify flips back to.
    expect([...host.facts.releaseDirs].sort()).toEqual(['v2', 'v3', 'v4']);
  });

  test('an empty host: nothing to do', () => {
    expect(planPrune(facts({ deployPathExists: false }), 5, ['', ''])).toEqual({ remove: [], keep: [], removeData: [], unknown: [] });
  });
});

describe('keep-releases 2 over 6 deploys with a failure and a rollback in between', () => {
  const host = new SimulatedHost(2);

  test('deploy v1, v2: both kept', () => {
    host.deploy('v1');
    host.deploy('v2');
    expect([host.dirs, host.removed]).toEqual([['v1', 'v2'], []]);
  });

  test('deploy v3: the oldest, v1, goes with its record', () => {
    host.deploy('v3');
    expect(host.removed).toEqual(['v1']);
    expect(host.dirs).toEqual(['v2', 'v3']);
    expect(host.states).toEqual({ v2: 'inactive', v3: 'active' });
  });

  test('rollback: v2 current, v3 rolled-back and kept; no rollback target left (v1 is gone)', () => {
    expect(host.rollback()).toMatchObject({ target: 'v2', from: 'v3' });
    expect([host.current, host.rollbackTarget]).toEqual(['v2', '']);
    expect([host.dirs, host.removed]).toEqual([['v2', 'v3'], []]);
    expect(host.states).toEqual({ v2: 'active', v3: 'rolled-back' });
  });

  test('deploy v4 fails: current untouched, nothing pruned, a failed record', () => {
    expect(host.deploy('v4', { fail: true }).action).toBe('build');
    expect([host.current, host.dirs]).toEqual(['v2', ['v2', 'v3']]);
    expect(host.states).toEqual({ v2: 'active', v3: 'rolled-back', v4: 'failed' });
  });

  test('deploy v5: v2, the oldest, is kept as the rollback target; the failed record goes', () => {
    host.deploy('v5');
    expect([host.current, host.rollbackTarget]).toEqual(['v5', 'v2']);
    expect(host.removed).toEqual(['v4']);
    expect(host.dirs).toEqual(['v2', 'v3', 'v5']);
    expect(host.states).toEqual({ v2: 'inactive', v3: 'rolled-back', v5: 'active' });
  });

  test('deploy v6: exactly v5 and v6 remain', () => {
    host.deploy('v6');
    expect([host.current, host.rollbackTarget]).toEqual(['v6', 'v5']);
    expect(host.removed).toEqual(['v2', 'v3']);
    expect(host.dirs).toEqual(['v5', 'v6']);
    expect(host.states).toEqual({ v5: 'inactive', v6: 'active' });
  });

  test('the history records each prune with what it removed', () => {
    expect(host.facts.history.filter((entry) => entry.event === 'prune').map((entry) => entry.removed)).toEqual([['v1'], ['v4'], ['v2', 'v3']]);
  });

  test('rollback to v5, then prune with keep 1: current v5, the oldest, stays with the newer rolled-back v6', () => {
    host.rollback();
    expect([host.current, host.rollbackTarget, host.dirs]).toEqual(['v5', '', ['v5', 'v6']]);
    expect(host.prune(undefined, 1)).toEqual([]);
    expect(host.dirs).toEqual(['v5', 'v6']);
  });
});
