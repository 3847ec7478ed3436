/**
 * command: rollback on a fleet (issue 9): one target for every host, all flip or
 * none, then activate and verify as after a deploy. Three real sshd, each in a
 * mount namespace of its own with its own files at the same deploy-path (the
 * setup of fleet.test.ts); the test reads each host's files through `files`.
 */
import { existsSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type RunResult, hostsOutput, renderSummary } from '../../src/core/result.js';
import { gitRepoWithTags } from '../support/fixtures.js';
import { type FleetHost, type TestFleet, runOnFleet, startFleet } from '../support/fleet.js';

let testFleet: TestFleet;
let srv: string;
let hosts: FleetHost[];
let repo: string;
let siteCount = 0;

beforeAll(async () => {
  testFleet = await startFleet(3, 'tagflip-fleet-rollback-');
  ({ srv, hosts } = testFleet);
  repo = gitRepoWithTags(['v1', 'v2', 'v3'], hosts[0].sshd.user);
}, 60_000);

afterAll(async () => {
  await testFleet?.stop();
  if (repo) rmSync(dirname(repo), { recursive: true, force: true });
});

const newSite = () => `site${++siteCount}`;

/** Each hook notes what it saw in a file of the host it ran on. */
const HOOKS = {
  activate: 'echo "activate $TAGFLIP_RELEASE from $TAGFLIP_PREVIOUS_RELEASE on $TAGFLIP_HOST" >> "$TAGFLIP_DEPLOY_PATH/hooks"',
  verify: 'echo "verify $TAGFLIP_RELEASE" >> "$TAGFLIP_DEPLOY_PATH/hooks"; test ! -e "$TAGFLIP_DEPLOY_PATH/unhealthy"',
};

function run(fleet: FleetHost[], site: string, inputs: Record<string, string>): Promise<{ result: RunResult; log: string }> {
  return runOnFleet(testFleet, fleet, site, { repository: repo, build: 'sh build.sh', ...inputs });
}

async function deployAll(fleet: FleetHost[], site: string, releases: string[], inputs: Record<string, string> = {}): Promise<void> {
  for (const release of releases) expect((await run(fleet, site, { release, ...inputs })).result.status).toBe('deployed');
}

const on = (host: FleetHost, site: string) => {
  const at = (...parts: string[]) => join(host.files, site, ...parts);
  const lines = (file: string) => (existsSync(at(file)) ? readFileSync(at(file), 'utf8').trim().split('\n').filter(Boolean) : []);
  return {
    at,
    current: () => readlinkSync(at('current')),
    dataCurrent: () => readlinkSync(at('data/current')),
    state: (release: string) => JSON.parse(readFileSync(at('.tagflip/releases', `${release}.json`), 'utf8')).state as string,
    hooks: () => lines('hooks'),
    history: () => lines('.tagflip/history.jsonl').map((line) => JSON.parse(line) as Record<string, unknown>),
    rawHistory: () => readFileSync(at('.tagflip/history.jsonl'), 'utf8'),
  };
};

const clearHooks = (fleet: FleetHost[], site: string) => fleet.forEach((host) => rmSync(on(host, site).at('hooks'), { force: true }));
const hostRow = (summary: string, host: FleetHost) => summary.split('\n').find((line) => line.startsWith(`| ${host.entry} |`)) ?? '';

describe('a fleet whose hosts have different histories', () => {
  // v1 on all, v2 only on web1 and web3, v3 on all: web2 never had v2.
  const site = newSite();
  let before: string[];

  beforeAll(async () => {
    await deployAll(hosts, site, ['v1']);
    await deployAll([hosts[0], hosts[2]], site, ['v2']);
    await deployAll(hosts, site, ['v3']);
    before = hosts.map((host) => on(host, site).rawHistory());
  }, 120_000);

  const unchanged = () => {
    for (const [i, host] of hosts.entries()) {
      expect(on(host, site).current()).toBe('releases/v3');
      expect(on(host, site).state('v3')).toBe('active');
      expect(on(host, site).rawHistory()).toBe(before[i]);
      expect(on(host, site).hooks()).toEqual([]);
    }
  };

  test('rollback-to a release missing on one host: no host flips, the error names that host', async () => {
    const { result, log } = await run(hosts, site, { command: 'rollback', 'rollback-to': 'v2', ...HOOKS });

    expect(result).toMatchObject({ ok: false, status: 'failed', release: 'v3' });
    expect(result.hosts[1].error).toContain(`${hosts[1].entry}: plan failed: rollback-to v2 is not on the host`);
    for (const i of [0, 2]) {
      expect(result.hosts[i]).toMatchObject({ status: 'failed', release: 'v3' });
      expect(result.hosts[i].error).toBe(`${hosts[i].entry}: not flipped because another host (${hosts[1].entry}) failed; nothing changed here`);
    }
    expect(log).toContain(`rollback refused: rollback-to v2 cannot be activated on every host (${hosts[1].entry}: is not on the host)`);
    expect(log).not.toMatch(/current -> releases\/v2/);
    unchanged();
  }, 60_000);

  test('a bare rollback whose hosts would go to different releases is refused, listing each host’s candidate', async () => {
    const { result } = await run(hosts, site, { command: 'rollback', ...HOOKS });

    expect(result).toMatchObject({ ok: false, status: 'failed' });
    const candidates = `(${hosts[0].entry}: v2; ${hosts[1].entry}: v1; ${hosts[2].entry}: v2)`;
    for (const [i, host] of hosts.entries()) {
      expect(result.hosts[i].error).toBe(
        `${host.entry}: plan failed: the hosts do not agree on the release to roll back to ${candidates}. no host was flipped; name the release with rollback-to (it must be complete on every host)`,
      );
    }
    unchanged();
  }, 60_000);

  test('rollback-to a release complete everywhere: all flip to it', async () => {
    const { result } = await run(hosts, site, { command: 'rollback', 'rollback-to': 'v1', ...HOOKS });
    expect(result).toMatchObject({ ok: true, status: 'rolled-back', release: 'v1', previousRelease: 'v3' });
    for (const host of hosts) {
      expect(on(host, site).current()).toBe('releases/v1');
      expect(on(host, site).hooks()).toEqual([`activate v1 from v3 on ${host.entry}`, 'verify v1']);
    }
  }, 60_000);
});

test('a bare rollback on hosts that agree: all flip (code and data), then activate and verify run on every host', async () => {
  const site = newSite();
  const migrate = 'echo "$TAGFLIP_RELEASE" >> "$TAGFLIP_DATA_PATH/migrated"';
  await deployAll(hosts, site, ['v1', 'v2'], { ...HOOKS, migrate });
  clearHooks(hosts, site);

  const { result, log } = await run(hosts, site, { command: 'rollback', ...HOOKS });

  expect(result).toMatchObject({ ok: true, status: 'rolled-back', release: 'v1', previousRelease: 'v2', dataRelease: 'v1', previousDataRelease: 'v2' });
  expect(log).toContain('rollback target for all 3 hosts: v1');
  // One log group per phase, as on a deploy.
  for (const group of ['plan', 'flip', 'activate', 'verify']) expect(log).toContain(`group: ${group} · 3 hosts`);
  for (const [i, host] of hosts.entries()) {
    expect(result.hosts[i]).toMatchObject({ host: host.entry, status: 'rolled-back', release: 'v1', previousRelease: 'v2', error: '' });
    expect(on(host, site).current()).toBe('releases/v1');
    expect(on(host, site).dataCurrent()).toBe('releases/v1');
    expect(on(host, site).state('v1')).toBe('active');
    expect(on(host, site).state('v2')).toBe('rolled-back');
    // activate after the flip, then verify, with the hook environment of a deploy.
    expect(on(host, site).hooks()).toEqual([`activate v1 from v2 on ${host.entry}`, 'verify v1']);
    expect(log).toContain(`warning: ${host.entry}: data/current goes back from data release v2 to v1`);
  }
  const summary = renderSummary(result, 'tagflip rollback');
  expect(summary.split('\n')[0]).toBe('### tagflip rollback: rolled-back');
  for (const host of hosts) expect(hostRow(summary, host)).toMatch(/^\| \S+ \| rolled-back \| v1 \| v2 \|/);
}, 120_000);

test('verify fails on one host after a rollback: nothing flips forward again; that host NEEDS ATTENTION; records are true', async () => {
  const site = newSite();
  await deployAll(hosts, site, ['v1', 'v2', 'v3'], HOOKS);
  clearHooks(hosts, site);
  const sick = hosts[1];
  writeFileSync(on(sick, site).at('unhealthy'), '');

  const { result, log } = await run(hosts, site, { command: 'rollback', ...HOOKS });

  expect(result).toMatchObject({ ok: false, status: 'failed', release: 'v2', previousRelease: 'v3' });
  for (const [i, host] of hosts.entries()) {
    // Every host stays on the target, with its record active; v3 is not activated again anywhere.
    expect(on(host, site).current()).toBe('releases/v2');
    expect(on(host, site).state('v2')).toBe('active');
    expect(on(host, site).state('v3')).toBe('rolled-back');
    expect(on(host, site).hooks()).toEqual([`activate v2 from v3 on ${host.entry}`, 'verify v2']);
    if (host !== sick) expect(result.hosts[i]).toMatchObject({ status: 'rolled-back', release: 'v2', previousRelease: 'v3', error: '' });
  }
  const report = result.hosts[1];
  expect(report).toMatchObject({ host: sick.entry, status: 'failed', release: 'v2', previousRelease: 'v3', releasePath: `${srv}/${site}/releases/v2` });
  expect(report.error).toContain(`${sick.entry}: verify failed: verify exited with status 1`);
  const attention = `NEEDS ATTENTION: ${sick.entry} now runs v2 (rolled back from v3), but verify failed there; tagflip did not flip forward to v3 again`;
  expect(report.error).toContain(attention);
  expect(report.attention).toContain(attention);
  expect(log.split('\n').some((line) => line.startsWith('error: ') && line.endsWith(report.attention!) && line.includes(attention))).toBe(true);
  expect(log).not.toMatch(/flipped back/);

  const summary = renderSummary(result, 'tagflip rollback');
  expect(summary.split('\n')[0]).toBe(`### tagflip rollback: failed (NEEDS ATTENTION: ${sick.entry})`);
  expect(hostRow(summary, sick)).toMatch(/^\| \S+ \| failed \| v2 \| v3 \|.*NEEDS ATTENTION/);
  expect(JSON.parse(hostsOutput(result.hosts))[1]).toMatchObject({ status: 'failed', release: 'v2', 'previous-release': 'v3' });

  // The history says where current went, then that the rollback's hooks failed there.
  const [flipLine, failedLine] = on(sick, site).history().slice(-2);
  expect(flipLine).toMatchObject({ event: 'rollback', status: 'rolled-back', release: 'v2', previousRelease: 'v3' });
  expect(failedLine).toMatchObject({ event: 'rollback', status: 'failed', release: 'v2', previousRelease: 'v3', failedStep: 'verify', exitCode: 1, host: sick.entry });
  expect(failedLine.reason).toBe('verify failed after the rollback; current stays on v2, not flipped forward to v3');
  expect(on(hosts[0], site).history().at(-1)).toMatchObject({ event: 'rollback', status: 'rolled-back' });
}, 120_000);

test('dry run: shows the resolved target, every host’s flip script and the hooks; changes nothing', async () => {
  const site = newSite();
  await deployAll(hosts, site, ['v1', 'v2']);
  const before = hosts.map((host) => on(host, site).rawHistory());

  const { result, log } = await run(hosts, site, { command: 'rollback', 'dry-run': 'true', ...HOOKS });

  expect(result).toMatchObject({ ok: true, status: 'dry-run', release: 'v2', previousRelease: 'v1' });
  expect(log).toContain('rollback target for all 3 hosts: v1');
  for (const [i, host] of hosts.entries()) {
    expect(result.hosts[i].status).toBe('dry-run');
    expect(log).toContain(`${host.entry}: dry run: would flip current to releases/v1 (from v2); nothing is changed`);
    // Every host's plan first, then the scripts, each in a group naming its host.
    expect(log.indexOf(`group: flip script for ${host.entry} (dry run, not run)`)).toBeGreaterThan(log.lastIndexOf('dry run: then would run verify: '));
    expect(log).toContain(`${host.entry}: dry run: then would run activate: ${HOOKS.activate}`);
    expect(log).toContain(`${host.entry}: dry run: then would run verify: ${HOOKS.verify}`);
    expect(on(host, site).current()).toBe('releases/v2');
    expect(on(host, site).rawHistory()).toBe(before[i]);
    expect(on(host, site).hooks()).toEqual([]);
  }
  expect(log).toContain("tf_release='v1'");
  // Nothing flips in a dry run, so no flip or hook phase is opened.
  expect(log).not.toMatch(/group: (flip|activate|verify) ·/);
}, 120_000);

test('previous-release after a failed deploy is the rollback target, on one host and in a fleet', async () => {
  const build = 'test ! -e "$TAGFLIP_DEPLOY_PATH/fail-here" || exit 3; sh build.sh';
  const site = newSite();
  await deployAll(hosts, site, ['v1', 'v2'], { build });
  writeFileSync(on(hosts[2], site).at('fail-here'), '');
  const fleet = await run(hosts, site, { release: 'v3', build });
  expect(fleet.result).toMatchObject({ ok: false, status: 'failed', release: 'v2', previousRelease: 'v1' });
  expect(fleet.result.hosts.map((host) => host.previousRelease)).toEqual(['v1', 'v1', 'v1']);

  const alone = newSite();
  await deployAll([hosts[2]], alone, ['v1', 'v2'], { build });
  writeFileSync(on(hosts[2], alone).at('fail-here'), '');
  const one = await run([hosts[2]], alone, { release: 'v3', build });
  expect(one.result).toMatchObject({ ok: false, status: 'failed', release: 'v2', previousRelease: 'v1' });
}, 120_000);

describe('one host', () => {
  const host = () => hosts[0];

  test('activate without verify, and verify without activate, run after a rollback', async () => {
    const site = newSite();
    await deployAll([host()], site, ['v1', 'v2']);

    const activateOnly = await run([host()], site, { command: 'rollback', activate: HOOKS.activate });
    expect(activateOnly.result).toMatchObject({ ok: true, status: 'rolled-back', release: 'v1', previousRelease: 'v2' });
    expect(on(host(), site).hooks()).toEqual([`activate v1 from v2 on ${host().entry}`]);

    clearHooks([host()], site);
    const verifyOnly = await run([host()], site, { command: 'rollback', 'rollback-to': 'v2', verify: HOOKS.verify });
    expect(verifyOnly.result).toMatchObject({ ok: true, status: 'rolled-back', release: 'v2', previousRelease: 'v1' });
    expect(on(host(), site).hooks()).toEqual(['verify v2']);
  }, 60_000);

  test('a host already on rollback-to is left alone: no flip, no hooks, status unchanged', async () => {
    const site = newSite();
    await deployAll([host()], site, ['v1', 'v2']);
    const before = on(host(), site).rawHistory();
    const { result } = await run([host()], site, { command: 'rollback', 'rollback-to': 'v2', ...HOOKS });
    expect(result).toMatchObject({ ok: true, status: 'unchanged', release: 'v2', previousRelease: 'v1' });
    expect(on(host(), site).hooks()).toEqual([]);
    expect(on(host(), site).rawHistory()).toBe(before);
  }, 60_000);

  test('a dry run reports dry-run, of the current release too; previous-release is the rollback target, as whenever current stays', async () => {
    const site = newSite();
    await deployAll([host()], site, ['v1', 'v2']);
    const same = await run([host()], site, { release: 'v2', 'dry-run': 'true' });
    expect(same.result).toMatchObject({ ok: true, status: 'dry-run', release: 'v2', previousRelease: 'v1' });
    const next = await run([host()], site, { release: 'v3', 'dry-run': 'true' });
    expect(next.result).toMatchObject({ ok: true, status: 'dry-run', release: 'v2', previousRelease: 'v1' });
  }, 60_000);

  test('re-activating a built release without a rebuild runs activate after its flip', async () => {
    const site = newSite();
    await deployAll([host()], site, ['v1', 'v2']);
    const { result } = await run([host()], site, { release: 'v1', build: 'exit 9', activate: HOOKS.activate });
    expect(result).toMatchObject({ ok: true, status: 'deployed', release: 'v1' });
    expect(on(host(), site).hooks()).toEqual([`activate v1 from v2 on ${host().entry}`]);
  }, 60_000);
});
