/**
 * The fault matrix of issue 20, sampled: every scenario and fault at the
 * phase boundaries where a wrong report or a wrong host would show, and a few
 * byte offsets. The whole sweep (every phase, a sweep of offsets, faults held
 * until the client gives up by itself) is `npm run bench -- --only faults`,
 * which runs this file with TAGFLIP_FAULT_MATRIX=full.
 *
 * First, the checker itself, on hand-made hosts: a checker that cannot fail
 * proves nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaultLab, describePoint, renderTable } from '../support/fault-matrix.js';
import { FAULTS, type FaultPoint, SCENARIOS, SCENARIO_SETUPS } from '../support/fault-scenarios.js';
import { checkHostAgrees, checkReportTrue } from '../support/host-invariants.js';
import { openTempDir } from '../support/fixtures.js';

const record = (release: string, state: string) => JSON.stringify({ release, state });
const line = (event: string, status: string, release: string) => JSON.stringify({ time: '2026-01-01T00:00:00Z', event, status, release, previousRelease: '' });

/** A site as tagflip leaves it: v1 inactive, v2 active and current, both deploys in the history. */
function goodSite(): string {
  const site = join(openTempDir('tagflip-invariants-'), 'site');
  for (const release of ['v1', 'v2']) mkdirSync(join(site, 'releases', release), { recursive: true });
  mkdirSync(join(site, '.tagflip/releases'), { recursive: true });
  writeFileSync(join(site, '.tagflip/releases/v1.json'), record('v1', 'inactive'));
  writeFileSync(join(site, '.tagflip/releases/v2.json'), record('v2', 'active'));
  writeFileSync(join(site, '.tagflip/history.jsonl'), `${line('deploy', 'deployed', 'v1')}\n${line('deploy', 'deployed', 'v2')}\n`);
  symlinkSync('releases/v2', join(site, 'current'));
  return site;
}

describe('checkHostAgrees', () => {
  test('a host as tagflip leaves it agrees', () => {
    expect(checkHostAgrees(goodSite())).toEqual([]);
  });

  test('current moved without its records (the queued flip of a job that said failed)', () => {
    const site = goodSite();
    mkdirSync(join(site, 'releases/v3'));
    writeFileSync(join(site, '.tagflip/releases/v3.json'), record('v3', 'ready'));
    symlinkSync('releases/v3', join(site, 'next'));
    renameSync(join(site, 'next'), join(site, 'current'));
    expect(checkHostAgrees(site)).toEqual([
      'active by the manifests: [v2], but current is v3',
      "the history's last deploy or rollback went to v2, but current is v3",
    ]);
  });

  test('a build left building, a failed release with its directory, a directory without a record', () => {
    const site = goodSite();
    writeFileSync(join(site, '.tagflip/releases/v3.json'), record('v3', 'building'));
    mkdirSync(join(site, 'releases/v4'));
    writeFileSync(join(site, '.tagflip/releases/v4.json'), record('v4', 'failed'));
    mkdirSync(join(site, 'releases/v5'));
    expect(checkHostAgrees(site)).toEqual([
      'v3 is still building',
      'v4 is failed but releases/v4 is still there',
      'releases/v4 has a failed record',
      'releases/v5 has no record',
    ]);
  });

  test('a rollback the history does not know of, and a torn history line', () => {
    const site = goodSite();
    writeFileSync(join(site, '.tagflip/history.jsonl'), `${line('deploy', 'deployed', 'v1')}\n${line('deploy', 'deployed', 'v2')}\n${line('rollback', 'rolled-back', 'v1')}\n{"time":"2026`);
    expect(checkHostAgrees(site)).toEqual(['a history line tagflip cannot read: {"time":"2026', "the history's last deploy or rollback went to v1, but current is v2"]);
  });

  test('a report is true when it names current, or says unknown', () => {
    const site = goodSite();
    expect(checkReportTrue(site, { status: 'deployed', release: 'v2' }, 'v1')).toEqual([]);
    expect(checkReportTrue(site, { status: 'unknown', release: 'v1' }, 'v1')).toEqual([]);
    expect(checkReportTrue(site, { status: 'failed', release: 'v1' }, 'v1')).toEqual(['reported failed with release v1, but current is v2']);
    // No release named: true only when nothing changed.
    expect(checkReportTrue(site, { status: 'failed', release: '' }, 'v2')).toEqual([]);
    expect(checkReportTrue(site, { status: 'failed', release: '' }, 'v1')).toEqual(['reported failed with release (none), but current is v2']);
  });
});

const FULL = process.env.TAGFLIP_FAULT_MATRIX === 'full';

/**
 * The sample CI runs: where issue 20 found a report or a host untrue, where
 * the new rules draw a line (the flip on its way: unknown; flipped read:
 * flipped), and a fault of each kind in each scenario.
 */
const SAMPLE: FaultPoint[] = [
  { scenario: 'deploy', fault: 'freeze', at: { phase: 'line:step build' } },
  { scenario: 'deploy', fault: 'stop-sshd', at: { phase: 'line:step build' } },
  { scenario: 'deploy', fault: 'cut-up', at: { phase: 'sent:flip' } },
  { scenario: 'deploy', fault: 'cut-down', at: { phase: 'line:flipped' } },
  { scenario: 'deploy', fault: 'sigkill', at: { phase: 'host:build-started' } },
  { scenario: 'deploy', fault: 'sigterm', at: { phase: 'host:current moved' } },
  { scenario: 'deploy', fault: 'cut-down', at: { direction: 'down', offset: 0.5 } },
  { scenario: 'hooks', fault: 'cut-down', at: { phase: 'line:step activate' } },
  { scenario: 'hooks', fault: 'stop-session', at: { phase: 'line:ready' } },
  { scenario: 'hooks', fault: 'sigkill', at: { phase: 'host:activated' } },
  { scenario: 'rollback', fault: 'cut-down', at: { phase: 'line:flipped' } },
  { scenario: 'rollback', fault: 'cut-up', at: { phase: 'sent:flip' } },
  { scenario: 'rollback', fault: 'sigkill', at: { phase: 'host:current moved' } },
  { scenario: 'fleet', fault: 'freeze', at: { phase: 'line:ready' } },
  { scenario: 'fleet', fault: 'cut-down', at: { phase: 'line:flipped' } },
  { scenario: 'fleet', fault: 'sigterm', at: { phase: 'host:ready' } },
  { scenario: 'fleet', fault: 'cut-up', at: { direction: 'up', offset: 0.8 } },
  // An upload's re-deploy (its unchanged files copied on the host): the release is its upload, whatever breaks.
  { scenario: 'upload', fault: 'cut-down', at: { phase: 'line:step build' } },
  { scenario: 'upload', fault: 'sigkill', at: { phase: 'host:building' } },
  { scenario: 'upload', fault: 'cut-up', at: { direction: 'up', offset: 0.5 } },
];

/** Fractions of a session's bytes the full sweep cuts at, per direction. */
const SWEEP = Array.from({ length: Number(process.env.TAGFLIP_FAULT_OFFSETS ?? 8) }, (_, i) => (i + 1) / (Number(process.env.TAGFLIP_FAULT_OFFSETS ?? 8) + 1));

/** Every point of the full matrix: each fault at each phase of each scenario, and at the sweep's offsets. */
function fullMatrix(): FaultPoint[] {
  return SCENARIOS.flatMap((scenario) =>
    FAULTS.flatMap((fault) => {
      const setup = SCENARIO_SETUPS[scenario];
      const phases = fault === 'sigkill' || fault === 'sigterm' ? setup.hostPhases : setup.phases;
      const offsets = (['up', 'down'] as const).flatMap((direction) => SWEEP.map((offset) => ({ direction, offset })));
      return [...phases.map((phase) => ({ scenario, fault, at: { phase } })), ...offsets.map((at) => ({ scenario, fault, at }))];
    }),
  );
}

describe('fault matrix', () => {
  let lab: FaultLab;

  beforeAll(async () => {
    lab = await FaultLab.start();
  }, 120_000);

  afterAll(async () => {
    if (lab) {
      process.stdout.write(`\nfault matrix (${FULL ? 'full' : 'sample'}):\n${renderTable(lab.results)}\n`);
      await lab.stop();
    }
  }, 60_000);

  const points = FULL ? fullMatrix() : SAMPLE;
  test.each(points.map((point) => [describePoint(point), point] as const))('%s', async (_name, point) => {
    // Byte offsets are fractions of a fault-free run's bytes in that direction.
    const at = 'direction' in point.at ? { ...point.at, offset: Math.max(1, Math.round(point.at.offset * (await lab.sessionBytes(point.scenario))[point.at.direction])) } : point.at;
    const result = await lab.run({ ...point, at }, { holdMs: FULL ? 3000 : 1000, patient: FULL && process.env.TAGFLIP_FAULT_PATIENT === '1' });
    expect(result.problems).toEqual([]);
  }, 240_000);
});
