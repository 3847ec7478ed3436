// The `upload` part of npm run bench (issues 11 and 21, "Speed"): tagflip's upload against
// `tar -C dir -cf - . | ssh host 'tar -C target -xf -'` with OpenSSH, both against the
// same sshd, on loopback and on the 50 ms link of the wan part; and its re-deploy with
// 1% changed against `rsync -a --copy-dest=<the host's current copy>` doing the same job.
//
//   - full upload of a ~200 MB tree to one host: throughput at least 0.8x tar|ssh on
//     loopback, 0.9x across 50 ms;
//   - re-deploy with 1% of the files changed (50 ms link): at most 0.8x the time of
//     rsync -a --copy-dest over OpenSSH into a new directory, from the same tree with
//     the same changes, in the same rounds (and its share of the full upload, reported);
//   - peak RSS of the tagflip process during the full upload: at most 150 MiB;
//   - 8 hosts vs 1 (the tree is read and hashed once): wall time, reported;
//   - CPU per upload, runner side (the client process and its children, from
//     /usr/bin/time) and host side (what the sshd listener reaped: the session's
//     sshd, shell, tar, cp, rsync; from /proc/<pid>/stat cutime+cstime).
//
// Every full upload goes to a fresh directory, removed only once the part is over
// (leftovers(), below).

import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FLEET_SIZE, HOST, USER, fleetHosts, freePort, inNs, startSshd, wanLink, writeKnownHosts } from './hosts.mjs';
import { DEPLOY_TIMEOUT_MS, TIME, compare, median } from './measure.mjs';
import { CLI, sshArgs } from './peers.mjs';
import { freshDisk } from './disk.mjs';
import { BenchError, descendants, run, sleep, tail, undo } from './processes.mjs';
import { addRow, fmtMs, fmtX, say, verdicts } from './report.mjs';

const SEED = 11;
const SMALL_FILES = 5000;
const SMALL_DIRS = 50;
const BIG_FILES_MB = [25, 35, 40, 50];
const CHANGED = SMALL_FILES / 100; // 1% of the files
const MAX_RUNS = 3; // each run moves 200 MB (1.6 GB for 8 hosts): fewer runs than the other parts
// A loopback round takes 2-3 s: five of them make its median steadier on a machine others share.
const LOOPBACK_RUNS = 5;
const TARGETS = { loopback: 0.8, wan: 0.9, vsRsync: 0.8, rssMiB: 150 };
const TICK_MS = 10; // USER_HZ = 100 on Linux

/**
 * Every run starts with the disk settled: the page cache holds 200 MB or more
 * of dirty data after each upload, and its writeback, left to run into the
 * next run, made the same re-deploy take from 1.5 to 6 s here. Outside the timing.
 */
const settle = () => spawnSync('sync', [], { timeout: 120_000 });

/**
 * What the fleet's runs wrote (the other runs write to the part's own file
 * system, freshDisk, dropped whole), removed when the part is over rather
 * than after each run. Deleting 5,000 files slows down whoever creates files next: ext4 without a
 * journal (this VM's root) passes over inodes freed in the last 60 to 300 s
 * (recently_deleted() in ext4_create, seen with perf), so a 200 MB tree created
 * right after one was deleted cost 2 to 4 s of kernel CPU instead of 0.3 s, for
 * tar | ssh and tagflip alike, and the run after a removal was measured on
 * another machine than the run before it.
 */
const leftovers = [];
const removeLater = (...paths) => leftovers.push(...paths);
function removeLeftovers() {
  for (const leftover of leftovers.splice(0)) fs.rmSync(leftover, { recursive: true, force: true });
}

const shq = (value) => `'${String(value).replace(/'/g, `'\\''`)}'`;

// ---------------------------------------------------------------------------
// The tree: fixed seed, non-compressible (AES-CTR keystream), fast to write
// ---------------------------------------------------------------------------

/** mulberry32: a tiny deterministic PRNG for the sizes. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function keystream(...ids) {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(SEED, 0);
  const iv = Buffer.alloc(16);
  ids.forEach((id, i) => iv.writeUInt32BE(id >>> 0, i * 4));
  return createCipheriv('aes-128-ctr', key, iv);
}

function writeRandom(file, size, ...ids) {
  const cipher = keystream(...ids);
  const fd = fs.openSync(file, 'w', 0o644);
  try {
    const zeros = Buffer.alloc(Math.min(size, 1 << 20));
    for (let left = size; left > 0; left -= zeros.length) fs.writeSync(fd, cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left)));
  } finally {
    fs.closeSync(fd);
  }
}

const smallFile = (root, i) => path.join(root, `d${String(Math.floor(i / (SMALL_FILES / SMALL_DIRS))).padStart(2, '0')}`, `f${String(i % (SMALL_FILES / SMALL_DIRS)).padStart(3, '0')}.bin`);

function makeTree(root) {
  const random = prng(SEED);
  for (let d = 0; d < SMALL_DIRS; d++) fs.mkdirSync(path.join(root, `d${String(d).padStart(2, '0')}`), { recursive: true });
  const sizes = [];
  for (let i = 0; i < SMALL_FILES; i++) {
    const size = 1024 + Math.floor(random() * 19 * 1024); // 1–20 KiB
    writeRandom(smallFile(root, i), size, i, 0);
    sizes.push(size);
  }
  fs.mkdirSync(path.join(root, 'big'));
  BIG_FILES_MB.forEach((mb, i) => writeRandom(path.join(root, 'big', `blob${i}.bin`), mb << 20, SMALL_FILES + i, 0));
  const bytes = sizes.reduce((a, b) => a + b, 0) + BIG_FILES_MB.reduce((a, b) => a + (b << 20), 0);
  return { files: SMALL_FILES + BIG_FILES_MB.length, bytes };
}

/** Rewrite 1% of the small files (new bytes, same sizes); `round` picks which and what. Gives their paths. */
function changeOnePercent(root, round) {
  const changed = [];
  for (let k = 0; k < CHANGED; k++) {
    const i = (round * 7919 + k * (SMALL_FILES / CHANGED)) % SMALL_FILES;
    const file = smallFile(root, i);
    writeRandom(file, fs.statSync(file).size, i, round);
    changed.push(path.relative(root, file));
  }
  return changed;
}

// ---------------------------------------------------------------------------
// Measuring: wall time, runner CPU and peak RSS (/usr/bin/time), host CPU (/proc)
// ---------------------------------------------------------------------------

const CPUACCT = '/sys/fs/cgroup/cpuacct';

/**
 * A CPU meter for one sshd listener and everything it starts (the session's
 * sshd, shell, head, tar, cp): a cgroup v1 cpuacct group of its own, or, where
 * there is none, the CPU the listener has reaped (cutime + cstime; this misses
 * what is not reaped through it, and the table says which was used).
 */
function sshdMeter(ctx, name) {
  const pid = Number(fs.readFileSync(path.join(ctx.tmp, `sshd-${name}.pid`), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new BenchError(`no pid in sshd-${name}.pid`);
  const group = path.join(CPUACCT, `tagflip-bench-${process.pid}-${name}`);
  try {
    fs.mkdirSync(group);
    undo.push(() => {
      // Out of the group first (the sshd is stopped later), then the group can go.
      for (const member of fs.readFileSync(path.join(group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          fs.writeFileSync(path.join(CPUACCT, 'cgroup.procs'), member);
        } catch {
          // exited meanwhile
        }
      }
      fs.rmdirSync(group);
    });
    fs.writeFileSync(path.join(group, 'cgroup.procs'), String(pid));
    return { pid, how: 'cgroup cpuacct', cpuMs: () => Number(fs.readFileSync(path.join(group, 'cpuacct.usage'), 'utf8')) / 1e6 };
  } catch {
    const reaped = () => {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[13]) + Number(fields[14])) * TICK_MS; // cutime, cstime
    };
    return { pid, how: 'reaped by the sshd listener', cpuMs: reaped };
  }
}

/** Host CPU of what runs while `fn` does, counted once every session has ended. */
async function hostCpu(meters, fn) {
  const before = meters.map((meter) => meter.cpuMs());
  const result = await fn();
  const deadline = Date.now() + 5000;
  while (meters.some((meter) => descendants(meter.pid).length > 0) && Date.now() < deadline) await sleep(20);
  result.hostCpuMs = meters.reduce((sum, meter, i) => sum + meter.cpuMs() - before[i], 0);
  return result;
}

/** Run a client under /usr/bin/time: wall ms, peak RSS (KiB) and user+sys CPU (ms) of it and its children. */
async function timed(ctx, label, command, args) {
  const file = path.join(ctx.tmp, `time-${process.hrtime.bigint()}`);
  const result = await run(TIME, ['-f', '%M %U %S', '-o', file, command, ...args], { timeoutMs: DEPLOY_TIMEOUT_MS, env: ctx.env });
  const line = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').pop() : '';
  fs.rmSync(file, { force: true });
  if (result.code !== 0) throw new BenchError(`${label} exited ${result.code ?? result.signal}\n${tail(result.stdout + result.stderr)}`);
  const [rssKb, user, sys] = line.split(' ').map(Number);
  return { ms: result.ms, rssKb, cpuMs: (user + sys) * 1000, output: result.stdout + result.stderr };
}

/** Medians of a variant's measured runs (the warm-up, tag b1, is left out). */
function recorder() {
  const samples = [];
  return {
    keep: (tag, sample) => (tag !== 'b1' && samples.push(sample), sample),
    get: (key) => median(samples.map((s) => s[key])),
    max: (key) => Math.max(...samples.map((s) => s[key])),
    all: (key) => samples.map((s) => s[key]),
  };
}

/** Each round's ratio of two variants measured in the same rounds (`of` over `to`), as the verdicts list them. */
const perRound = (of, to, key = 'ms') => of.all(key).map((value, i) => fmtX(value / to.all(key)[i])).join(' ');

/** A variant's rounds as `wall/runner CPU/host CPU` in ms. */
const rounds = (r) => r.all('ms').map((ms, i) => `${fmtMs(ms)}/${fmtMs(r.all('cpuMs')[i])}/${fmtMs(r.all('hostCpuMs')[i])}`).join(' ');

// ---------------------------------------------------------------------------
// The variants
// ---------------------------------------------------------------------------

function tagflipArgs(ctx, ports, site, tag, tree) {
  return [
    CLI, 'deploy',
    '--hosts', ports.map((port) => `${USER}@${HOST}:${port}`).join(','),
    '--private-key', `@${ctx.clientKey}`,
    '--known-hosts', `@${ctx.knownHosts}`,
    '--deploy-path', site,
    '--release', tag,
    '--upload', tree,
  ];
}

async function tagflipUpload(ctx, { ns, ports, meters }, site, tag, tree) {
  const cli = inNs(ns, process.execPath, tagflipArgs(ctx, ports, site, tag, tree));
  const sample = await hostCpu(meters, () => timed(ctx, `tagflip upload of ${tag}`, cli.command, cli.args));
  if (!/status: deployed/.test(sample.output)) throw new BenchError(`tagflip upload of ${tag}: no "status: deployed" in its output\n${tail(sample.output)}`);
  const sent = [...sample.output.matchAll(/([\d.]+) MB sent in/g)].map((m) => Number(m[1]));
  sample.sentMB = sent.length ? sent.reduce((a, b) => a + b, 0) / sent.length : NaN;
  return sample;
}

/** tar -C tree -cf - . | ssh host 'mkdir target && tar -C target -xf -' */
async function tarOverSsh(ctx, { ns, port, meters }, target, tree) {
  const remote = `mkdir -- ${shq(target)} && tar -C ${shq(target)} -xf -`;
  const shell = inNs(ns, 'sh', ['-c', 'tree=$1; shift; tar -C "$tree" -cf - . | ssh "$@"', 'sh', tree, ...sshArgs(ctx, port, remote)]);
  return hostCpu(meters, () => timed(ctx, 'tar | ssh', shell.command, shell.args));
}

/**
 * rsync -a --copy-dest=<from> tree/ host:<target> over OpenSSH: the files whose size
 * and time match those in `from` (on the host) are copied there, the others sent.
 */
async function rsyncOverSsh(ctx, { ns, port, meters }, target, from, tree) {
  const ssh = ['ssh', ...sshArgs(ctx, port, '').slice(0, -2)].map(shq).join(' ');
  const args = ['-a', ...(from ? [`--copy-dest=${from}`] : []), '-e', ssh, `${tree}/`, `${USER}@${HOST}:${target}`];
  const client = inNs(ns, 'rsync', args);
  return hostCpu(meters, () => timed(ctx, 'rsync', client.command, client.args));
}

/** Whether the files `paths` (relative) are the same bytes under both roots. */
function sameFiles(a, b, paths) {
  return paths.every((p) => fs.readFileSync(path.join(a, p)).equals(fs.readFileSync(path.join(b, p))));
}

/** Full uploads to one host, tagflip vs tar|ssh, fresh targets every run. */
async function fullUpload(ctx, disk, label, link, tree, mb, target, runs = MAX_RUNS) {
  const runsCtx = { ...ctx, runs: Math.min(ctx.runs, runs) };
  const sites = path.join(disk, `upload-${label.replace(/\W+/g, '-')}`);
  fs.mkdirSync(sites, { mode: 0o755 });
  fs.chownSync(sites, ctx.ids.uid, ctx.ids.gid);
  const tar = recorder();
  const flip = recorder();
  const [tarStats, flipStats] = await compare(runsCtx, [
    {
      deploy: async (tag) => {
        const target = path.join(sites, `tar-${tag}`);
        const sample = tar.keep(tag, await tarOverSsh(ctx, link, target, tree));
        settle();
        return sample;
      },
    },
    {
      deploy: async (tag) => {
        const site = path.join(sites, `tagflip-${tag}`);
        const sample = flip.keep(tag, await tagflipUpload(ctx, link, site, tag, tree));
        settle();
        return sample;
      },
    },
  ]);
  addRow('upload', `${label}: tar | ssh (OpenSSH)`, tarStats);
  addRow('upload', `${label}: tagflip --upload, full`, flipStats, tarStats);
  const throughput = tarStats.median / flipStats.median;
  verdicts.push(
    `${throughput >= target ? 'PASS' : 'FAIL'} upload, full, ${label}: tagflip ${(mb / (flipStats.median / 1000)).toFixed(1)} MB/s = ${fmtX(throughput)} the throughput of tar | ssh ${(mb / (tarStats.median / 1000)).toFixed(1)} MB/s (target ≥ ${target}x; medians of ${flipStats.n}; each round: ${perRound(tar, flip)})`,
  );
  verdicts.push(`INFO upload, full, ${label}, each round (wall/runner CPU/host CPU, ms): tar | ssh ${rounds(tar)}; tagflip ${rounds(flip)}`);
  return { tar, flip, tarStats, flipStats };
}

// ---------------------------------------------------------------------------
// The part
// ---------------------------------------------------------------------------

export async function partUpload(ctx) {
  if (spawnSync('sh', ['-c', 'command -v rsync'], { timeout: 5000 }).status !== 0) {
    throw new BenchError("'rsync' is not installed: the upload part times the 1%-changed re-deploy against rsync -a --copy-dest, which the runner and the host (here the same machine) both need; install it (apt-get install -y rsync)");
  }
  const tree = path.join(ctx.tmp, 'upload-tree');
  const started = performance.now();
  const { files, bytes } = makeTree(tree);
  settle();
  const mb = bytes / 1e6;
  say(`upload: tree of ${files} files, ${mb.toFixed(1)} MB (${SMALL_FILES} of 1–20 KiB, ${BIG_FILES_MB.join('/')} MiB), seed ${SEED}, written in ${fmtMs(performance.now() - started)} ms; ${Math.min(ctx.runs, LOOPBACK_RUNS)} runs per variant on loopback, ${Math.min(ctx.runs, MAX_RUNS)} on the others, after 1 warm-up`);

  const detail = [];
  const cpuRow = (variant, r, wallMs) =>
    detail.push([variant, fmtMs(wallMs), (mb / (wallMs / 1000)).toFixed(1), fmtMs(r.get('cpuMs')), fmtMs(r.get('hostCpuMs')), (r.max('rssKb') / 1024).toFixed(1)]);

  const disk = freshDisk(ctx, 'upload', '12G');
  // Loopback: an sshd of its own.
  const port = await freePort();
  writeKnownHosts(ctx, [port]);
  await startSshd(ctx, 'upload', { port });
  const loop = { ns: null, port, ports: [port], meters: [sshdMeter(ctx, 'upload')] };
  const loopback = await fullUpload(ctx, disk.root, 'loopback', loop, tree, mb, TARGETS.loopback, LOOPBACK_RUNS);
  cpuRow('loopback: tar | ssh', loopback.tar, loopback.tarStats.median);
  cpuRow('loopback: tagflip full', loopback.flip, loopback.flipStats.median);
  process.stderr.write('upload ');

  // The 50 ms link: full, then re-deploys with 1% changed.
  const net = await wanLink(ctx);
  const wan = { ns: net.ns, port: net.port, ports: [net.port], meters: [sshdMeter(ctx, 'wan')] };
  const full = await fullUpload(ctx, disk.root, '50 ms RTT', wan, tree, mb, TARGETS.wan);
  cpuRow('50 ms: tar | ssh', full.tar, full.tarStats.median);
  cpuRow('50 ms: tagflip full', full.flip, full.flipStats.median);
  process.stderr.write('upload ');

  // Re-deploys with 1% changed, tagflip and rsync in the same rounds: the first of
  // them in a round changes the tree; each goes from its own copy of the last round.
  const deltaSite = path.join(disk.root, 'upload-delta');
  const rsyncSite = path.join(disk.root, 'upload-rsync');
  fs.mkdirSync(rsyncSite, { mode: 0o755 });
  fs.chownSync(rsyncSite, ctx.ids.uid, ctx.ids.gid);
  await tagflipUpload(ctx, wan, deltaSite, 'd0', tree);
  await rsyncOverSsh(ctx, wan, path.join(rsyncSite, 'r0'), '', tree);
  settle();
  let changedFor = 'b0';
  let changed = [];
  const changeFor = (tag) => {
    if (changedFor === tag) return;
    changed = changeOnePercent(tree, Number(tag.slice(1)));
    changedFor = tag;
  };
  let rsyncFrom = path.join(rsyncSite, 'r0');
  const delta = recorder();
  const rsync = recorder();
  const [deltaStats, rsyncStats] = await compare({ ...ctx, runs: Math.min(ctx.runs, MAX_RUNS) }, [
    {
      deploy: async (tag) => {
        changeFor(tag);
        settle();
        return delta.keep(tag, await tagflipUpload(ctx, wan, deltaSite, `d${tag.slice(1)}`, tree));
      },
    },
    {
      deploy: async (tag) => {
        changeFor(tag);
        settle();
        const target = path.join(rsyncSite, `r${tag.slice(1)}`);
        const sample = rsync.keep(tag, await rsyncOverSsh(ctx, wan, target, rsyncFrom, tree));
        if (!sameFiles(tree, target, changed)) throw new BenchError(`rsync into ${target}: the changed files are not the runner's`);
        rsyncFrom = target;
        return sample;
      },
    },
  ]);
  addRow('upload', `50 ms RTT: rsync -a --copy-dest (OpenSSH), ${CHANGED} files (1%) changed`, rsyncStats);
  addRow('upload', `50 ms RTT: tagflip, ${CHANGED} files (1%) changed`, deltaStats, rsyncStats);
  cpuRow('50 ms: rsync --copy-dest 1% changed', rsync, rsyncStats.median);
  cpuRow('50 ms: tagflip 1% changed', delta, deltaStats.median);
  const vsRsync = deltaStats.median / rsyncStats.median;
  verdicts.push(
    `${vsRsync <= TARGETS.vsRsync ? 'PASS' : 'FAIL'} upload, 1% changed, 50 ms RTT: tagflip ${fmtMs(deltaStats.median)} ms = ${fmtX(vsRsync)} the time of rsync -a --copy-dest ${fmtMs(rsyncStats.median)} ms (target ≤ ${TARGETS.vsRsync}x; ${delta.get('sentMB').toFixed(1)} MB sent; medians of ${deltaStats.n}; each round: ${perRound(delta, rsync)})`,
  );
  verdicts.push(`INFO upload, 1% changed, 50 ms RTT, each round (wall/runner CPU/host CPU, ms): rsync ${rounds(rsync)}; tagflip ${rounds(delta)}`);
  verdicts.push(`INFO upload, 1% changed, 50 ms RTT: tagflip ${fmtMs(deltaStats.median)} ms = ${((deltaStats.median / full.flipStats.median) * 100).toFixed(1)}% of its full upload ${fmtMs(full.flipStats.median)} ms`);
  disk.drop();

  const rssMiB = Math.max(loopback.flip.max('rssKb'), full.flip.max('rssKb'), delta.max('rssKb')) / 1024;
  verdicts.push(`${rssMiB <= TARGETS.rssMiB ? 'PASS' : 'FAIL'} upload, runner memory: peak RSS of the tagflip process ${rssMiB.toFixed(1)} MiB over every upload (target ≤ ${TARGETS.rssMiB} MiB)`);

  // 8 hosts vs 1, loopback, each host its own mount namespace.
  const fleet = await fleetHosts(ctx);
  const meters = fleet.ports.map((_, i) => sshdMeter(ctx, `fleet-h${i + 1}`));
  const one = recorder();
  const eight = recorder();
  const fleetRun = (r, count) => async (tag) => {
    const site = path.join(fleet.target, `upload-${count}-${tag}`);
    const sample = r.keep(tag, await tagflipUpload(ctx, { ns: null, ports: fleet.ports.slice(0, count), meters: meters.slice(0, count) }, site, tag, tree));
    removeLater(...fleet.sources.slice(0, count).map((source) => path.join(source, `upload-${count}-${tag}`)));
    settle();
    return sample;
  };
  const [oneStats, eightStats] = await compare({ ...ctx, runs: Math.min(ctx.runs, 2) }, [{ deploy: fleetRun(one, 1) }, { deploy: fleetRun(eight, FLEET_SIZE) }]);
  addRow('upload', 'fleet: tagflip full, 1 host', oneStats);
  addRow('upload', `fleet: tagflip full, ${FLEET_SIZE} hosts`, eightStats, oneStats);
  cpuRow('fleet: tagflip full, 1 host', one, oneStats.median);
  cpuRow(`fleet: tagflip full, ${FLEET_SIZE} hosts`, eight, eightStats.median);
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  verdicts.push(
    `INFO upload, ${FLEET_SIZE} hosts vs 1: ${fmtMs(eightStats.median)} ms = ${fmtX(eightStats.median / oneStats.median)} one host's ${fmtMs(oneStats.median)} ms (tree read and hashed once; ${FLEET_SIZE} sshd, ${FLEET_SIZE}x the host-side tar and disk writes, all on this machine's ${cpus} CPU(s))`,
  );

  const header = ['upload variant', 'wall ms', 'MB/s', 'runner CPU ms', 'host CPU ms', 'peak RSS MiB'];
  const widths = header.map((h, i) => Math.max(h.length, ...detail.map((d) => d[i].length)));
  const line = (cells) => cells.map((c, i) => (i >= 1 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  say(`\n${[line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...detail.map(line)].join('\n')}`);
  say(`  runner CPU: the client process and its children (user+sys, /usr/bin/time); host CPU: the sshd(s) and all they start (the session, shell, tar, cp, rsync; ${loop.meters[0].how}); medians; MB/s = tree size / wall time`);
  removeLater(tree);
  removeLeftovers();
}
