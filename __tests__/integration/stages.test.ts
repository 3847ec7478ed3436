/**
 * Deploying in stages (issue 24), on a fleet of real sshd, each host in a mount
 * namespace of its own (support/fleet.ts): `prepare` builds everywhere and
 * flips nothing; a deploy of the prepared release only flips; retention keeps
 * what waits; `canary` flips the first hosts and judges them before the rest.
 *
 * The hooks append to one file outside the deploy root, which every host sees
 * (only the deploy root is a mount of its own): the order in which hosts ran
 * their hooks, as the hosts saw it.
 */
import { chmodSync, existsSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type RunResult, hostRows, renderSummary } from '../../src/core/result.js';
import { gitRepoWithTags, openTempDir } from '../support/fixtures.js';
import { type FleetHost, type TestFleet, runOnFleet, startFleet } from '../support/fleet.js';

let fleet: TestFleet;
let hosts: FleetHost[];
let repo: string;
let shared: string;
let siteCount = 0;

beforeAll(async () => {
  fleet = await startFleet(3, 'tagflip-stages-');
  hosts = fleet.hosts;
  repo = gitRepoWithTags(['v1', 'v2', 'v3'], hosts[0].sshd.user);
  shared = openTempDir('tagflip-stages-order-');
  chmodSync(shared, 0o777);
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
  if (repo) rmSync(dirname(repo), { recursive: true, force: true });
  if (shared) rmSync(shared, { recursive: true, force: true });
});

function newSite(): string {
  siteCount += 1;
  return `site${siteCount}`;
}

/** Every build counts itself in the host's deploy-path, so a test can tell a switch from a rebuild. */
const BUILD = 'sh build.sh && echo "$TAGFLIP_RELEASE" >> "$TAGFLIP_DEPLOY_PATH/builds"';

function run(members: readonly FleetHost[], site: string, inputs: Record<string, string>): Promise<{ result: RunResult; log: string }> {
  return runOnFleet(fleet, members, site, { repository: repo, build: BUILD, ...inputs });
}

const on = (host: FleetHost, site: string) => {
  const at = (...parts: string[]) => join(host.files, site, ...parts);
  return {
    at,
    current: () => readlinkSync(at('current')),
    releases: () => (existsSync(at('releases')) ? readdirSync(at('releases')).sort() : []),
    state: (release: string) => JSON.parse(readFileSync(at('.tagflip/releases', `${release}.json`), 'utf8')).state as string,
    builds: () => (existsSync(at('builds')) ? readFileSync(at('builds'), 'utf8').trim().split('\n') : []),
  };
};

function mark(host: FleetHost, site: string, name: string): void {
  writeFileSync(on(host, site).at(name), '');
}

/** A file every host appends its hook runs to: `<host> <hook> <release>` a line. */
function orderFile(site: string): { path: string; lines: () => string[] } {
  const path = join(shared, `${site}.order`);
  writeFileSync(path, '');
  chmodSync(path, 0o666);
  return { path, lines: () => readFileSync(path, 'utf8').trim().split('\n').filter(Boolean) };
}

/** activate and verify that log themselves; verify fails where the marker `unhealthy` is, for v2. */
function hooks(order: string): Record<string, string> {
  return {
    activate: `echo "$TAGFLIP_HOST activate $TAGFLIP_RELEASE" >> ${order}`,
    verify: `echo "$TAGFLIP_HOST verify $TAGFLIP_RELEASE" >> ${order}; ! { [ -e "$TAGFLIP_DEPLOY_PATH/unhealthy" ] && [ "$TAGFLIP_RELEASE" = v2 ]; }`,
  };
}

describe('prepare, then the switch', () => {
  test('prepare builds v2 on all 3 hosts up to ready and leaves every current untouched; the deploy of v2 builds nothing and flips all', async () => {
    const site = newSite();
    expect((await run(hosts, site, { release: 'v1' })).result.status).toBe('deployed');

    const prepared = await run(hosts, site, { command: 'prepare', release: 'v2' });
    expect(prepared.result).toMatchObject({ ok: true, status: 'prepared', release: 'v1' });
    for (const host of hosts) {
      const files = on(host, site);
      expect(files.current()).toBe('releases/v1');
      expect(files.state('v2')).toBe('ready');
      expect(files.releases()).toEqual(['v1', 'v2']);
      expect(files.builds()).toEqual(['v1', 'v2']);
    }
    expect(hostRows(prepared.result.hosts)).toEqual(
      hosts.map((host) => expect.objectContaining({ host: host.entry, status: 'prepared', release: 'v1', 'prepared-release': 'v2' })),
    );
    const summary = renderSummary(prepared.result, 'tagflip prepare');
    expect(summary).toContain('| host | status | release | previous | prepared | build | total | error |');
    expect(summary).toContain(`| ${hosts[0].entry} | prepared | v1 | – | v2 |`);
    expect(prepared.log).not.toMatch(/current -> releases\/v2/);

    const switched = await run(hosts, site, { release: 'v2' });
    expect(switched.result).toMatchObject({ ok: true, status: 'deployed', release: 'v2', previousRelease: 'v1' });
    expect(switched.log).toContain(`v2 was ready on ${hosts.map((host) => host.entry).join(', ')}: no rebuild there, only the switch`);
    expect(switched.log).not.toContain('building v2');
    for (const host of hosts) {
      const files = on(host, site);
      expect(files.current()).toBe('releases/v2');
      expect(files.state('v2')).toBe('active');
      expect(files.state('v1')).toBe('inactive');
      // Built once, by the prepare.
      expect(files.builds()).toEqual(['v1', 'v2']);
    }
  }, 120_000);

  test('prepare again is a no-op where v2 is ready; a host where it is missing is built at the switch, and the switch says it waited', async () => {
    const site = newSite();
    await run(hosts, site, { release: 'v1' });
    await run(hosts.slice(0, 2), site, { command: 'prepare', release: 'v2' });
    const again = await run(hosts.slice(0, 2), site, { command: 'prepare', release: 'v2' });
    expect(again.result.status).toBe('prepared');
    expect(again.log).toContain('v2 is already built (ready) from the same source; nothing to prepare');

    const switched = await run(hosts, site, { release: 'v2' });
    expect(switched.result).toMatchObject({ ok: true, status: 'deployed', release: 'v2' });
    expect(switched.log).toContain(`v2 was not prepared on ${hosts[2].entry}: built there first, and the switch waited for it`);
    expect(hosts.map((host) => on(host, site).builds())).toEqual([
      ['v1', 'v2'],
      ['v1', 'v2'],
      ['v1', 'v2'],
    ]);
    for (const host of hosts) expect(on(host, site).current()).toBe('releases/v2');
  }, 120_000);

  test('retention never removes a prepared release newer than current: a prune and a deploy between prepare and switch keep it', async () => {
    const site = newSite();
    await run(hosts, site, { release: 'v1' });
    await run(hosts, site, { release: 'v2' });
    await run(hosts, site, { command: 'prepare', release: 'v3' });
    const pruned = await run(hosts, site, { command: 'prune', 'keep-releases': '1' });
    expect(pruned.result.ok).toBe(true);
    for (const host of hosts) {
      // v1 is the rollback target, v2 current, v3 prepared: none goes.
      expect(on(host, site).releases()).toEqual(['v1', 'v2', 'v3']);
      expect(on(host, site).state('v3')).toBe('ready');
    }
    const switched = await run(hosts, site, { release: 'v3', 'keep-releases': '1' });
    expect(switched.result).toMatchObject({ ok: true, status: 'deployed', release: 'v3' });
    // Now v3 is current and v2 the rollback target: v1 goes.
    for (const host of hosts) expect(on(host, site).releases()).toEqual(['v2', 'v3']);
  }, 120_000);

  test('a prepare that fails on one host fails the step: its release is removed, the others stay ready, no current moves', async () => {
    const site = newSite();
    await run(hosts, site, { release: 'v1' });
    mark(hosts[1], site, 'no-build');
    const { result } = await run(hosts, site, { command: 'prepare', release: 'v2', build: `[ ! -e "$TAGFLIP_DEPLOY_PATH/no-build" ] && ${BUILD}` });
    expect(result).toMatchObject({ ok: false, status: 'failed' });
    expect(result.hosts.map((host) => host.status)).toEqual(['prepared', 'failed', 'prepared']);
    expect(result.hosts[1].error).toMatch(/build exited with status 1/);
    for (const host of hosts) expect(on(host, site).current()).toBe('releases/v1');
    expect(on(hosts[1], site).releases()).toEqual(['v1']);
    expect(on(hosts[1], site).state('v2')).toBe('failed');
    expect(on(hosts[0], site).state('v2')).toBe('ready');
  }, 120_000);

  test('migrate: prepare copies no data; the switch copies data/current as it is then, migrates the copy and flips data with code', async () => {
    const site = newSite();
    const migrate = 'echo "migrated for $TAGFLIP_RELEASE" >> "$TAGFLIP_DATA_PATH/log"';
    await run(hosts, site, { release: 'v1', migrate });
    await run(hosts, site, { command: 'prepare', release: 'v2' });
    for (const host of hosts) {
      expect(existsSync(on(host, site).at('data/releases/v2'))).toBe(false);
      // A write made between prepare and switch.
      writeFileSync(on(host, site).at('data/releases/v1/written-meanwhile'), 'kept');
    }
    const { result } = await run(hosts, site, { release: 'v2', migrate });
    expect(result).toMatchObject({ ok: true, status: 'deployed', release: 'v2', dataRelease: 'v2', previousDataRelease: 'v1' });
    for (const host of hosts) {
      const files = on(host, site);
      expect(readlinkSync(files.at('data/current'))).toBe('releases/v2');
      expect(readFileSync(files.at('data/releases/v2/written-meanwhile'), 'utf8')).toBe('kept');
      expect(readFileSync(files.at('data/releases/v2/log'), 'utf8')).toBe('migrated for v1\nmigrated for v2\n');
      expect(files.builds()).toEqual(['v1', 'v2']);
    }
  }, 120_000);

  test('migrate-check at the switch: where it says the data is up to date, no copy and data/current stays; where not, copied and migrated', async () => {
    const site = newSite();
    const migrate = 'echo "migrated for $TAGFLIP_RELEASE" >> "$TAGFLIP_DATA_PATH/log"';
    // Up to date unless the host is marked; the check runs in the release, with the hook environment.
    const check = '[ -e "$TAGFLIP_DATA_PATH/log" ] && [ "$PWD" = "$TAGFLIP_RELEASE_PATH" ] && [ ! -e "$TAGFLIP_DEPLOY_PATH/stale" ]';
    await run(hosts, site, { release: 'v1', migrate });
    await run(hosts, site, { command: 'prepare', release: 'v2' });
    mark(hosts[2], site, 'stale');
    const { result, log } = await run(hosts, site, { release: 'v2', migrate, 'migrate-check': check });
    expect(result).toMatchObject({ ok: true, status: 'deployed', release: 'v2' });
    for (const host of hosts.slice(0, 2)) {
      const files = on(host, site);
      expect(files.current()).toBe('releases/v2');
      expect(readlinkSync(files.at('data/current'))).toBe('releases/v1');
      expect(existsSync(files.at('data/releases/v2'))).toBe(false);
      expect(JSON.parse(readFileSync(files.at('.tagflip/releases/v2.json'), 'utf8'))).toMatchObject({ state: 'active', dataRelease: 'v1', dataReused: true });
      expect(log).toContain(`${host.entry}: migrate-check exited 0: releases/v2 uses data release v1 as it is (no copy, no migration)`);
    }
    const stale = on(hosts[2], site);
    expect(stale.current()).toBe('releases/v2');
    expect(readlinkSync(stale.at('data/current'))).toBe('releases/v2');
    expect(readFileSync(stale.at('data/releases/v2/log'), 'utf8')).toBe('migrated for v1\nmigrated for v2\n');
    expect(JSON.parse(readFileSync(stale.at('.tagflip/releases/v2.json'), 'utf8'))).toMatchObject({ state: 'active', dataRelease: 'v2' });
    for (const host of hosts) expect(on(host, site).builds()).toEqual(['v1', 'v2']);
  }, 120_000);

  test('migrate fails at the switch on one host: no host flips, every data copy is removed, v2 stays ready everywhere', async () => {
    const site = newSite();
    await run(hosts, site, { release: 'v1', migrate: 'true' });
    await run(hosts, site, { command: 'prepare', release: 'v2' });
    mark(hosts[2], site, 'no-migrate');
    const { result, log } = await run(hosts, site, { release: 'v2', migrate: '[ ! -e "$TAGFLIP_DEPLOY_PATH/no-migrate" ]' });
    expect(result).toMatchObject({ ok: false, status: 'failed', release: 'v1' });
    expect(result.hosts[2].error).toMatch(/migrate exited with status 1/);
    expect(log).toContain(`not flipped because another host (${hosts[2].entry}) failed; nothing changed here (the data copy data/releases/v2 was removed; releases/v2 stays ready)`);
    for (const host of hosts) {
      const files = on(host, site);
      expect(files.current()).toBe('releases/v1');
      expect(readlinkSync(files.at('data/current'))).toBe('releases/v1');
      expect(existsSync(files.at('data/releases/v2'))).toBe(false);
      expect(files.state('v2')).toBe('ready');
    }
  }, 120_000);
});

describe('canary', () => {
  test('canary: 1 flips the first host and runs its hooks before any other host flips; the stages are in the log, the summary and hosts', async () => {
    const site = newSite();
    const order = orderFile(site);
    await run(hosts, site, { release: 'v1' });
    const { result, log } = await run(hosts, site, { release: 'v2', canary: '1', ...hooks(order.path) });
    expect(result).toMatchObject({ ok: true, status: 'deployed', release: 'v2' });
    const [canary, ...rest] = hosts;
    expect(order.lines().slice(0, 2)).toEqual([`${canary.entry} activate v2`, `${canary.entry} verify v2`]);
    expect(order.lines().slice(2).sort()).toEqual(rest.flatMap((host) => [`${host.entry} activate v2`, `${host.entry} verify v2`]).sort());
    const groups = log.split('\n').filter((line) => line.startsWith('group: '));
    expect(groups).toEqual(expect.arrayContaining(['group: canary: flip · 1 host', 'group: canary: verify · 1 host', 'group: rest: flip · 2 hosts', 'group: rest: verify · 2 hosts']));
    expect(groups.indexOf('group: canary: verify · 1 host')).toBeLessThan(groups.indexOf('group: rest: flip · 2 hosts'));
    expect(log).toContain(`canary: ${canary.entry} flips first; ${rest.map((host) => host.entry).join(', ')} only once the canary passed verify`);
    expect(hostRows(result.hosts).map((row) => (row as { stage: string }).stage)).toEqual(['canary', 'rest', 'rest']);
    expect(renderSummary(result, 'tagflip deploy')).toContain(`| ${canary.entry} | canary | deployed | v2 | v1 |`);
    for (const host of hosts) expect(on(host, site).current()).toBe('releases/v2');
  }, 120_000);

  test('a failing canary is flipped back; the other hosts never flip, run no hook for v2, and lose what they built for it', async () => {
    const site = newSite();
    const order = orderFile(site);
    await run(hosts, site, { release: 'v1' });
    const [canary, ...rest] = hosts;
    mark(canary, site, 'unhealthy');
    const { result, log } = await run(hosts, site, { release: 'v2', canary: '1', ...hooks(order.path) });
    expect(result).toMatchObject({ ok: false, status: 'rolled-back', release: 'v1' });
    expect(result.hosts.map((host) => [host.stage, host.status, host.release])).toEqual([
      ['canary', 'rolled-back', 'v1'],
      ['rest', 'rolled-back', 'v1'],
      ['rest', 'rolled-back', 'v1'],
    ]);
    expect(result.hosts[1].error).toContain(`not flipped because the host of an earlier stage (${canary.entry}) failed; nothing changed here`);
    // The canary ran v2's hooks, then activate again on v1; the others ran nothing.
    expect(order.lines()).toEqual([`${canary.entry} activate v2`, `${canary.entry} verify v2`, `${canary.entry} activate v1`]);
    expect(log).not.toContain('rest: flip');
    expect(on(canary, site).current()).toBe('releases/v1');
    expect(on(canary, site).state('v2')).toBe('rolled-back');
    for (const host of rest) {
      expect(on(host, site).current()).toBe('releases/v1');
      expect(on(host, site).releases()).toEqual(['v1']);
    }
  }, 120_000);

  test('a failure in the later stage flips every host back, the canary too: all or none', async () => {
    const site = newSite();
    const order = orderFile(site);
    await run(hosts, site, { release: 'v1' });
    mark(hosts[2], site, 'unhealthy');
    const { result } = await run(hosts, site, { release: 'v2', canary: '1', ...hooks(order.path) });
    expect(result).toMatchObject({ ok: false, status: 'rolled-back', release: 'v1' });
    expect(result.hosts.map((host) => host.status)).toEqual(['rolled-back', 'rolled-back', 'rolled-back']);
    for (const host of hosts) {
      expect(on(host, site).current()).toBe('releases/v1');
      expect(on(host, site).state('v2')).toBe('rolled-back');
    }
    // Every host went back and activated v1 again.
    expect(order.lines().filter((line) => line.endsWith('activate v1')).length).toBe(3);
  }, 120_000);

  test('canary-wait: verify runs on the canary again after the wait, before the others flip; a failure then flips the canary back', async () => {
    const site = newSite();
    const order = orderFile(site);
    await run(hosts, site, { release: 'v1' });
    const passed = await run(hosts, site, { release: 'v2', canary: '2', 'canary-wait': '1', ...hooks(order.path) });
    expect(passed.result).toMatchObject({ ok: true, status: 'deployed' });
    const canaries = hosts.slice(0, 2).map((host) => host.entry);
    const verifies = (lines: string[]) => lines.filter((line) => line.endsWith('verify v2')).map((line) => line.split(' ')[0]);
    // Two canaries: activate and verify each, then verify each again; only then the third host.
    expect(verifies(order.lines().slice(0, 6)).sort()).toEqual([...canaries, ...canaries].sort());
    expect(passed.log).toContain('canary-wait: waiting 1 s, then verify runs on the canary again');

    // The second verify fails: the canary's second judgement counts.
    const site2 = newSite();
    const order2 = orderFile(site2);
    await run(hosts, site2, { release: 'v1' });
    const counter = `${order2.path}.count`;
    const verify = `echo x >> ${counter}; [ "$TAGFLIP_RELEASE" != v2 ] || [ "$(wc -l < ${counter})" -lt 2 ]`;
    const { result } = await run(hosts, site2, { release: 'v2', canary: '1', 'canary-wait': '1', activate: hooks(order2.path).activate, verify });
    expect(result).toMatchObject({ ok: false, status: 'rolled-back', release: 'v1' });
    expect(readFileSync(counter, 'utf8').trim().split('\n').length).toBe(2);
    expect(order2.lines()).toEqual([`${hosts[0].entry} activate v2`, `${hosts[0].entry} activate v1`]);
    for (const host of hosts) expect(on(host, site2).current()).toBe('releases/v1');
  }, 120_000);

  /** A build that, where the marker `no-flip` is, leaves deploy-path read-only: the flip cannot place its link there. */
  const BUILD_NO_FLIP = `${BUILD} && if [ -e "$TAGFLIP_DEPLOY_PATH/no-flip" ]; then chmod 555 "$TAGFLIP_DEPLOY_PATH"; fi`;

  test('the canary fails at the flip: no host runs v2, the others never flip and run no hook', async () => {
    const site = newSite();
    const order = orderFile(site);
    await run(hosts, site, { release: 'v1' });
    mark(hosts[0], site, 'no-flip');
    try {
      const { result, log } = await run(hosts, site, { release: 'v2', canary: '1', build: BUILD_NO_FLIP, ...hooks(order.path) });
      expect(result).toMatchObject({ ok: false, status: 'failed', release: 'v1' });
      expect(result.hosts.map((host) => [host.stage, host.status])).toEqual([
        ['canary', 'failed'],
        ['rest', 'rolled-back'],
        ['rest', 'rolled-back'],
      ]);
      expect(result.hosts[0].error).toMatch(/flip failed: 'mv -T' could not replace .*current; it is unchanged/);
      expect(order.lines()).toEqual([]);
      expect(log).not.toContain('rest: flip');
    } finally {
      chmodSync(on(hosts[0], site).at(), 0o755);
    }
    for (const host of hosts) expect(on(host, site).current()).toBe('releases/v1');
    for (const host of hosts.slice(1)) expect(on(host, site).releases()).toEqual(['v1']);
  }, 120_000);

  test('a host of the later stage fails at the flip: the canary and every flipped host go back to v1', async () => {
    const site = newSite();
    const order = orderFile(site);
    await run(hosts, site, { release: 'v1' });
    mark(hosts[2], site, 'no-flip');
    try {
      const { result } = await run(hosts, site, { release: 'v2', canary: '1', build: BUILD_NO_FLIP, ...hooks(order.path) });
      expect(result).toMatchObject({ ok: false, status: 'failed', release: 'v1' });
      expect(result.hosts.map((host) => [host.stage, host.status, host.release])).toEqual([
        ['canary', 'rolled-back', 'v1'],
        ['rest', 'rolled-back', 'v1'],
        ['rest', 'failed', 'v1'],
      ]);
    } finally {
      chmodSync(on(hosts[2], site).at(), 0o755);
    }
    for (const host of hosts) expect(on(host, site).current()).toBe('releases/v1');
    // The canary ran v2's hooks; every host that flipped activated v1 again.
    expect(order.lines().slice(0, 2)).toEqual([`${hosts[0].entry} activate v2`, `${hosts[0].entry} verify v2`]);
    expect(order.lines().filter((line) => line.endsWith('activate v1')).sort()).toEqual([`${hosts[0].entry} activate v1`, `${hosts[1].entry} activate v1`].sort());
  }, 120_000);

  test('a dry run with canary says the stages and changes nothing', async () => {
    const site = newSite();
    await run(hosts, site, { release: 'v1' });
    const { result, log } = await run(hosts, site, { release: 'v2', canary: '1', 'canary-wait': '5', 'dry-run': 'true', verify: 'true' });
    expect(result.status).toBe('dry-run');
    expect(log).toContain(`dry run: canary: ${hosts[0].entry} would flip and run activate and verify first, then verify again after 5 s; ${hosts[1].entry}, ${hosts[2].entry} only once they passed`);
    for (const host of hosts) expect(on(host, site).releases()).toEqual(['v1']);
  }, 120_000);

  test('canary after prepare: the prepared release flips in stages without a rebuild', async () => {
    const site = newSite();
    const order = orderFile(site);
    await run(hosts, site, { release: 'v1' });
    await run(hosts, site, { command: 'prepare', release: 'v2' });
    const { result } = await run(hosts, site, { release: 'v2', canary: '1', ...hooks(order.path) });
    expect(result).toMatchObject({ ok: true, status: 'deployed', release: 'v2' });
    expect(order.lines()[1]).toBe(`${hosts[0].entry} verify v2`);
    for (const host of hosts) expect(on(host, site).builds()).toEqual(['v1', 'v2']);
  }, 120_000);
});
