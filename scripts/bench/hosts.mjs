// npm run bench: the hosts. The login user, the keys and the repository every deploy
// fetches; sshd on 127.0.0.1 (in the sshd cgroup, so its sessions' CPU is the host's);
// the 50 ms link (netem in a private network namespace, else a user-space delay
// proxy); the fleet (one sshd per host, each in a mount namespace of its own).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { BenchError, Skip, run, runOk, startDaemon, undo } from './processes.mjs';
import { fmtMs, say } from './report.mjs';

export const SSHD = '/usr/sbin/sshd';
export const USER = 'tagflip-test';
export const HOST = '127.0.0.1';
export const ONE_WAY_MS = 25; // → 50 ms round trip
export const FLEET_SIZE = 8;

// ---------------------------------------------------------------------------
// Setup: user, keys, repo
// ---------------------------------------------------------------------------

function userIds() {
  const passwd = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${USER}:`));
  if (!passwd) return null;
  const fields = passwd.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

function isLocked() {
  const line = (file) => {
    try {
      return fs.readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(`${USER}:`));
    } catch {
      return undefined;
    }
  };
  const password = (line('/etc/shadow') ?? line('/etc/passwd') ?? '').split(':')[1] ?? '';
  return password.startsWith('!');
}

export async function ensureUser() {
  if (!userIds()) {
    const r = await run('useradd', ['-m', '-s', '/bin/sh', USER]);
    if (r.code !== 0 && r.code !== 9) throw new BenchError(`useradd ${USER} exited ${r.code}: ${r.stderr.trim()}`);
  }
  if (!userIds()) throw new BenchError(`user ${USER} does not exist and could not be created`);
  // useradd leaves '!' (locked); with UsePAM no, sshd refuses locked accounts even for keys.
  if (isLocked()) await runOk('usermod', ['-p', '*', USER]);
  return userIds();
}

export function chownR(target, { uid, gid }) {
  fs.chownSync(target, uid, gid);
  if (fs.lstatSync(target).isDirectory()) {
    for (const entry of fs.readdirSync(target)) chownR(path.join(target, entry), { uid, gid });
  }
}

export async function keygen(file) {
  await runOk('ssh-keygen', ['-q', '-N', '', '-t', 'ed25519', '-C', 'tagflip-bench', '-f', file]);
  fs.chmodSync(file, 0o600);
}

/** A repo whose tags b1..bCount sit on successive commits. */
export async function makeRepo(dir, count) {
  const git = (...args) =>
    runOk('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', '-c', 'commit.gpgsign=false', '-c', 'tag.gpgsign=false', '-c', 'init.defaultBranch=main', ...args], { cwd: dir });
  fs.mkdirSync(dir, { recursive: true });
  await git('init', '-q');
  fs.mkdirSync(path.join(dir, 'app'), { recursive: true });
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, 'app', `module${i}.txt`), `module ${i}\n${'x'.repeat(2000)}\n`);
  fs.writeFileSync(path.join(dir, 'build.sh'), '#!/bin/sh\necho built\n');
  for (let i = 1; i <= count; i++) {
    fs.writeFileSync(path.join(dir, 'VERSION'), `b${i}\n`);
    await git('add', '-A');
    await git('commit', '-q', '-m', `release b${i}`);
    await git('tag', `b${i}`);
  }
}

// ---------------------------------------------------------------------------
// sshd: one per host, every one with the same host key and authorized client key
// ---------------------------------------------------------------------------

function sshdConfig(dir, name, port, hostKey, authorizedKeys) {
  return [
    `ListenAddress ${HOST}`,
    `Port ${port}`,
    `HostKey ${hostKey}`,
    `PidFile ${path.join(dir, `sshd-${name}.pid`)}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin no',
    'StrictModes no',
    'LogLevel VERBOSE',
    'MaxStartups 100',
    'MaxSessions 50',
    '',
  ].join('\n');
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function startSshd(ctx, name, { port, ns = null, bind = null } = {}) {
  const config = path.join(ctx.tmp, `sshd-${name}.conf`);
  fs.writeFileSync(config, sshdConfig(ctx.tmp, name, port, ctx.hostKey, ctx.authorizedKeys), { mode: 0o644 });
  await runOk(SSHD, ['-t', '-f', config]);
  let command = SSHD;
  let args = ['-D', '-e', '-f', config];
  if (bind) {
    // A mount namespace of its own in which bind.source is mounted on bind.target:
    // every such sshd (and its sessions) sees its own files at the same deploy-path.
    [command, args] = ['unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind "$1" "$2" && exec ${SSHD} -D -e -f "$3"`, 'sh', bind.source, bind.target, config]];
  }
  if (ns) [command, args] = ['ip', ['netns', 'exec', ns, command, ...args]];
  const daemon = startDaemon(command, args, `sshd ${name} (port ${port})`, { cgroup: ctx.cgroup });
  await daemon.waitFor(/Server listening on/);
  return daemon;
}

export function writeKnownHosts(ctx, ports) {
  const [type, blob] = fs.readFileSync(`${ctx.hostKey}.pub`, 'utf8').trim().split(/\s+/);
  const lines = ports.map((port) => `[${HOST}]:${port} ${type} ${blob}\n`);
  fs.appendFileSync(ctx.knownHosts, lines.join(''));
}

// ---------------------------------------------------------------------------
// The 50 ms link
// ---------------------------------------------------------------------------

/** Prefix for running a client inside the network namespace (if any). */
export const inNs = (ns, command, args) => (ns ? { command: 'ip', args: ['netns', 'exec', ns, command, ...args] } : { command, args });

/** Time from connect to the server's first byte (≈ 2 RTT: handshake + banner). */
const PROBE = `
import net from 'node:net';
const port = Number(process.argv[2]);
const times = [];
for (let i = 0; i < 3; i++) {
  times.push(await new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(port, '127.0.0.1');
    s.once('data', () => { resolve(performance.now() - t0); s.destroy(); });
    s.once('error', reject);
    s.setTimeout(5000, () => reject(new Error('probe timed out')));
  }));
}
process.stdout.write(String(Math.min(...times)));
`;

/** User-space link emulation: every chunk waits ONE_WAY ms per direction; connecting waits a round trip more. */
const PROXY = `
import net from 'node:net';
const [listenPort, targetPort, oneWay] = process.argv.slice(2).map(Number);
const server = net.createServer({ allowHalfOpen: true }, (client) => {
  client.setNoDelay(true);
  let upstream = null;
  const pending = [];
  let closed = false;
  const destroyBoth = () => { closed = true; client.destroy(); upstream?.destroy(); };
  const toUpstream = (fn) => setTimeout(() => { if (closed) return; if (upstream) fn(upstream); else pending.push(fn); }, oneWay);
  client.on('data', (chunk) => toUpstream((s) => s.write(chunk)));
  client.on('end', () => toUpstream((s) => s.end()));
  client.on('error', destroyBoth);
  client.on('close', () => setTimeout(() => upstream?.destroy(), oneWay * 2 + 50));
  // SYN out and SYN-ACK back, then the ACK's one-way trip, before the server sees anything.
  setTimeout(() => {
    if (closed) return;
    upstream = net.connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true });
    upstream.setNoDelay(true);
    upstream.on('data', (chunk) => setTimeout(() => { if (!closed) client.write(chunk); }, oneWay));
    upstream.on('end', () => setTimeout(() => { if (!closed) client.end(); }, oneWay));
    upstream.on('error', destroyBoth);
    upstream.on('close', () => setTimeout(() => client.destroy(), oneWay * 2 + 50));
    for (const fn of pending.splice(0)) fn(upstream);
  }, oneWay * 3);
});
server.listen(listenPort, '127.0.0.1', () => process.stdout.write('proxy listening\\n'));
`;

/** The 50 ms link and an sshd behind it, made once per run (the upload part uses it too). */
export async function wanLink(ctx) {
  if (ctx.wanLink) return ctx.wanLink;
  const label = `${ONE_WAY_MS * 2} ms RTT`;
  // Preferred: a private network namespace whose own loopback gets netem.
  const netemReason = await (async () => {
    if (spawnSync('sh', ['-c', 'command -v tc'], { timeout: 5000 }).status !== 0) return 'tc (iproute2) is not installed';
    if (spawnSync('sh', ['-c', 'command -v ip'], { timeout: 5000 }).status !== 0) return 'ip (iproute2) is not installed';
    const ns = `tagflip-bench-${process.pid}`;
    const add = await run('ip', ['netns', 'add', ns]);
    if (add.code !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
    undo.push(() => spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 }));
    const up = await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    if (up.code !== 0) return `cannot bring up lo in ${ns}: ${up.stderr.trim()}`;
    const qdisc = await run('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', `${ONE_WAY_MS}ms`]);
    if (qdisc.code !== 0) return `tc qdisc add dev lo root netem delay ${ONE_WAY_MS}ms (in a private netns) failed: ${qdisc.stderr.trim() || `exit ${qdisc.code}`} — the kernel has no sch_netem`;
    ctx.netns = ns;
    return null;
  })();

  const probeFile = path.join(ctx.tmp, 'probe.mjs');
  fs.writeFileSync(probeFile, PROBE);
  let network;
  if (netemReason === null) {
    const port = 2222;
    writeKnownHosts(ctx, [port]);
    await startSshd(ctx, 'wan', { port, ns: ctx.netns });
    network = { ns: ctx.netns, port, label: `${label} (netem in a private netns)` };
  } else if (!ctx.proxy) {
    throw new Skip(`${label}: ${netemReason} (and --no-proxy was given)`);
  } else {
    say(`skipped: ${label} with netem: ${netemReason}`);
    say(`  measuring instead across a user-space delay proxy (${ONE_WAY_MS} ms each way, +1 RTT to connect); no bandwidth limit, no loss`);
    const sshdPort = await freePort();
    await startSshd(ctx, 'wan', { port: sshdPort });
    const proxyPort = await freePort();
    const proxyFile = path.join(ctx.tmp, 'delay-proxy.mjs');
    fs.writeFileSync(proxyFile, PROXY);
    const proxy = startDaemon(process.execPath, [proxyFile, String(proxyPort), String(sshdPort), String(ONE_WAY_MS)], 'delay proxy');
    await proxy.waitFor(/proxy listening/);
    writeKnownHosts(ctx, [proxyPort]);
    network = { ns: null, port: proxyPort, label: `${label} (emulated by a delay proxy)` };
  }
  const probe = inNs(network.ns, process.execPath, [probeFile, String(network.port)]);
  const firstByte = Number((await runOk(probe.command, probe.args)).stdout);
  say(`  ${network.label}: connect to SSH banner takes ${fmtMs(firstByte)} ms (expected ≈ ${ONE_WAY_MS * 4} ms = 2 RTT)`);
  if (!(firstByte >= ONE_WAY_MS * 3)) throw new BenchError(`the ${label} link does not delay: connect to banner took ${fmtMs(firstByte)} ms`);
  ctx.wanLink = network;
  return network;
}

// ---------------------------------------------------------------------------
// The fleet
// ---------------------------------------------------------------------------

/**
 * `count` sshd on 127.0.0.1 (FLEET_SIZE unless told), each in its own mount namespace
 * (its own files at `target`). Started once per run and grown on demand: the first
 * hosts of a larger fleet are those of a smaller one.
 */
export async function fleetHosts(ctx, count = FLEET_SIZE) {
  if (!ctx.fleetHosts) {
    const target = path.join(ctx.tmp, 'fleet-host'); // the deploy-path parent every host sees
    fs.mkdirSync(target, { mode: 0o755 });
    fs.chownSync(target, ctx.ids.uid, ctx.ids.gid);
    const source = makeFleetSource(ctx, 1);
    try {
      // Probe once that mount namespaces work here before starting the hosts.
      await runOk('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2"', 'sh', source, target]);
    } catch (error) {
      throw new Skip(`${count} hosts: mount namespaces (unshare -m + mount --bind) do not work here: ${error.message.split('\n')[0]}`);
    }
    ctx.fleetHosts = { target, ports: [], sources: [] };
  }
  const fleet = ctx.fleetHosts;
  while (fleet.ports.length < count) {
    const i = fleet.ports.length + 1;
    const source = makeFleetSource(ctx, i);
    fleet.ports.push(await startBound(ctx, `fleet-h${i}`, { bind: { source, target: fleet.target } }));
    fleet.sources.push(source);
  }
  return { target: fleet.target, ports: fleet.ports.slice(0, count), sources: fleet.sources.slice(0, count) };
}

/**
 * An sshd on a free port, tried again on another one when something else took the
 * port between freePort and the bind (other work on the machine, a client's
 * ephemeral port): with dozens of hosts that happens. Returns the port.
 */
async function startBound(ctx, name, options) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      await startSshd(ctx, name, { ...options, port });
    } catch (error) {
      if (attempt < 5 && error instanceof BenchError && /Address already in use/.test(error.message)) continue;
      throw error;
    }
    writeKnownHosts(ctx, [port]);
    return port;
  }
}

/** Host i's own directory, bind-mounted on the fleet's target in its namespace. */
function makeFleetSource(ctx, i) {
  const source = path.join(ctx.tmp, 'fleet-src', `h${i}`);
  fs.mkdirSync(source, { recursive: true, mode: 0o755 });
  fs.chownSync(source, ctx.ids.uid, ctx.ids.gid);
  return source;
}
