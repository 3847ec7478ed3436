/**
 * A fleet: one tagflip step deploying to several hosts (issue 5). Every "host" is a
 * real sshd on its own loopback port, started in a mount namespace of its own where
 * its own directory is bind-mounted onto one shared deploy root, so all hosts use the
 * same deploy-path, as real hosts do, yet each has its own files. This test process
 * does not see those mounts: it reads each host's files through that host's `files`.
 */
import { chmodSync, existsSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { dirname, join } from 'node:path';
import { type RunResult, hostsOutput, renderSummary } from '../../src/core/result.js';
import { runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { gitRepoWithTags, openTempDir, recordingLogger } from '../support/fixtures.js';
import { type FleetHost, type TestFleet, runOnFleet, startFleet } from '../support/fleet.js';
import type { TestSshd } from '../support/sshd.js';

const HOST_COUNT = 4;
let testFleet: TestFleet;
/** The deploy root every host sees (each its own files): deploy-paths live below it. */
let srv: string;
let hosts: FleetHost[];
let bastion: TestSshd;
let repo: string;
let siteCount = 0;

beforeAll(async () => {
  testFleet = await startFleet(HOST_COUNT, 'tagflip-fleet-', 1);
  ({ srv, hosts } = testFleet);
  [bastion] = testFleet.extras;
  repo = gitRepoWithTags(['v1', 'v2', 'v3'], hosts[0].sshd.user);
}, 60_000);

afterAll(async () => {
  await testFleet?.stop();
  if (repo) rmSync(dirname(repo), { recursive: true, force: true });
});

/** A fresh deploy-path (the same path on every host). */
function newSite(): string {
  siteCount += 1;
  return `site${siteCount}`;
}

const knownHostsOf = (fleet: FleetHost[]) => fleet.map((host) => host.sshd.knownHosts).join('');

function deploy(fleet: FleetHost[], site: string, inputs: Record<string, string> = {}): Promise<{ result: RunResult; log: string }> {
  return runOnFleet(testFleet, fleet, site, { repository: repo, build: 'sh build.sh', ...inputs });
}

/** Reading one host's files of one site, through its own directory. */
const on = (host: FleetHost, site: string) => {
  const at = (...parts: string[]) => join(host.files, site, ...parts);
  return {
    at,
    current: () => readlinkSync(at('current')),
    releases: () => (existsSync(at('releases')) ? readdirSync(at('releases')).sort() : []),
    built: () => readFileSync(at('current/built'), 'utf8'),
    state: (release: string) => JSON.parse(readFileSync(at('.tagflip/releases', `${release}.json`), 'utf8')).state as string,
    lines: (file: string) => readFileSync(at(file), 'utf8').trim().split('\n'),
  };
};

/** Drop a file into one host's site (as a marker for a hook to find). */
function mark(host: FleetHost, site: string, name: string): void {
  writeFileSync(on(host, site).at(name), '');
}

const hostRow = (summary: string, host: FleetHost) => summary.split('\n').find((line) => line.startsWith(`| ${host.entry} |`));

test('4 hosts: all build, all flip; outputs and summary list every host; the next deploy sets previous-release on all', async () => {
  const site = newSite();
  const { result, log } = await deploy(hosts, site, { release: 'v1' });

  expect(result).toMatchObject({ ok: true, status: 'deployed', release: 'v1', previousRelease: '', releasePath: `${srv}/${site}/releases/v1` });
  // Lines from several hosts interleave, so each streamed line names its host.
  for (const host of hosts) expect(log).toContain(`${host.entry} | building v1`);
  expect(log).not.toMatch(/^building v1/m);
  expect(result.hosts.map((host) => [host.host, host.status, host.release, host.error])).toEqual(hosts.map((host) => [host.entry, 'deployed', 'v1', '']));
  for (const host of hosts) {
    expect(on(host, site).current()).toBe('releases/v1');
    expect(on(host, site).built()).toBe('v1\n');
    expect(on(host, site).state('v1')).toBe('active');
  }

  const summary = renderSummary(result, 'tagflip deploy');
  expect(summary).toContain('### tagflip deploy: deployed');
  expect(summary.split('\n').filter((line) => line.startsWith('| tagflip-test@'))).toHaveLength(HOST_COUNT);
  for (const host of hosts) expect(hostRow(summary, host)).toMatch(/^\| \S+ \| deployed \| v1 \| – \|/);

  const second = await deploy(hosts, site, { release: 'v2' });
  expect(second.result).toMatchObject({ ok: true, status: 'deployed', release: 'v2', previousRelease: 'v1' });
  const output = JSON.parse(hostsOutput(second.result.hosts));
  expect(output).toEqual(
    hosts.map((host) =>
      expect.objectContaining({ host: host.entry, status: 'deployed', release: 'v2', 'previous-release': 'v1', 'release-path': `${srv}/${site}/releases/v2`, error: '' }),
    ),
  );
  for (const host of hosts) {
    expect(on(host, site).current()).toBe('releases/v2');
    expect(on(host, site).built()).toBe('v2\n');
    expect(on(host, site).releases()).toEqual(['v1', 'v2']);
    expect(on(host, site).state('v1')).toBe('inactive');
  }
  const summary2 = renderSummary(second.result, 'tagflip deploy');
  for (const host of hosts) expect(hostRow(summary2, host)).toMatch(/^\| \S+ \| deployed \| v2 \| v1 \|/);
}, 120_000);

test('each host has its own files at the same deploy-path', async () => {
  const site = newSite();
  const [a, b] = hosts;
  const { result } = await deploy([a], site, { release: 'v1' });
  expect(result.status).toBe('deployed');
  expect(on(a, site).current()).toBe('releases/v1');
  expect(existsSync(on(b, site).at())).toBe(false);
  expect(existsSync(join(srv, site))).toBe(false); // the test process does not see the mounts
});

test('one host fails its build: no host flips, the others discard their new release, the error names the host', async () => {
  const site = newSite();
  const build = 'test ! -e "$TAGFLIP_DEPLOY_PATH/fail-here" || { echo "this host is broken" >&2; exit 3; }; sh build.sh';
  expect((await deploy(hosts, site, { release: 'v1', build })).result.status).toBe('deployed');

  const broken = hosts[2];
  mark(broken, site, 'fail-here');
  const { result, log } = await deploy(hosts, site, { release: 'v2', build });

  expect(result.ok).toBe(false);
  expect(result.status).toBe('failed');
  expect(log).toContain('this host is broken');
  for (const [i, host] of hosts.entries()) {
    const hostResult = result.hosts[i];
    expect(hostResult).toMatchObject({ host: host.entry, status: 'failed', release: 'v1' });
    if (host === broken) {
      expect(hostResult.error).toContain(`${broken.entry}: build failed: build exited with status 3`);
    } else {
      // A healthy host says what happened there; it does not blame the network.
      expect(hostResult.error).toBe(`${host.entry}: not flipped because another host (${broken.entry}) failed; nothing changed here (the release v2 built here was removed)`);
    }
    expect(on(host, site).current()).toBe('releases/v1');
    expect(on(host, site).built()).toBe('v1\n');
    expect(on(host, site).releases()).toEqual(['v1']);
    expect(on(host, site).state('v1')).toBe('active');
    expect(on(host, site).state('v2')).toBe('failed');
  }
  const summary = renderSummary(result, 'tagflip deploy');
  expect(summary).toContain('### tagflip deploy: failed');
  expect(hostRow(summary, broken)).toContain('build exited with status 3');
  expect(hostRow(summary, hosts[0])).toContain(`not flipped because another host \\(${broken.entry}\\) failed; nothing changed here`);
  for (const text of [summary, hostsOutput(result.hosts), log]) expect(text).not.toMatch(/connection failed|check the host and the network/);
}, 120_000);

test('verify fails on one host after the flip: every host flips back and activates the previous release again', async () => {
  const site = newSite();
  const hooks = {
    activate: 'echo "$TAGFLIP_RELEASE" >> "$TAGFLIP_DEPLOY_PATH/activations"',
    verify: 'test ! -e "$TAGFLIP_DEPLOY_PATH/unhealthy"',
  };
  expect((await deploy(hosts, site, { release: 'v1', ...hooks })).result.status).toBe('deployed');

  const sick = hosts[1];
  mark(sick, site, 'unhealthy');
  const { result } = await deploy(hosts, site, { release: 'v2', ...hooks });

  expect(result).toMatchObject({ ok: false, status: 'rolled-back', release: 'v1', previousRelease: 'v2' });
  for (const [i, host] of hosts.entries()) {
    expect(result.hosts[i]).toMatchObject({ host: host.entry, status: 'rolled-back', release: 'v1', previousRelease: 'v2' });
    expect(on(host, site).current()).toBe('releases/v1');
    expect(on(host, site).built()).toBe('v1\n');
    expect(on(host, site).state('v1')).toBe('active');
    expect(on(host, site).state('v2')).toBe('rolled-back');
    expect(on(host, site).releases()).toEqual(['v1', 'v2']); // kept, never picked again by a bare rollback
    expect(on(host, site).lines('activations')).toEqual(['v1', 'v2', 'v1']);
  }
  expect(result.hosts[1].error).toMatch(new RegExp(`^${escape(sick.entry)}: verify failed: verify exited with status 1`));
  for (const host of hosts.filter((h) => h !== sick)) {
    expect(result.hosts[hosts.indexOf(host)].error).toContain('rolled back because another host failed after the flip');
  }
  expect(renderSummary(result, 'tagflip deploy')).toContain('### tagflip deploy: rolled-back');
}, 120_000);

test('activate fails on one host after the flip: every host flips back, status rolled-back', async () => {
  const site = newSite();
  // Activation fails where the marker is, but only for v2.
  const activate = 'echo "$TAGFLIP_RELEASE" >> "$TAGFLIP_DEPLOY_PATH/activations"; [ "$TAGFLIP_RELEASE" != v2 ] || test ! -e "$TAGFLIP_DEPLOY_PATH/broken"';
  expect((await deploy(hosts, site, { release: 'v1', activate })).result.status).toBe('deployed');

  const broken = hosts[0];
  mark(broken, site, 'broken');
  const { result } = await deploy(hosts, site, { release: 'v2', activate });

  expect(result).toMatchObject({ ok: false, status: 'rolled-back', release: 'v1' });
  expect(result.hosts[0].error).toContain(`${broken.entry}: activate failed: activate exited with status 1`);
  for (const [i, host] of hosts.entries()) {
    expect(result.hosts[i]).toMatchObject({ status: 'rolled-back', release: 'v1', previousRelease: 'v2' });
    expect(on(host, site).current()).toBe('releases/v1');
    expect(on(host, site).state('v2')).toBe('rolled-back');
    expect(on(host, site).lines('activations')).toEqual(['v1', 'v2', 'v1']);
  }
}, 120_000);

test('activate fails again after the flip back: that host is named as needing attention, and reported on the release it is on', async () => {
  const site = newSite();
  const activate = 'test ! -e "$TAGFLIP_DEPLOY_PATH/broken"';
  expect((await deploy(hosts, site, { release: 'v1', activate })).result.status).toBe('deployed');

  const broken = hosts[1];
  mark(broken, site, 'broken');
  const { result, log } = await deploy(hosts, site, { release: 'v2', activate });

  expect(result.ok).toBe(false);
  expect(result.status).toBe('failed');
  // current was flipped back everywhere; only the activation of v1 failed on the broken host.
  for (const host of hosts) expect(on(host, site).current()).toBe('releases/v1');
  expect(on(broken, site).state('v1')).toBe('active');
  expect(on(broken, site).state('v2')).toBe('rolled-back');
  const report = result.hosts[1];
  expect(report.status).toBe('failed');
  expect(report.error).toContain('NEEDS ATTENTION');
  expect(log).toContain('NEEDS ATTENTION');
  // What the host really runs now: v1 (current was moved back), not v2.
  expect(report.release).toBe('v1');
  expect(report.error).not.toContain('still runs v2');
  for (const host of hosts.filter((h) => h !== broken)) {
    expect(result.hosts[hosts.indexOf(host)]).toMatchObject({ status: 'rolled-back', release: 'v1' });
  }
}, 120_000);

test('one host unreachable (closed port): nothing flips anywhere, the error names that host', async () => {
  const site = newSite();
  const live = hosts.slice(0, 3);
  expect((await deploy(live, site, { release: 'v1' })).result.status).toBe('deployed');

  const port = await closedPort();
  const gone = `${hosts[0].sshd.user}@127.0.0.1:${port}`;
  const logger = recordingLogger();
  const result = await runCommand(
    parseSettings({
      hosts: [...live.map((host) => host.entry), gone].join('\n'),
      'private-key': hosts[0].sshd.privateKey,
      // A line for the closed port too, or the input is refused before connecting.
      'known-hosts': knownHostsOf(live) + hosts[0].sshd.otherKnownHosts.replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${port}`),
      'deploy-path': join(srv, site),
      repository: repo,
      build: 'sh build.sh',
      release: 'v2',
      'connect-timeout': '10',
    }),
    logger,
  );

  expect(result).toMatchObject({ ok: false, status: 'failed' });
  expect(result.hosts.map((host) => host.host)).toEqual([...live.map((host) => host.entry), gone]);
  expect(result.hosts[3].error).toContain(`${gone}: connect failed: connection refused on port ${port}`);
  for (const [i, host] of live.entries()) {
    expect(result.hosts[i]).toMatchObject({ status: 'failed', release: 'v1' });
    expect(result.hosts[i].error).toContain(`not flipped because another host (${gone}) failed; nothing changed here`);
    expect(result.hosts[i].error).not.toContain('network');
    expect(on(host, site).current()).toBe('releases/v1');
    expect(on(host, site).releases()).toEqual(['v1']);
  }
}, 120_000);

test('one host with a wrong host key: nothing flips anywhere, the error names that host', async () => {
  const site = newSite();
  expect((await deploy(hosts, site, { release: 'v1' })).result.status).toBe('deployed');

  const impostor = hosts[3];
  const knownHosts = hosts.map((host) => (host === impostor ? host.sshd.otherKnownHosts : host.sshd.knownHosts)).join('');
  const { result } = await deploy(hosts, site, { release: 'v2', 'known-hosts': knownHosts });

  expect(result).toMatchObject({ ok: false, status: 'failed' });
  expect(result.hosts[3].error).toContain(`${impostor.entry}: connect failed: host key verification failed`);
  for (const [i, host] of hosts.entries()) {
    expect(result.hosts[i]).toMatchObject({ host: host.entry, status: 'failed' });
    if (host !== impostor) {
      expect(result.hosts[i].release).toBe('v1');
      expect(result.hosts[i].error).toContain(`not flipped because another host (${impostor.entry}) failed; nothing changed here`);
    }
    expect(on(host, site).current()).toBe('releases/v1');
    expect(on(host, site).releases()).toEqual(['v1']);
  }
}, 120_000);

test('max-parallel 1 and 4 give the same end state; 1 works on one host at a time', async () => {
  // Every build notes its start and end in one file outside the per-host mounts,
  // which all hosts share: it shows how many hosts were working at once.
  const trace = join(openTempDir('tagflip-fleet-trace-'), 'trace');
  writeFileSync(trace, '');
  chmodSync(trace, 0o666); // the builds run as the login user
  const build = `echo start >> ${trace}; sleep 0.5; echo end >> ${trace}; sh build.sh`;
  const endState = async (maxParallel: string) => {
    const site = newSite();
    writeFileSync(trace, '');
    for (const release of ['v1', 'v2']) {
      const { result } = await deploy(hosts, site, { release, build, 'max-parallel': maxParallel });
      expect(result.hosts.map((host) => host.status)).toEqual(hosts.map(() => 'deployed'));
    }
    const state = hosts.map((host) => ({ current: on(host, site).current(), releases: on(host, site).releases(), built: on(host, site).built(), v1: on(host, site).state('v1') }));
    return { state, busiest: mostAtOnce(readFileSync(trace, 'utf8')) };
  };
  try {
    const one = await endState('1');
    const four = await endState('4');
    expect(one.state).toEqual(four.state);
    expect(one.state[0]).toEqual({ current: 'releases/v2', releases: ['v1', 'v2'], built: 'v2\n', v1: 'inactive' });
    expect(one.busiest).toBe(1);
    expect(four.busiest).toBeGreaterThan(1);
  } finally {
    rmSync(dirname(trace), { recursive: true, force: true });
  }
}, 180_000);

describe('through a jump host', () => {
  test('deploys to a host reached through the bastion', async () => {
    const site = newSite();
    const [target] = hosts;
    const logins = () => bastion.log().match(/Accepted publickey for tagflip-test/g)?.length ?? 0;
    const loginsBefore = logins();
    // activate holds the deploy open until the test has looked at who is connected to whom.
    const activate = 'touch "$TAGFLIP_DEPLOY_PATH/activating"; i=0; while [ ! -e "$TAGFLIP_DEPLOY_PATH/go" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done';
    const deploying = deploy([target], site, {
      release: 'v1',
      activate,
      'jump-host': `${bastion.user}@${bastion.host}:${bastion.port}`,
      'known-hosts': target.sshd.knownHosts + bastion.knownHosts,
    });
    try {
      await waitFor(() => existsSync(on(target, site).at('activating')), 'activate to start', 30_000);
      // The connection to the target's sshd is the bastion's (an sshd session process of
      // it), not ours; we are connected to the bastion only.
      const toTarget = tcpClientPids(target.sshd.port);
      expect(toTarget.length).toBeGreaterThan(0);
      const bastionSessions = bastion.sessionPids();
      for (const pid of toTarget) expect(ancestry(pid).some((ancestor) => bastionSessions.includes(ancestor))).toBe(true);
      expect(toTarget).not.toContain(process.pid);
      expect(tcpClientPids(bastion.port)).toContain(process.pid);
    } finally {
      writeFileSync(on(target, site).at('go'), '');
    }
    const { result } = await deploying;

    expect(result).toMatchObject({ ok: true, status: 'deployed', release: 'v1' });
    expect(result.hosts[0].host).toBe(target.entry);
    expect(on(target, site).current()).toBe('releases/v1');
    expect(on(target, site).built()).toBe('v1\n');
    expect(logins()).toBe(loginsBefore + 1);
  });

  test('a fleet through the bastion: every host deploys', async () => {
    const site = newSite();
    const { result } = await deploy(hosts, site, {
      release: 'v1',
      'jump-host': `${bastion.user}@${bastion.host}:${bastion.port}`,
      'known-hosts': knownHostsOf(hosts) + bastion.knownHosts,
    });
    expect(result.hosts.map((host) => [host.host, host.status])).toEqual(hosts.map((host) => [host.entry, 'deployed']));
    for (const host of hosts) expect(on(host, site).current()).toBe('releases/v1');
  });

  test('known-hosts without a line for the bastion is refused before any connection', () => {
    const jump = `${bastion.user}@${bastion.host}:${bastion.port}`;
    expect(() =>
      parseSettings({
        hosts: hosts[0].entry,
        'jump-host': jump,
        'private-key': hosts[0].sshd.privateKey,
        'known-hosts': hosts[0].sshd.knownHosts,
        'deploy-path': join(srv, 'never'),
      }),
    ).toThrow(`known-hosts: no line names [127.0.0.1]:${bastion.port}`);
  });

  test('a wrong bastion host key is refused, naming the jump host; nothing changes', async () => {
    const site = newSite();
    const [target] = hosts;
    const jump = `${bastion.user}@${bastion.host}:${bastion.port}`;
    const { result } = await deploy([target], site, {
      release: 'v1',
      'jump-host': jump,
      'known-hosts': target.sshd.knownHosts + bastion.otherKnownHosts,
    });

    expect(result).toMatchObject({ ok: false, status: 'failed' });
    expect(result.hosts[0].error).toContain(`the jump host ${jump}: host key verification failed`);
    expect(result.hosts[0].error).toContain(target.entry);
    expect(existsSync(on(target, site).at())).toBe(false);
  });
});

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Pids of the processes holding an established IPv4 TCP connection to 127.0.0.1:`port` (Linux /proc). */
function tcpClientPids(port: number): number[] {
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set(
    readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      .filter((fields) => fields[2] === remote && fields[3] === '01')
      .map((fields) => `socket:[${fields[9]}]`),
  );
  const pids: number[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const fds = readdirSync(`/proc/${entry}/fd`);
      if (fds.some((fd) => inodes.has(safeReadlink(`/proc/${entry}/fd/${fd}`)))) pids.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

function safeReadlink(file: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return '';
  }
}

/** `pid` and its ancestors, nearest first (Linux /proc). */
function ancestry(pid: number): number[] {
  const chain: number[] = [];
  for (let current = pid; current > 1 && chain.length < 64; ) {
    chain.push(current);
    try {
      const stat = readFileSync(`/proc/${current}/stat`, 'utf8');
      current = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return chain;
}

/** The most `start` lines without their `end` at any point of a build trace. */
function mostAtOnce(trace: string): number {
  let running = 0;
  let most = 0;
  for (const line of trace.split('\n')) {
    if (line === 'start') most = Math.max(most, ++running);
    if (line === 'end') running -= 1;
  }
  return most;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
