#!/usr/bin/env node
// npm run bench [-- --runs N] [-- --only startup,loopback,wan,rollback,stages,fleet,memory64,slowreader,history,upload,drift,migratecheck,faults]
//
// Measures the performance targets (SPEC.md "Design notes", issue 12) side by side with
// the peers, in one run, against the same sshd and repository:
//   - the floor: one OpenSSH session running a minimal deploy script (fetch, archive,
//     build, flip);
//   - a fuller hand-written script doing tagflip's steps (lock, manifests, history, prune);
//   - Mina 0.3 (Debian's `mina`: one `ssh` running the script it generates), where installed;
//   - tagflip.
// and the `upload` speed of issues 11 and 21 against tar | ssh and rsync (upload.mjs).
// Targets (issue 20): one host at most 1.2x the floor on loopback and 1.15x across 50 ms
// RTT, faster than Mina on both; CPU per deploy (client + everything on the host) at most
// 1.7x the floor's; the first log line within `node -e 0` + 80 ms; 8 hosts at most 2x one host;
// a rollback across 50 ms at most 1.3x `ssh host 'ln -sfn … && mv -T …'` (rollback.mjs);
// the deploy of a prepared release at most 1.5x a rollback, side by side (stages.mjs);
// 64 hosts with at most 200 MiB peak RSS and 25 ms runner CPU per added host (memory.mjs);
// 200 MB of build output through a slow reader of the log with at most 250 MiB peak RSS
// (memory.mjs, slowreader).
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
// ssh-keygen), git, flock, unshare, rsync for the upload part, and a built CLI
// (npm run build → dist/cli).
// Plain ESM, node built-ins only.
//
// One module per concern: processes.mjs (children, cleanup), hosts.mjs (user, keys,
// sshd, the 50 ms link, the fleet), peers.mjs (the deploys measured), measure.mjs
// (timing, CPU, rounds, medians), report.mjs (tables, verdicts), parts.mjs (start-up,
// loopback, wan, fleet), history.mjs, rollback.mjs, memory.mjs and upload.mjs (their
// parts); this one reads the options, prepares what every part shares and runs the parts.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { partDrift, partMigrateCheck } from './drift.mjs';
import { partFaults } from './faults.mjs';
import { partHistory } from './history.mjs';
import { ONE_WAY_MS, SSHD, USER, chownR, ensureUser, freePort, keygen, makeRepo, startSshd, writeKnownHosts } from './hosts.mjs';
import { TIME, compare, makeCgroups } from './measure.mjs';
import { partMemory, partSlowReader } from './memory.mjs';
import { partFleet, partLoopback, partStartup, partWan } from './parts.mjs';
import { ACTION_BUNDLE, BUILD, BUNDLE, ROOT, minaMissing, tagflipDeploy } from './peers.mjs';
import { BenchError, Skip, cleanup, undo } from './processes.mjs';
import { partRollback } from './rollback.mjs';
import { partStages } from './stages.mjs';
import { addRow, fmtMs, printPeersTable, printTable, rows, say, verdict, verdicts } from './report.mjs';
import { partUpload } from './upload.mjs';

const PARTS = ['startup', 'loopback', 'wan', 'rollback', 'stages', 'fleet', 'memory64', 'slowreader', 'history', 'upload', 'drift', 'migratecheck', 'faults'];
/** Parts a run without --only leaves out: the fault matrix checks outcomes, not speed, and takes long (faults.mjs). */
const ON_REQUEST = new Set(['faults']);

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

const USAGE = `usage: node scripts/bench/main.mjs [--runs N] [--only ${PARTS.join(',')}] [--no-proxy] [--keep]
  --runs N    measured runs per variant after one warm-up (default 7)
  --only LIST measure only these parts (comma separated); faults (the whole fault matrix) runs only when named
  --no-proxy  without netem, skip the 50 ms RTT part instead of emulating the link
  --keep      leave the temp dir in place (sshd and namespaces are still stopped)`;

function parseArgs(argv) {
  const options = { runs: 7, only: new Set(PARTS.filter((part) => !ON_REQUEST.has(part))), keep: false, proxy: true };
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
  // Recursive: src/ may group its files in folders.
  const newer = fs.readdirSync(path.join(ROOT, 'src'), { recursive: true }).filter((f) => f.endsWith('.ts') && fs.statSync(path.join(ROOT, 'src', f)).mtimeMs > built);
  return newer.length > 0 ? `note: dist/cli/index.js is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ', …' : ''}; run npm run build to measure the current sources` : '';
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  // The fault matrix brings its own hosts (the test suite's): it needs none of what follows.
  if (options.only.has('faults')) {
    partFaults();
    options.only.delete('faults');
    if (options.only.size === 0) return;
  }
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
    rollback: partRollback,
    stages: partStages,
    fleet: partFleet,
    memory64: partMemory,
    slowreader: partSlowReader,
    upload: partUpload,
    drift: partDrift,
    migratecheck: partMigrateCheck,
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
