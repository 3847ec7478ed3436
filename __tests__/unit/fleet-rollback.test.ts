/** One target for a whole fleet's rollback (issue 9): planFleetRollback, and how its outcome is reported. */
import { describe, expect, test } from '@jest/globals';
import { DeployError, NotFlippedError } from '../../src/core/errors.js';
import type { HostFacts } from '../../src/core/facts.js';
import { explainFailure } from '../../src/remote/host-session.js';
import { type FleetRollbackPlan, PlanError, planFleetRollback } from '../../src/core/plan.js';
import { type HostResult, hostsOutput, renderSummary, summarize } from '../../src/core/result.js';
import { facts, history, manifest } from './host-facts.js';

/** v1, v2, v3 deployed in turn; v3 current; a bare rollback goes to v2. */
const threeDeployed = (changes: Parameters<typeof facts>[0] = {}): HostFacts =>
  facts({
    current: 'v3',
    dirs: ['v1', 'v2', 'v3'],
    records: [manifest('v1', 'inactive'), manifest('v2', 'inactive', 'v1'), manifest('v3', 'active', 'v2')],
    history: [history.deployed('v1'), history.deployed('v2', 'v1'), history.deployed('v3', 'v2')],
    ...changes,
  });

/** v1 and v2 deployed; v2 current; a bare rollback goes to v1. */
const twoDeployed = (): HostFacts =>
  facts({
    current: 'v2',
    dirs: ['v1', 'v2'],
    records: [manifest('v1', 'inactive'), manifest('v2', 'active', 'v1')],
    history: [history.deployed('v1'), history.deployed('v2', 'v1')],
  });

/** Only v1, current: a bare rollback has nowhere to go. */
const firstDeploy = (): HostFacts => facts({ current: 'v1', dirs: ['v1'], records: [manifest('v1', 'active')], history: [history.deployed('v1')] });

const fleet = (...all: HostFacts[]) => all.map((hostFacts, i) => ({ host: `web${i + 1}`, facts: hostFacts }));

function refused(plan: FleetRollbackPlan) {
  if (plan.kind !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(plan)}`);
  return plan;
}

function go(plan: FleetRollbackPlan) {
  if (plan.kind !== 'go') throw new Error(`expected a target, got ${plan.refusal.message}`);
  return plan;
}

describe('planFleetRollback: one host', () => {
  test('bare: its rollback target', () => {
    const plan = go(planFleetRollback(fleet(threeDeployed()), ''));
    expect(plan).toEqual({ kind: 'go', target: 'v2', plans: [{ action: 'flip', target: 'v2', from: 'v3', fromState: 'rolled-back', reason: 'rolling back from v3 to v2' }] });
  });

  test('bare with nowhere to go: refused with the host’s own reason (no fleet wording)', () => {
    const plan = refused(planFleetRollback(fleet(firstDeploy()), ''));
    expect(plan.refusal.message).toBe('there is no previous release to roll back to from v1');
    expect(plan.errors).toEqual([plan.refusal]);
  });

  test('rollback-to missing: refused with the host’s own reason and the releases it could name', () => {
    const plan = refused(planFleetRollback(fleet(threeDeployed()), 'v9'));
    expect([plan.refusal.message, plan.refusal.remedy]).toEqual(['rollback-to v9 is not on the host', 'releases that can be rolled back to: v1, v2']);
    expect(plan.errors).toEqual([plan.refusal]);
  });

  test('rollback-to the current release: go, unchanged', () => {
    expect(go(planFleetRollback(fleet(threeDeployed()), 'v3')).plans[0].action).toBe('unchanged');
  });
});

describe('planFleetRollback: rollback-to on several hosts', () => {
  test('complete on every host: go, every host flips to it from its own current', () => {
    const plan = go(planFleetRollback(fleet(threeDeployed(), twoDeployed(), threeDeployed()), 'v1'));
    expect(plan.target).toBe('v1');
    expect(plan.plans.map((entry) => [entry.action, entry.from, entry.target])).toEqual([
      ['flip', 'v3', 'v1'],
      ['flip', 'v2', 'v1'],
      ['flip', 'v3', 'v1'],
    ]);
  });

  test('a host already on it: go; that host is unchanged, the others flip', () => {
    const plan = go(planFleetRollback(fleet(threeDeployed(), twoDeployed()), 'v2'));
    expect(plan.plans.map((entry) => entry.action)).toEqual(['flip', 'unchanged']);
  });

  test('every host already on it: go, all unchanged', () => {
    const plan = go(planFleetRollback(fleet(twoDeployed(), twoDeployed()), 'v2'));
    expect(plan.plans.map((entry) => entry.action)).toEqual(['unchanged', 'unchanged']);
  });

  test('missing on one host: refused, naming that host; the others are held back (no error of their own)', () => {
    const plan = refused(planFleetRollback(fleet(threeDeployed(), twoDeployed(), threeDeployed()), 'v3'));
    expect(plan.refusal.message).toBe('rollback-to v3 cannot be activated on every host (web2: is not on the host)');
    expect(plan.refusal.remedy).toBe('no host was flipped; name a release that is complete on every host');
    expect(plan.errors.map((error) => error?.message ?? null)).toEqual([null, 'rollback-to v3 is not on the host', null]);
  });

  test('missing or incomplete on several hosts: each is named with its reason, in order', () => {
    const building = threeDeployed({ records: [manifest('v1', 'building'), manifest('v2', 'inactive'), manifest('v3', 'active')] });
    const pruned = threeDeployed({ dirs: ['v2', 'v3'] });
    const plan = refused(planFleetRollback(fleet(pruned, threeDeployed(), building), 'v1'));
    expect(plan.refusal.message).toBe('rollback-to v1 cannot be activated on every host (web1: is not on the host; web3: is not complete (state: building))');
    expect(plan.errors.map((error) => (error ? 'refused' : 'held'))).toEqual(['refused', 'held', 'refused']);
  });

  test('a host with nothing deployed is named with its own reason', () => {
    const plan = refused(planFleetRollback(fleet(threeDeployed(), facts({ deployPathExists: false })), 'v2'));
    expect(plan.refusal.message).toBe('rollback-to v2 cannot be activated on every host (web2: nothing is deployed here (there is no current))');
  });

  test('a rolled-back release named on every host is accepted', () => {
    const rolledBack = threeDeployed({ current: 'v2', records: [manifest('v1', 'inactive'), manifest('v2', 'active'), manifest('v3', 'rolled-back')], history: [...threeDeployed().history, history.rolledBack('v2', 'v3')] });
    expect(go(planFleetRollback(fleet(rolledBack, rolledBack), 'v3')).target).toBe('v3');
  });
});

describe('planFleetRollback: a bare rollback on several hosts', () => {
  test('every host has the same candidate: go', () => {
    const plan = go(planFleetRollback(fleet(threeDeployed(), threeDeployed(), threeDeployed()), ''));
    expect(plan.target).toBe('v2');
    expect(plan.plans.every((entry) => entry.action === 'flip' && entry.from === 'v3' && entry.fromState === 'rolled-back')).toBe(true);
  });

  test('the same candidate from different currents: go, each from its own', () => {
    // web2 rolled v3 back once before; its v3 is current again by name, so its candidate skips the rolled-back v2.
    const other = threeDeployed({
      records: [manifest('v1', 'inactive'), manifest('v2', 'rolled-back'), manifest('v3', 'active')],
    });
    const plan = go(planFleetRollback(fleet(twoDeployed(), other), ''));
    expect(plan.target).toBe('v1');
    expect(plan.plans.map((entry) => entry.from)).toEqual(['v2', 'v3']);
  });

  test('candidates differ: refused, listing every host’s candidate, and every host is refused (none is to blame)', () => {
    const plan = refused(planFleetRollback(fleet(threeDeployed(), twoDeployed(), threeDeployed()), ''));
    expect(plan.refusal.message).toBe('the hosts do not agree on the release to roll back to (web1: v2; web2: v1; web3: v2)');
    expect(plan.refusal.remedy).toBe('no host was flipped; name the release with rollback-to (it must be complete on every host)');
    expect(plan.errors).toEqual([plan.refusal, plan.refusal, plan.refusal]);
  });

  test('one host has no candidate: refused, listing it as none; it has its own reason, the others are held back', () => {
    const plan = refused(planFleetRollback(fleet(threeDeployed(), firstDeploy(), threeDeployed()), ''));
    expect(plan.refusal.message).toBe('the hosts do not agree on the release to roll back to (web1: v2; web2: none; web3: v2)');
    expect(plan.errors.map((error) => error?.message ?? null)).toEqual([null, 'there is no previous release to roll back to from v1', null]);
  });

  test('no host has a candidate: refused, each with its own reason', () => {
    const plan = refused(planFleetRollback(fleet(firstDeploy(), firstDeploy()), ''));
    expect(plan.refusal.message).toBe('no host has a release to roll back to (web1: none; web2: none)');
    expect(plan.errors.every((error) => error instanceof PlanError && error.message.startsWith('there is no previous release'))).toBe(true);
  });
});

describe('a healthy host held back at the barrier', () => {
  test('says another host failed and nothing changed here; it does not blame the network', () => {
    const error = new NotFlippedError('deploy@web1', ['deploy@web2']);
    expect(error.message).toBe('deploy@web1: not flipped because another host (deploy@web2) failed; nothing changed here');
    // explainFailure passes it through as it is: no "connection failed", no "check the network".
    expect(explainFailure('deploy@web1', error)).toBe(error);
    expect(error).toBeInstanceOf(DeployError);
  });

  test('several failed hosts are all named', () => {
    expect(new NotFlippedError('a', ['b', 'c'], '(x)').message).toBe('a: not flipped because other hosts (b, c) failed; nothing changed here (x)');
  });
});

describe('reporting a rollback', () => {
  const row = (changes: Partial<HostResult>): HostResult => ({
    host: 'web1',
    status: 'rolled-back',
    release: 'v2',
    previousRelease: 'v3',
    releasePath: '/srv/app/releases/v2',
    dataRelease: '',
    previousDataRelease: '',
    buildSeconds: 0,
    totalSeconds: 1,
    error: '',
    ...changes,
  });

  test('a host already on the target next to one that rolled back: the step rolled back, ok', () => {
    const result = summarize([row({ status: 'unchanged', previousRelease: 'v1' }), row({ host: 'web2' })], 'rollback');
    expect(result).toMatchObject({ ok: true, status: 'rolled-back', release: 'v2' });
  });

  test('every host already on the target: unchanged', () => {
    expect(summarize([row({ status: 'unchanged' }), row({ host: 'web2', status: 'unchanged' })], 'rollback')).toMatchObject({ ok: true, status: 'unchanged' });
  });

  test('a host that needs attention: failed; the summary title, a caution and its row say so; hosts output carries it', () => {
    const attention = 'NEEDS ATTENTION: web2 now runs v2 (rolled back from v3), but verify failed there';
    const hosts = [row({}), row({ host: 'web2', status: 'failed', error: `web2: verify failed: verify exited with status 1; ${attention}`, attention })];
    const result = summarize(hosts, 'rollback');
    expect(result).toMatchObject({ ok: false, status: 'failed', release: 'v2', previousRelease: 'v3' });
    const summary = renderSummary(result, 'tagflip rollback');
    expect(summary.split('\n')[0]).toBe('### tagflip rollback: failed (NEEDS ATTENTION: web2)');
    // The caution is Markdown text: its parentheses escaped.
    expect(summary).toContain('> [!CAUTION]\n> NEEDS ATTENTION: web2 now runs v2 \\(rolled back from v3\\), but verify failed there');
    expect(summary).toMatch(/^\| web2 \| failed \| v2 \| v3 \|.*NEEDS ATTENTION/m);
    const output = JSON.parse(hostsOutput(result.hosts));
    expect(output[1]).toMatchObject({ status: 'failed', release: 'v2', 'previous-release': 'v3', attention });
    expect(output[0]).not.toHaveProperty('attention');
  });
});
