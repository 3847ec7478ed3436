#!/usr/bin/env node
// npm run bench [-- --runs N] [-- --only startup,loopback,wan,fleet,history,upload]
//
// Measures the performance targets (SPEC.md "Design notes", issue 12) side by side with
// the peers, in one run, against the same sshd and repository:
//   - the floor: one OpenSSH session running a minimal deploy script (fetch, archive,
//     build, flip);
//   - a fuller hand-written script doing tagflip's steps (lock, manifests, history, prune);
//   - Mina 0.3 (Debian's `mina`: one `ssh` running the script it generates), where installed;
//   - tagflip.
// and issue 11's `upload` speed (scripts/bench-upload.mjs).
// Targets: one host at most 2x the floor on loopback and 1.3x across 50 ms RTT, faster
// than Mina on both; CPU per deploy (client + everything on the host) at most 2x the
// floor's; the first log line within `node -e 0` + 80 ms; 8 hosts at most 2x one host.
// CPU is read from cpuacct (cgroup v1) or cpu.stat (cgroup v2) of two cgroups the bench
// makes: one holds the sshd daemons (so every session they fork), one each client.
//
// It is a measurement, not a test: it exits 0 whether or not a target is met, prints
// "skipped: …" for a part this machine cannot run, and exits 1 only when the
// benchmark itself cannot run (not root, no sshd, no build, a deploy that failed, …).
//
// Everything is self-contained and removed at the end (also on error or Ctrl-C): a
// temp dir with a host key and a client key, sshd(s) on 127.0.0.1 logging in the
// existing user `tagflip-test` (created if missing), a git repo with one tag per
// measured release, and, for the 50 ms link, a private network namespace whose
// loopback gets `tc netem delay 25ms` (the real loopback is never touched). Where the
// kernel has no netem, the link is emulated instead by a small user-space TCP proxy
// that holds every chunk 25 ms in each direction (and the connection set-up for the
// TCP handshake's round trip), and the rows say so.
//
// Needs root (sshd switching users, namespaces), Linux, OpenSSH (sshd, ssh,
// ssh-keygen), git, flock, unshare, and a built CLI (npm run build → dist/cli).
// Plain ESM, node built-ins only.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { partHistory } from './bench/history.mjs';
import { partUpload } from './bench-upload.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'bin', 'tagflip.js');
const BUNDLE = path.join(ROOT, 'dist', 'cli', 'index.js');
const ACTION_BUNDLE = path.join(ROOT, 'dist', 'index.js');
const SSHD = '/usr/sbin/sshd';
const TIME = '/usr/bin/time';
const USER = 'tagflip-test';
const HOST = '127.0.0.1';
const ONE_WAY_MS = 25; // → 50 ms round trip
const FLEET_SIZE = 8;
const KEEP_RELEASES = 5; // tagflip's default keep-releases; the baseline prunes the same way
const BUILD = 'true';
const DEPLOY_TIMEOUT_MS = 180_000;
const SHORT_TIMEOUT_MS = 30_000;
const TARGETS = { loopback: 2, wan: 1.3, fleet: 2, cpu: 2, startupMs: 80 };
const MINA_TEMPLATE = '/usr/lib/ruby/data/deploy.sh.erb';
const MINA_TEMPLATE_EXAMPLE = '/usr/share/doc/mina/examples/deploy.sh.erb';
const PARTS = ['startup', 'loopback', 'wan', 'fleet', 'history', 'upload'];

class BenchError extends Error {}
class Skip extends Error {}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

const USAGE = `usage: node scripts/bench.mjs [--runs N] [--only ${PARTS.join(',')}] [--no-proxy] [--keep]
  --runs N    measured runs per variant after one warm-up (default 7)
  --only LIST measure only these parts (comma separated)
  --no-proxy  without netem, skip the 50 ms RTT part instead of emulating the link
  --keep      leave the temp dir in place (sshd and namespaces are still stopped)`;

function parseArgs(argv) {
  const options = { runs: 7, only: new Set(PARTS), keep: false, proxy: true };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) [arg, value] = [arg.slice(0, eq), arg.slice(eq + 1)];
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new BenchError(`${arg} needs a value\n${USAGE}`);
      return argv[++i];
    };
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg === '--runs') {
      const text = next();
      const runs = Number(text);
      if (!/^\d+$/.test(text) || runs < 1 || runs > 100) throw new BenchError(`--runs must be an integer from 1 to 100, not '${text}'`);
      options.runs = runs;
    } else if (arg === '--only') {
      const parts = next().split(',').map((p) => p.trim()).filter(Boolean);
      const unknown = parts.filter((p) => !PARTS.includes(p));
      if (unknown.length > 0 || parts.length === 0) throw new BenchError(`--only takes some of ${PARTS.join(', ')}; got '${parts.join(',')}'`);
      options.only = new Set(parts);
    } else if (arg === '--no-proxy') {
      options.proxy = false;
    } else if (arg === '--keep') {
      options.keep = true;
    } else {
      throw new BenchError(`unknown argument '${argv[i]}'\n${USAGE}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------
// Child processes: every one has a timeout and is killed (its whole group) on cleanup
// ---------------------------------------------------------------------------

const liveChildren = new Set();

/**
 * Run a command; resolves with { code, signal, stdout, stderr, ms } (ms = wall time
 * from spawn to exit). Rejects on spawn errors and timeouts (after killing the group).
 */
function run(command, args, { input, timeoutMs = SHORT_TIMEOUT_MS, env = process.env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let child;
    try {
      child = spawn(command, args, { cwd, env, detached: true, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    } catch (error) {
      reject(new BenchError(`cannot start ${command}: ${error.message}`));
      return;
    }
    liveChildren.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    if (input !== undefined) {
      child.stdin.on('error', () => undefined); // EPIPE when the child exits early; its status tells
      child.stdin.end(input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(new BenchError(`cannot run ${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      const ms = performance.now() - started;
      clearTimeout(timer);
      liveChildren.delete(child);
      if (timedOut) reject(new BenchError(`${describe(command, args)} timed out after ${timeoutMs / 1000} s\n${tail(stdout + stderr)}`));
      else resolve({ code, signal, stdout, stderr, ms });
    });
  });
}

async function runOk(command, args, options) {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new BenchError(`${describe(command, args)} exited ${result.code ?? result.signal}\n${tail(result.stdout + result.stderr)}`);
  }
  return result;
}

function describe(command, args) {
  const shown = [command, ...args].join(' ');
  return shown.length > 300 ? `${shown.slice(0, 300)}…` : shown;
}

function tail(text, lines = 25) {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).map((line) => `    ${line}`).join('\n');
}

function killGroup(pid, signal) {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

/** pid → ppid of every live, non-zombie process (Linux /proc). */
function processTable() {
  const table = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z') table.set(Number(entry), Number(ppid));
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

function descendants(root) {
  const table = processTable();
  const out = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const [pid, ppid] of table) if (ppid === parent) (out.push(pid), queue.push(pid));
  }
  return out;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Cleanup: a stack of synchronous undo steps, run once (normal end, error, signal)
// ---------------------------------------------------------------------------

const undo = [];
let cleanedUp = false;

function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const child of liveChildren) killGroup(child.pid, 'SIGKILL');
  while (undo.length > 0) {
    const step = undo.pop();
    try {
      step();
    } catch (error) {
      process.stderr.write(`cleanup: ${error.message}\n`);
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    process.stderr.write(`\ninterrupted by ${signal}; cleaning up\n`);
    cleanup();
    process.exit(1);
  });
}

/** A long-running process (sshd, proxy) stopped on cleanup together with everything it started. */
function startDaemon(command, args, label, { cgroup = null } = {}) {
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  // Before it listens: every session it forks is then counted as the host's CPU.
  if (cgroup && child.pid) cgroup.join('host', child.pid);
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (log += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (log += d));
  let exit = null;
  child.once('exit', (code, signal) => (exit = `code=${code} signal=${signal}`));
  child.once('error', (error) => (exit = `spawn error: ${error.message}`));
  undo.push(() => {
    if (!child.pid) return;
    const tree = descendants(child.pid);
    killGroup(child.pid, 'SIGKILL');
    for (const pid of tree) killGroup(pid, 'SIGKILL');
  });
  const waitFor = async (pattern, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(log)) {
      if (exit !== null) throw new BenchError(`${label} exited at start (${exit}):\n${tail(log)}`);
      if (Date.now() > deadline) throw new BenchError(`${label} was not ready within ${timeoutMs / 1000} s:\n${tail(log)}`);
      await sleep(20);
    }
  };
  return { child, waitFor, log: () => log, exited: () => exit };
}

// ---------------------------------------------------------------------------
// CPU accounting: a cgroup for the host side (the sshd daemons and all they fork) and
// one for the client of each measured run. Deploys run one at a time, so the deltas
// of the two counters around a run are that run's CPU, whatever else the machine does.
// ---------------------------------------------------------------------------

function makeCgroups() {
  const name = `tagflip-bench-${process.pid}`;
  const flavours = [
    // cgroup v2 (unified): cpu.stat's usage_usec exists in every group, no controller needed.
    ...['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].map((root) => ({ root, v2: true })),
    { root: '/sys/fs/cgroup/cpuacct', v2: false },
  ];
  const reasons = [];
  for (const { root, v2 } of flavours) {
    if (!fs.existsSync(path.join(root, 'cgroup.procs')) || (v2 && !fs.existsSync(path.join(root, 'cgroup.controllers')))) continue;
    const base = path.join(root, name);
    try {
      fs.mkdirSync(base);
    } catch (error) {
      reasons.push(`${root}: ${error.code}`);
      continue;
    }
    const groups = {};
    // A cgroup cannot be removed while it holds a process: move leftovers out first.
    const release = () => {
      for (const dir of Object.values(groups)) {
        for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            fs.writeFileSync(path.join(root, 'cgroup.procs'), pid);
          } catch {
            // gone
          }
        }
      }
    };
    undo.push(() => {
      release();
      for (const dir of Object.values(groups)) fs.rmdirSync(dir);
      fs.rmdirSync(base);
    });
    for (const part of ['host', 'client']) {
      groups[part] = path.join(base, part);
      fs.mkdirSync(groups[part]);
    }
    const usageMs = (part) =>
      v2
        ? Number(/^usage_usec (\d+)/m.exec(fs.readFileSync(path.join(groups[part], 'cpu.stat'), 'utf8'))[1]) / 1000
        : Number(fs.readFileSync(path.join(groups[part], 'cpuacct.usage'), 'utf8')) / 1e6;
    return {
      label: `${v2 ? 'cgroup v2 cpu.stat' : 'cgroup v1 cpuacct'} under ${root}`,
      procs: (part) => path.join(groups[part], 'cgroup.procs'),
      join: (part, pid) => fs.writeFileSync(path.join(groups[part], 'cgroup.procs'), String(pid)),
      usageMs,
    };
  }
  return { unavailable: reasons.length ? reasons.join('; ') : 'no writable cpuacct (v1) or unified (v2) cgroup hierarchy' };
}

// ---------------------------------------------------------------------------
// Statistics and output
// ---------------------------------------------------------------------------

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const fmtMs = (ms) => (ms === undefined ? '-' : ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
const fmtRss = (kb) => (kb === undefined ? '-' : `${(kb / 1024).toFixed(1)}`);
const fmtX = (x) => `${x.toFixed(2)}x`;

const rows = [];
const verdicts = [];

/** A measured variant: times (ms) and peak RSS (KiB) per run. */
function summary(samples) {
  const ms = samples.map((s) => s.ms);
  const rss = samples.map((s) => s.rssKb).filter((v) => v !== undefined);
  const cpu = samples.filter((s) => s.cpu !== undefined).map((s) => s.cpu);
  const cpuOf = (key) => (cpu.length ? median(cpu.map((c) => c[key])) : undefined);
  return {
    median: median(ms),
    min: Math.min(...ms),
    rss: rss.length ? median(rss) : undefined,
    rssMax: rss.length ? Math.max(...rss) : undefined,
    cpu: cpu.length ? { total: cpuOf('total'), client: cpuOf('client'), host: cpuOf('host') } : undefined,
    n: ms.length,
  };
}

function addRow(part, variant, stats, vs) {
  rows.push({ part, variant, stats, ratio: vs ? stats.median / vs.median : undefined });
}

function printTable() {
  if (rows.length === 0) {
    process.stdout.write('\n(nothing was measured)\n');
    return;
  }
  const header = ['part', 'variant', 'median ms', 'min ms', 'vs ref', 'CPU ms (client+host)', 'peak RSS MiB'];
  const cpu = (c) => (c === undefined ? '-' : `${fmtMs(c.total)} (${fmtMs(c.client)}+${fmtMs(c.host)})`);
  const body = rows.map((r) => [r.part, r.variant, fmtMs(r.stats.median), fmtMs(r.stats.min), r.ratio === undefined ? '' : fmtX(r.ratio), cpu(r.stats.cpu), fmtRss(r.stats.rss)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  process.stdout.write(`\n${out.join('\n')}\n`);
}

/** The README's table: median wall time per link, and CPU per deploy on loopback. */
function printPeersTable(ctx) {
  const parts = ['loopback', 'wan'].filter((part) => ctx.peers[part]);
  if (parts.length === 0) return;
  const names = { floor: 'one OpenSSH session, minimal deploy script (the floor)', hand: 'one OpenSSH session, full hand-written script', mina: 'Mina 0.3 (`mina deploy`)', tagflip: '**tagflip** (CLI)' };
  const secs = (ms) => (ms === undefined ? 'not measured' : `${(ms / 1000).toFixed(2)} s`);
  const cpuPart = ctx.peers.loopback ? 'loopback' : parts[0];
  const header = `| | ${parts.map((part) => (part === 'loopback' ? 'loopback' : ctx.peers[part].label)).join(' | ')} | CPU per deploy (${cpuPart}: client + host) |`;
  const lines = [header, `|---|${parts.map(() => '---|').join('')}---|`];
  for (const key of Object.keys(names)) {
    if (!parts.some((part) => ctx.peers[part].stats[key])) {
      lines.push(`| ${names[key]} | ${parts.map(() => 'not installed').join(' | ')} | |`);
      continue;
    }
    const cpu = ctx.peers[cpuPart].stats[key]?.cpu;
    const cpuText = cpu ? `${secs(cpu.total)} (${secs(cpu.client)} + ${secs(cpu.host)})` : 'not measured';
    lines.push(`| ${names[key]} | ${parts.map((part) => secs(ctx.peers[part].stats[key]?.median)).join(' | ')} | ${cpuText} |`);
  }
  say(`\nAs in the README (medians of ${ctx.runs}):\n\n${lines.join('\n')}`);
}

function say(text) {
  process.stdout.write(`${text}\n`);
}

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

async function ensureUser() {
  if (!userIds()) {
    const r = await run('useradd', ['-m', '-s', '/bin/sh', USER]);
    if (r.code !== 0 && r.code !== 9) throw new BenchError(`useradd ${USER} exited ${r.code}: ${r.stderr.trim()}`);
  }
  if (!userIds()) throw new BenchError(`user ${USER} does not exist and could not be created`);
  // useradd leaves '!' (locked); with UsePAM no, sshd refuses locked accounts even for keys.
  if (isLocked()) await runOk('usermod', ['-p', '*', USER]);
  return userIds();
}

function chownR(target, { uid, gid }) {
  fs.chownSync(target, uid, gid);
  if (fs.lstatSync(target).isDirectory()) {
    for (const entry of fs.readdirSync(target)) chownR(path.join(target, entry), { uid, gid });
  }
}

async function keygen(file) {
  await runOk('ssh-keygen', ['-q', '-N', '', '-t', 'ed25519', '-C', 'tagflip-bench', '-f', file]);
  fs.chmodSync(file, 0o600);
}

/** A repo whose tags b1..bCount sit on successive commits. */
async function makeRepo(dir, count) {
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

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------
// The deploy variants: the floor, the hand-written script, Mina, tagflip
// ---------------------------------------------------------------------------

const shq = (value) => `'${String(value).replace(/'/g, `'\\''`)}'`;

/**
 * The hand-written deploy: what an operator would feed one `ssh host 'sh -s'`. Same
 * steps as tagflip: lock, mirror fetch (clone once), export the tag, build in place
 * with stdin from /dev/null, JSON manifests written by rename, flip `current` by
 * rename, a history line, prune to the newest KEEP_RELEASES.
 */
function baselineScript(deployPath, tag, repo) {
  return `set -eu
umask 022
d=${shq(deployPath)} tag=${shq(tag)} repo=${shq(repo)} build=${shq(BUILD)}
m=$d/.tagflip/repo.git
r=$d/releases/$tag
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
started=$(now)
mkdir -p -- "$d/releases" "$d/.tagflip/releases"
exec 9>>"$d/.tagflip/lock"
flock -w 300 9
printf '{"user":"%s","since":"%s"}\\n' "$(id -un)" "$started" > "$d/.tagflip/lock.json.tmp"
mv -f -- "$d/.tagflip/lock.json.tmp" "$d/.tagflip/lock.json"
prev=$(readlink -- "$d/current" 2>/dev/null) || prev=''
commit=''
manifest() {
  printf '{"release":"%s","state":"%s","commit":"%s","previous":"%s","started":"%s","finished":"%s"}\\n' \\
    "$tag" "$1" "$commit" "$prev" "$started" "$(now)" > "$d/.tagflip/releases/$tag.json.tmp"
  mv -f -- "$d/.tagflip/releases/$tag.json.tmp" "$d/.tagflip/releases/$tag.json"
}
rm -rf -- "$r"
mkdir -- "$r"
manifest building
if [ -d "$m" ]; then
  git --git-dir="$m" fetch --prune --quiet origin
else
  git clone --mirror --quiet -- "$repo" "$m"
fi
commit=$(git --git-dir="$m" rev-parse --verify --quiet "$tag^{commit}")
git --git-dir="$m" archive --format=tar -o "$r/.source.tar" "$commit"
tar -x -f "$r/.source.tar" -C "$r"
rm -f -- "$r/.source.tar"
(cd "$r" && sh -c "$build") </dev/null
manifest ready
rm -f -- "$d/.current.tmp"
ln -s -- "releases/$tag" "$d/.current.tmp"
mv -T -- "$d/.current.tmp" "$d/current"
manifest active
printf '{"event":"deploy","release":"%s","previous":"%s","time":"%s"}\\n' "$tag" "$prev" "$(now)" >> "$d/.tagflip/history.jsonl"
ls -1t -- "$d/releases" | tail -n +${KEEP_RELEASES + 1} | while IFS= read -r old; do
  rm -rf -- "$d/releases/$old" "$d/.tagflip/releases/$old.json"
done
`;
}

/**
 * The floor: the least a deploy does, in one `ssh host 'sh -s'`: fetch into a mirror
 * (cloned once), export the tag, build, flip `current` by rename. No lock, no record.
 */
function floorScript(deployPath, tag, repo) {
  return `set -eu
d=${shq(deployPath)} tag=${shq(tag)} repo=${shq(repo)} build=${shq(BUILD)}
m=$d/mirror.git r=$d/releases/$tag
if [ -d "$m" ]; then git --git-dir="$m" fetch -q origin; else mkdir -p "$d/releases"; git clone -q --mirror "$repo" "$m"; fi
mkdir "$r"
git --git-dir="$m" archive "$tag" | tar -x -C "$r"
(cd "$r" && sh -c "$build") </dev/null
ln -sfn "releases/$tag" "$d/.current.tmp" && mv -T "$d/.current.tmp" "$d/current"
`;
}

/**
 * Mina 0.3's deploy.rb: its own git:clone (a bare mirror, then a clone of the tag into
 * a numbered release), the build, its flip (ln -nfs) and its cleanup to KEEP_RELEASES.
 * ssh_options make its one `ssh` check our known_hosts with our key, as ours do
 * (OpenSSH takes the first -o StrictHostKeyChecking, so Mina's own "=no" after it is moot).
 */
function minaDeployRb(ctx, { port, site }) {
  const sshOptions = ['-F /dev/null', '-o BatchMode=yes', `-o UserKnownHostsFile=${ctx.knownHosts}`, '-o GlobalKnownHostsFile=/dev/null', '-o StrictHostKeyChecking=yes', '-o IdentitiesOnly=yes'].join(' ');
  const ruby = (value) => JSON.stringify(String(value)); // a double-quoted Ruby string (no #{ in these values)
  return `require 'mina/git'
set :domain, ${ruby(HOST)}
set :user, ${ruby(USER)}
set :port, ${ruby(port)}
set :identity_file, ${ruby(ctx.clientKey)}
set :ssh_options, ${ruby(sshOptions)}
set :deploy_to, ${ruby(site)}
set :repository, ${ruby(ctx.repo)}
set :branch, ENV.fetch('BENCH_TAG')
set :keep_releases, ${KEEP_RELEASES}
task :environment do
end
task :deploy => :environment do
  deploy do
    invoke :'git:clone'
    queue ${ruby(BUILD)}
    invoke :'deploy:cleanup'
  end
end
`;
}

/** Why Mina cannot run here, or null; puts the template Debian's package lacks in place. */
function minaMissing() {
  if (spawnSync('sh', ['-c', 'command -v mina'], { timeout: 5000 }).status !== 0) return 'mina is not installed (Debian: apt-get install mina ruby-open4)';
  if (spawnSync('ruby', ['-e', "require 'open4'"], { timeout: 20_000 }).status !== 0) return "ruby's open4 is missing (Debian: apt-get install ruby-open4)";
  if (!fs.existsSync(MINA_TEMPLATE)) {
    if (!fs.existsSync(MINA_TEMPLATE_EXAMPLE)) return `${MINA_TEMPLATE} is missing and there is no ${MINA_TEMPLATE_EXAMPLE} to copy`;
    // Debian's mina 0.3 ships the template only as documentation.
    fs.mkdirSync(path.dirname(MINA_TEMPLATE), { recursive: true });
    fs.copyFileSync(MINA_TEMPLATE_EXAMPLE, MINA_TEMPLATE);
    say(`  copied ${MINA_TEMPLATE_EXAMPLE} to ${MINA_TEMPLATE} (Debian's mina 0.3 lacks it)`);
  }
  return null;
}

/** Wrap a command with /usr/bin/time (peak RSS into a file) when it exists. */
function withRss(ctx, command, args) {
  if (!ctx.haveTime) return { command, args, rssFile: null };
  const rssFile = path.join(ctx.tmp, `rss-${process.hrtime.bigint()}`);
  return { command: TIME, args: ['-f', '%M', '-o', rssFile, command, ...args], rssFile };
}

function readRss(rssFile) {
  if (!rssFile) return undefined;
  try {
    const lines = fs.readFileSync(rssFile, 'utf8').trim().split('\n');
    fs.rmSync(rssFile, { force: true });
    const last = lines.reverse().find((l) => /^\d+$/.test(l.trim()));
    return last === undefined ? undefined : Number(last);
  } catch {
    return undefined;
  }
}

/** Prefix for running a client inside the network namespace (if any). */
const inNs = (ns, command, args) => (ns ? { command: 'ip', args: ['netns', 'exec', ns, command, ...args] } : { command, args });

function checkCurrent(site, tag, what) {
  let link;
  try {
    link = fs.readlinkSync(path.join(site, 'current'));
  } catch (error) {
    throw new BenchError(`${what}: ${site}/current is not a symlink after the deploy (${error.code})`);
  }
  if (link !== `releases/${tag}`) throw new BenchError(`${what}: ${site}/current points to ${link}, expected releases/${tag}`);
}

async function measure(ctx, label, command, args, options = {}) {
  const { cgroup } = ctx;
  // The client joins its cgroup before it execs, so it and all it starts are counted.
  const [inner, innerArgs] = cgroup ? ['sh', ['-c', 'echo $$ > "$0" && exec "$@"', cgroup.procs('client'), command, ...args]] : [command, args];
  const wrapped = withRss(ctx, inner, innerArgs);
  const before = cgroup && { client: cgroup.usageMs('client'), host: cgroup.usageMs('host') };
  const result = await run(wrapped.command, wrapped.args, { timeoutMs: DEPLOY_TIMEOUT_MS, env: ctx.env, ...options });
  let cpu;
  if (cgroup) {
    await sleep(50); // the host's sshd session may still be closing after the client exits
    const client = cgroup.usageMs('client') - before.client;
    const host = cgroup.usageMs('host') - before.host;
    cpu = { client, host, total: client + host };
  }
  const rssKb = readRss(wrapped.rssFile);
  if (result.code !== 0) {
    throw new BenchError(`${label} exited ${result.code ?? result.signal} (${describe(command, args)})\n${tail(result.stdout + result.stderr)}`);
  }
  return { ms: result.ms, rssKb, cpu, output: result.stdout + result.stderr };
}

/**
 * OpenSSH with no config file (so no ControlMaster or GSSAPI from ~/.ssh/config or
 * /etc/ssh/ssh_config), strict host key checking against our known_hosts.
 */
function sshArgs(ctx, port, remoteCommand) {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${ctx.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'IdentitiesOnly=yes',
    '-i', ctx.clientKey,
    '-p', String(port),
    `${USER}@${HOST}`,
    remoteCommand,
  ];
}

/** The floor: the minimal deploy script in one OpenSSH session. */
async function floorDeploy(ctx, { ns, port, site }, tag) {
  const ssh = inNs(ns, 'ssh', sshArgs(ctx, port, 'sh -s'));
  const sample = await measure(ctx, `minimal deploy of ${tag}`, ssh.command, ssh.args, { input: floorScript(site, tag, ctx.repo) });
  checkCurrent(site, tag, `minimal deploy of ${tag}`);
  return sample;
}

/** One `mina deploy` of `tag` to `site` (its releases are numbered, so check what current holds). */
async function minaDeploy(ctx, { ns, port, site }, tag) {
  const dir = path.join(ctx.tmp, `mina-${path.basename(site)}`);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'deploy.rb'), minaDeployRb(ctx, { port, site }));
    // What `mina setup` would make, without its shared-paths extras.
    for (const sub of ['', 'releases', 'shared']) {
      fs.mkdirSync(path.join(site, sub), { recursive: true, mode: 0o755 });
      fs.chownSync(path.join(site, sub), ctx.ids.uid, ctx.ids.gid);
    }
  }
  const mina = inNs(ns, 'mina', ['-f', path.join(dir, 'deploy.rb'), 'deploy']);
  const sample = await measure(ctx, `mina deploy of ${tag}`, mina.command, mina.args, { cwd: dir, env: { ...ctx.env, BENCH_TAG: tag } });
  let version = '';
  try {
    version = fs.readFileSync(path.join(site, 'current', 'VERSION'), 'utf8').trim();
  } catch (error) {
    throw new BenchError(`mina deploy of ${tag}: ${site}/current/VERSION cannot be read (${error.code})\n${tail(sample.output)}`);
  }
  if (version !== tag) throw new BenchError(`mina deploy of ${tag}: current holds ${version}`);
  return sample;
}

/** One hand-written deploy of `tag` to `site` through `port` (ns: network namespace or null). */
async function baselineDeploy(ctx, { ns, port, site }, tag) {
  const ssh = inNs(ns, 'ssh', sshArgs(ctx, port, 'sh -s'));
  const sample = await measure(ctx, `hand-written deploy of ${tag}`, ssh.command, ssh.args, { input: baselineScript(site, tag, ctx.repo) });
  checkCurrent(site, tag, `hand-written deploy of ${tag}`);
  return sample;
}

/** One tagflip deploy of `tag` to `site` (hosts: one or more ports). */
async function tagflipDeploy(ctx, { ns, ports, site, sources }, tag) {
  const hosts = ports.map((port) => `${USER}@${HOST}:${port}`).join(',');
  const cli = inNs(ns, process.execPath, [
    CLI, 'deploy',
    '--hosts', hosts,
    '--private-key', `@${ctx.clientKey}`,
    '--known-hosts', `@${ctx.knownHosts}`,
    '--deploy-path', site,
    '--release', tag,
    '--repository', ctx.repo,
    '--build', BUILD,
  ]);
  const sample = await measure(ctx, `tagflip deploy of ${tag} to ${hosts}`, cli.command, cli.args);
  if (!/status: deployed/.test(sample.output)) throw new BenchError(`tagflip deploy of ${tag}: no "status: deployed" in its output\n${tail(sample.output)}`);
  for (const source of sources ?? [site]) checkCurrent(source, tag, `tagflip deploy of ${tag}`);
  return sample;
}

/**
 * Warm up each variant once, then ctx.runs rounds; within a round the variants run
 * one after the other, in an order that alternates, so drift hits them alike.
 * Every run deploys a fresh tag (b1 is the warm-up, b2.. the measured runs).
 */
async function compare(ctx, variants) {
  const samples = variants.map(() => []);
  for (let round = 0; round <= ctx.runs; round++) {
    const tag = `b${round + 1}`;
    const order = variants.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const sample = await variants[i].deploy(tag);
      if (round > 0) samples[i].push(sample);
    }
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  return samples.map(summary);
}

// ---------------------------------------------------------------------------
// Parts
// ---------------------------------------------------------------------------

/**
 * Wall time from spawn to the first line matching `pattern` on stdout or stderr; the
 * process is killed there. Rejects if it exits without printing one.
 */
function timeToLine(command, args, env, pattern) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    let output = '';
    let ms = null;
    const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), SHORT_TIMEOUT_MS);
    const onData = (data) => {
      output += data;
      if (ms !== null || !pattern.test(output)) return;
      ms = performance.now() - started;
      killGroup(child.pid, 'SIGKILL');
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    child.once('error', (error) => reject(new BenchError(`cannot run ${command}: ${error.message}`)));
    child.once('close', () => {
      clearTimeout(timer);
      liveChildren.delete(child);
      if (ms === null) reject(new BenchError(`${describe(command, args)} printed no line matching ${pattern}:\n${tail(output)}`));
      else resolve({ ms });
    });
  });
}

/**
 * Start-up: `node -e` printing a line, against the first line a deploy prints
 * ("── connect · host", logged before the connection is tried) from the action
 * (`node dist/index.js` with INPUT_*, as the runner starts it) and from the CLI.
 * The host is a closed port on loopback: everything before that line is the same
 * as for a reachable host. Variants alternate within each round.
 */
async function partStartup(ctx) {
  const port = await freePort();
  const knownHosts = path.join(ctx.tmp, 'startup_known_hosts');
  const [type, blob] = fs.readFileSync(`${ctx.hostKey}.pub`, 'utf8').trim().split(/\s+/);
  fs.writeFileSync(knownHosts, `[${HOST}]:${port} ${type} ${blob}\n`);
  const site = path.join(ctx.sites, 'startup');
  const inputs = {
    hosts: `${USER}@${HOST}:${port}`,
    'private-key': fs.readFileSync(ctx.clientKey, 'utf8'),
    'known-hosts': fs.readFileSync(knownHosts, 'utf8'),
    'deploy-path': site,
    release: 'b1',
    repository: ctx.repo,
    build: BUILD,
  };
  const actionEnv = { ...ctx.env, ...Object.fromEntries(Object.entries(inputs).map(([name, value]) => [`INPUT_${name.toUpperCase()}`, value])) };
  const cliArgs = ['deploy', '--hosts', inputs.hosts, '--private-key', `@${ctx.clientKey}`, '--known-hosts', `@${knownHosts}`, '--deploy-path', site, '--release', 'b1', '--repository', ctx.repo, '--build', BUILD];
  const firstLine = /connect/;
  const variants = [
    ['node -e (prints a line)', [process.execPath, ['-e', 'console.log("connect")'], ctx.env]],
    ['action: node dist/index.js, first line', [process.execPath, [ACTION_BUNDLE], actionEnv]],
    ['CLI: node bin/tagflip.js deploy, first line', [process.execPath, [CLI, ...cliArgs], ctx.env]],
  ];
  const samples = variants.map(() => []);
  const rounds = Math.max(ctx.runs, 10); // cheap, and noisier than a deploy
  for (let round = 0; round <= rounds; round++) {
    for (const [i, [, [command, args, env]]] of variants.entries()) {
      const sample = await timeToLine(command, args, env, firstLine);
      if (round > 0) samples[i].push(sample);
    }
  }
  const results = {};
  variants.forEach(([label], i) => {
    results[label] = summary(samples[i]);
    addRow('startup', label, results[label], i === 0 ? undefined : results[variants[0][0]]);
  });
  const node = results[variants[0][0]];
  for (const [label] of variants.slice(1)) {
    const over = results[label].median - node.median;
    verdicts.push(`${over <= TARGETS.startupMs ? 'PASS' : 'FAIL'} start-up, ${label.split(':')[0]}: first log line ${fmtMs(results[label].median)} ms = node -e + ${fmtMs(over)} ms (target ≤ + ${TARGETS.startupMs} ms; medians of ${results[label].n})`);
  }
  ctx.startup = { node: node.median, cli: results[variants[2][0]].median };
}

async function startSshd(ctx, name, { port, ns = null, bind = null } = {}) {
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

function writeKnownHosts(ctx, ports) {
  const [type, blob] = fs.readFileSync(`${ctx.hostKey}.pub`, 'utf8').trim().split(/\s+/);
  const lines = ports.map((port) => `[${HOST}]:${port} ${type} ${blob}\n`);
  fs.appendFileSync(ctx.knownHosts, lines.join(''));
}

function verdict(name, target, subject, subjectStats, reference, referenceStats, extra = '') {
  const ratio = subjectStats.median / referenceStats.median;
  const ok = ratio <= target;
  const line = `${ok ? 'PASS' : 'FAIL'} ${name}: ${subject} ${fmtMs(subjectStats.median)} ms = ${fmtX(ratio)} ${reference} ${fmtMs(referenceStats.median)} ms (target ≤ ${target}x; medians of ${subjectStats.n})${extra}`;
  verdicts.push(line);
}

/** The peers and tagflip on one host, in the same rounds; `link` says where the clients connect. */
async function oneHost(ctx, part, link) {
  const site = (name) => path.join(ctx.sites, `${part}-${name}`);
  const one = (name) => ({ ns: link.ns, port: link.port, site: site(name) });
  const variants = [
    { key: 'floor', label: 'minimal script, one ssh (floor)', deploy: (tag) => floorDeploy(ctx, one('floor'), tag) },
    { key: 'hand', label: 'hand-written full script, one ssh', deploy: (tag) => baselineDeploy(ctx, one('hand'), tag) },
  ];
  if (ctx.minaMissing) {
    if (!ctx.minaSaid) say(`skipped: Mina: ${ctx.minaMissing}`);
    ctx.minaSaid = true;
  } else {
    variants.push({ key: 'mina', label: 'Mina 0.3 (mina deploy)', deploy: (tag) => minaDeploy(ctx, one('mina'), tag) });
  }
  variants.push({ key: 'tagflip', label: 'tagflip (CLI, whole process)', deploy: (tag) => tagflipDeploy(ctx, { ns: link.ns, ports: [link.port], site: site('tagflip') }, tag) });
  const stats = Object.fromEntries((await compare(ctx, variants)).map((s, i) => [variants[i].key, s]));
  for (const v of variants) addRow(part, v.label, stats[v.key], v.key === 'floor' ? undefined : stats.floor);
  ctx.peers[part] = { label: link.label, stats };
  const name = part === 'loopback' ? 'one host, loopback' : `one host, ${link.label}`;
  verdict(name, TARGETS[part === 'loopback' ? 'loopback' : 'wan'], 'tagflip', stats.tagflip, 'the floor', stats.floor);
  if (stats.mina) {
    const ok = stats.tagflip.median < stats.mina.median;
    verdicts.push(`${ok ? 'PASS' : 'FAIL'} ${name}, faster than Mina: tagflip ${fmtMs(stats.tagflip.median)} ms vs Mina ${fmtMs(stats.mina.median)} ms`);
  }
  if (stats.tagflip.cpu && stats.floor.cpu) {
    const ratio = stats.tagflip.cpu.total / stats.floor.cpu.total;
    verdicts.push(
      `${ratio <= TARGETS.cpu ? 'PASS' : 'FAIL'} ${name}, CPU per deploy: tagflip ${fmtMs(stats.tagflip.cpu.total)} ms (client ${fmtMs(stats.tagflip.cpu.client)} + host ${fmtMs(stats.tagflip.cpu.host)}) = ${fmtX(ratio)} the floor's ${fmtMs(stats.floor.cpu.total)} ms (target ≤ ${TARGETS.cpu}x)`,
    );
  }
}

async function partLoopback(ctx) {
  const port = await freePort();
  writeKnownHosts(ctx, [port]);
  await startSshd(ctx, 'loopback', { port });
  await oneHost(ctx, 'loopback', { ns: null, port });
}

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

async function partWan(ctx) {
  await oneHost(ctx, 'wan', await wanLink(ctx));
}

/** The 50 ms link and an sshd behind it, made once per run (the upload part uses it too). */
async function wanLink(ctx) {
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

async function partFleet(ctx) {
  const { target, ports, sources } = await fleetHosts(ctx);
  const one = { ns: null, ports: ports.slice(0, 1), site: path.join(target, 'one'), sources: [path.join(sources[0], 'one')] };
  const eight = { ns: null, ports, site: path.join(target, 'eight'), sources: sources.map((s) => path.join(s, 'eight')) };
  const [single, fleet] = await compare(ctx, [{ deploy: (tag) => tagflipDeploy(ctx, one, tag) }, { deploy: (tag) => tagflipDeploy(ctx, eight, tag) }]);
  addRow('fleet', 'tagflip, 1 host', single);
  addRow('fleet', `tagflip, ${FLEET_SIZE} hosts`, fleet, single);
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  verdict(`${FLEET_SIZE} hosts vs 1`, TARGETS.fleet, `${FLEET_SIZE} hosts`, fleet, '1 host', single, `; all ${FLEET_SIZE} sshd share this machine's ${cpus} CPU(s)`);
}

/** FLEET_SIZE sshd on 127.0.0.1, each in its own mount namespace (its own files at `target`), started once per run. */
async function fleetHosts(ctx) {
  if (ctx.fleetHosts) return ctx.fleetHosts;
  const target = path.join(ctx.tmp, 'fleet-host'); // the deploy-path parent every host sees
  fs.mkdirSync(target, { mode: 0o755 });
  fs.chownSync(target, ctx.ids.uid, ctx.ids.gid);
  const ports = [];
  const sources = [];
  for (let i = 1; i <= FLEET_SIZE; i++) {
    const source = path.join(ctx.tmp, 'fleet-src', `h${i}`);
    fs.mkdirSync(source, { recursive: true, mode: 0o755 });
    fs.chownSync(source, ctx.ids.uid, ctx.ids.gid);
    sources.push(source);
    ports.push(await freePort());
  }
  writeKnownHosts(ctx, ports);
  try {
    // Probe once that mount namespaces work here before starting eight of them.
    await runOk('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2"', 'sh', sources[0], target]);
  } catch (error) {
    throw new Skip(`8 hosts vs 1: mount namespaces (unshare -m + mount --bind) do not work here: ${error.message.split('\n')[0]}`);
  }
  for (let i = 0; i < FLEET_SIZE; i++) await startSshd(ctx, `fleet-h${i + 1}`, { port: ports[i], bind: { source: sources[i], target } });
  ctx.fleetHosts = { target, ports, sources };
  return ctx.fleetHosts;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

function preflight() {
  if (process.platform !== 'linux') throw new BenchError('the benchmark needs Linux (namespaces, /proc)');
  if (process.getuid?.() !== 0) throw new BenchError(`the benchmark needs root: sshd logs in '${USER}', and the parts use network and mount namespaces`);
  for (const bundle of [BUNDLE, ACTION_BUNDLE]) if (!fs.existsSync(bundle)) throw new BenchError(`${path.relative(ROOT, bundle)} is missing: run npm run build first`);
  for (const tool of [SSHD]) if (!fs.existsSync(tool)) throw new BenchError(`${tool} not found: install openssh-server`);
  for (const tool of ['ssh', 'ssh-keygen', 'git', 'flock', 'tar']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { timeout: 5000 }).status !== 0) throw new BenchError(`'${tool}' is not installed`);
  }
}

/** Note when the bundle is older than the sources: the numbers are for the bundle. */
function staleNote() {
  const built = fs.statSync(BUNDLE).mtimeMs;
  const newer = fs.readdirSync(path.join(ROOT, 'src')).filter((f) => f.endsWith('.ts') && fs.statSync(path.join(ROOT, 'src', f)).mtimeMs > built);
  return newer.length > 0 ? `note: dist/cli/index.js is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ', …' : ''}; run npm run build to measure the current sources` : '';
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  preflight();

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tagflip-bench-'));
  undo.push(() => (options.keep ? process.stderr.write(`kept ${tmp}\n`) : fs.rmSync(tmp, { recursive: true, force: true })));
  fs.chmodSync(tmp, 0o755); // sshd reads AuthorizedKeysFile as the login user
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const ids = await ensureUser();
  const ctx = {
    runs: options.runs,
    proxy: options.proxy,
    tmp,
    ids,
    haveTime: fs.existsSync(TIME),
    hostKey: path.join(tmp, 'host_ed25519'),
    clientKey: path.join(tmp, 'client_ed25519'),
    authorizedKeys: path.join(tmp, 'authorized_keys'),
    knownHosts: path.join(tmp, 'known_hosts'),
    repo: path.join(tmp, 'repo'),
    sites: path.join(tmp, 'sites'),
    // No GitHub context leaks into the CLI (it would change names in manifests, not cost).
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(GITHUB_|INPUT_|RUNNER_|TAGFLIP_)/.test(k))),
    startup: null,
    netns: null,
    peers: {},
    cgroup: null,
    minaMissing: null,
  };
  const cgroups = makeCgroups();
  if (cgroups.unavailable) say(`  CPU per deploy not measured: ${cgroups.unavailable}`);
  else ctx.cgroup = cgroups;
  if (options.only.has('loopback') || options.only.has('wan')) ctx.minaMissing = minaMissing();
  await Promise.all([keygen(ctx.hostKey), keygen(ctx.clientKey)]);
  fs.copyFileSync(`${ctx.clientKey}.pub`, ctx.authorizedKeys);
  fs.chmodSync(ctx.authorizedKeys, 0o644);
  fs.writeFileSync(ctx.knownHosts, '', { mode: 0o644 });
  await makeRepo(ctx.repo, ctx.runs + 1);
  chownR(ctx.repo, ids);
  fs.mkdirSync(ctx.sites, { mode: 0o755 });
  fs.chownSync(ctx.sites, ids.uid, ids.gid);

  const head = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 }).stdout?.trim() || '?';
  const sshVersion = (spawnSync('ssh', ['-V'], { encoding: 'utf8', timeout: 5000 }).stderr || '').trim();
  say(`tagflip bench: ${options.runs} runs per variant after 1 warm-up, fresh release each run; build '${BUILD}'`);
  say(`  ${os.type()} ${os.release()}, ${os.availableParallelism?.() ?? os.cpus().length} CPU(s), node ${process.version}, ${sshVersion}, tagflip ${head}`);
  say(`  times are wall clock of the whole client process; peak RSS ${ctx.haveTime ? 'from /usr/bin/time (ssh client / node process)' : 'not measured (no /usr/bin/time)'}`);
  if (ctx.cgroup) say(`  CPU per deploy: client process tree + the sshd sessions it causes, from ${ctx.cgroup.label}`);
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  say(`  load average at start: ${load}${os.loadavg()[0] > 0.5 ? ' — other work on this machine adds noise; compare medians from a quiet machine' : ''}`);
  const stale = staleNote();
  if (stale) say(`  ${stale}`);

  const parts = {
    startup: partStartup,
    loopback: partLoopback,
    wan: partWan,
    fleet: partFleet,
    upload: partUpload,
    history: (c) => partHistory(c, { freePort, writeKnownHosts, startSshd, compare, tagflipDeploy, addRow, verdict }),
  };
  const skipped = [];
  for (const part of PARTS) {
    if (!options.only.has(part)) continue;
    process.stderr.write(`${part} `);
    try {
      await parts[part](ctx);
    } catch (error) {
      if (!(error instanceof Skip)) throw error;
      process.stderr.write('\n');
      say(`skipped: ${error.message}`);
      skipped.push(part);
    }
  }

  printTable();
  if (ctx.startup && rows.some((r) => r.part === 'loopback' || r.part === 'wan')) {
    say(`\nNode start-up is in every tagflip row: node -e ${fmtMs(ctx.startup.node)} ms, the CLI's first line ${fmtMs(ctx.startup.cli)} ms (medians).`);
  }
  printPeersTable(ctx);
  say('');
  for (const line of verdicts) say(line);
  if (!options.only.has('wan') || skipped.includes('wan')) say(`(no verdict for one host across ${ONE_WAY_MS * 2} ms RTT: not measured)`);
}

// For the parts in modules of their own (they import these; main runs after every import is evaluated).
export { BenchError, CLI, DEPLOY_TIMEOUT_MS, FLEET_SIZE, HOST, Skip, TIME, USER, addRow, compare, descendants, fleetHosts, fmtMs, fmtX, freePort, inNs, median, run, runOk, say, sleep, sshArgs, startSshd, tail, undo, verdicts, wanLink, writeKnownHosts };

let exitCode = 0;
try {
  await main();
} catch (error) {
  exitCode = 1;
  process.stderr.write(`\nbench could not run: ${error instanceof BenchError ? error.message : error.stack}\n`);
} finally {
  cleanup();
}
process.exit(exitCode);
