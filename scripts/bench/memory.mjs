// Part `memory64` of npm run bench (issue 12): one deploy to 64 hosts at once, with
// max-parallel at its default. Targets: the runner process's peak RSS at most
// TARGETS.rssMiB, and its CPU per additional host at most TARGETS.cpuPerHostMs
// (against one host). The sizes between (8, 16, 32) give the slope of memory and time
// per host. Each host is an sshd of the fleet (hosts.mjs: its own mount namespace, so
// its own files at the same deploy path); each holds one connection, so sshd's
// MaxStartups never limits, and the runner needs one socket per host.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HOST, USER, fleetHosts, freePort, startSshd, writeKnownHosts } from './hosts.mjs';
import { compare } from './measure.mjs';
import { ACTION_BUNDLE, CLI, ROOT, tagflipDeploy } from './peers.mjs';
import { BenchError, tail } from './processes.mjs';
import { addRow, fmtMs, fmtRss, fmtX, say, verdicts } from './report.mjs';

export const SIZES = [1, 8, 16, 32, 64];
const TARGETS = { rssMiB: 200, cpuPerHostMs: 25 };
const MAX_RUNS = 3; // a round is 121 host deploys

/** The action's default for an input, read from action.yml (the CLI shares the defaults). */
function actionDefault(input) {
  const yml = fs.readFileSync(path.join(ROOT, 'action.yml'), 'utf8');
  const block = new RegExp(`^ {2}${input}:\\n((?: {4}.*\\n)+)`, 'm').exec(yml);
  return /^ {4}default: '?([^'\n]*)'?$/m.exec(block?.[1] ?? '')?.[1] ?? '?';
}

/** The soft limit on open files the runner process inherits. */
function openFilesLimit() {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  return line?.split(/\s{2,}/)[1] ?? '?';
}

/** Least squares: y = a + b x. */
function fit(points) {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const b = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return { a: my - b * mx, b };
}

export async function partMemory(ctx) {
  const largest = SIZES[SIZES.length - 1];
  const fleet = await fleetHosts(ctx, largest);
  const runs = Math.min(ctx.runs, MAX_RUNS);
  say(`  ${largest} hosts: max-parallel ${actionDefault('max-parallel')} (the default); the runner's open-files limit is ${openFilesLimit()}; medians of ${runs}`);
  const variants = SIZES.map((size) => {
    const name = `mem${size}`;
    const hosts = { ns: null, ports: fleet.ports.slice(0, size), site: path.join(fleet.target, name), sources: fleet.sources.slice(0, size).map((s) => path.join(s, name)) };
    return { size, deploy: (tag) => tagflipDeploy(ctx, hosts, tag) };
  });
  const stats = await compare({ ...ctx, runs }, variants);
  const one = stats[0];
  const all = stats[stats.length - 1];
  variants.forEach((v, i) => addRow('memory64', `tagflip, ${v.size} host${v.size > 1 ? 's' : ''}`, stats[i], i ? one : undefined));

  if (all.rss === undefined) {
    verdicts.push(`(no verdict for the peak RSS with ${largest} hosts: /usr/bin/time is missing)`);
  } else {
    const slope = fit(variants.map((v, i) => [v.size, stats[i].rss / 1024]));
    const peak = all.rssMax / 1024;
    verdicts.push(
      `${peak <= TARGETS.rssMiB ? 'PASS' : 'FAIL'} memory, ${largest} hosts: peak RSS of the tagflip process ${fmtRss(all.rssMax)} MiB, the highest of ${all.n} runs (target ≤ ${TARGETS.rssMiB} MiB); 1 host ${fmtRss(one.rss)} MiB, slope ${slope.b.toFixed(2)} MiB per host (least squares over ${SIZES.join(', ')} hosts)`,
    );
  }
  const extra = largest - 1;
  if (all.cpu && one.cpu) {
    const perHost = (all.cpu.client - one.cpu.client) / extra;
    verdicts.push(
      `${perHost <= TARGETS.cpuPerHostMs ? 'PASS' : 'FAIL'} ${largest} hosts, runner CPU per additional host: ${fmtMs(perHost)} ms (${fmtMs(all.cpu.client)} ms for ${largest} hosts, ${fmtMs(one.cpu.client)} ms for 1; target ≤ ${TARGETS.cpuPerHostMs} ms; medians)`,
    );
  } else {
    verdicts.push(`(no verdict for the runner's CPU per host: no cgroup CPU accounting here)`);
  }
  verdicts.push(`info ${largest} hosts vs 1, wall time: ${fmtMs(all.median)} ms = ${fmtX(all.median / one.median)} 1 host's ${fmtMs(one.median)} ms, ${fmtMs((all.median - one.median) / extra)} ms per additional host (all sshd share this machine's CPUs)`);
}

// ---------------------------------------------------------------------------
// Part `slowreader` (issue 21): a build prints 200 MB, as one line and as lines,
// and the client's log is read slowly (the runner behind, a terminal scrolled
// back, `| less`). The session pauses the SSH channel while the log's writer is
// full, so the host waits instead of the client holding what it printed (once
// 1.5 GB of RSS for a 256 MB line). Target: peak RSS at most SLOW_READER.rssMiB,
// for the CLI (log on stderr) and the action (log on stdout) alike.
// ---------------------------------------------------------------------------

const SLOW_READER = { rssMiB: 250, bytes: 200 * 1024 * 1024, chunkPauseMs: 2 };

/**
 * Run `node <args>` with its log (`stream`: 'stdout' or 'stderr') read by a slow
 * reader: one chunk, then a pause. Returns its exit code, peak RSS (VmHWM, kB, written
 * by a preload as it exits), the bytes of log read and the seconds taken.
 */
function runWithSlowLog(ctx, args, env, stream) {
  const preload = path.join(ctx.tmp, 'peak.cjs');
  const peakFile = path.join(ctx.tmp, `peak-${process.hrtime.bigint()}`);
  fs.writeFileSync(preload, "process.on('exit', () => { const fs = require('fs'); fs.writeFileSync(process.env.TAGFLIP_BENCH_PEAK, /VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]); });\n");
  const started = Date.now();
  const child = spawn(process.execPath, ['--require', preload, ...args], { env: { ...ctx.env, ...env, TAGFLIP_BENCH_PEAK: peakFile }, stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  let said = '';
  child[stream].on('data', (chunk) => {
    bytes += chunk.length;
    child[stream].pause();
    setTimeout(() => child[stream].resume(), SLOW_READER.chunkPauseMs);
  });
  const other = stream === 'stdout' ? 'stderr' : 'stdout';
  child[other].on('data', (chunk) => (said = (said + chunk).slice(-4000)));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      const peakKb = fs.existsSync(peakFile) ? Number(fs.readFileSync(peakFile, 'utf8')) : undefined;
      resolve({ code, peakKb, bytes, seconds: (Date.now() - started) / 1000, said });
    });
  });
}

export async function partSlowReader(ctx) {
  const port = await freePort();
  writeKnownHosts(ctx, [port]);
  await startSshd(ctx, 'slowreader', { port });
  const host = `${USER}@${HOST}:${port}`;
  const mb = SLOW_READER.bytes / (1024 * 1024);
  const builds = [
    [`one ${mb} MiB line`, `head -c ${SLOW_READER.bytes} /dev/zero | tr '\\0' x; echo`],
    [`${mb} MiB of 80-character lines`, `yes 'a line of build output, as a compiler prints them: eighty characters in all.' | head -c ${SLOW_READER.bytes}`],
  ];
  let site = 0;
  for (const [what, build] of builds) {
    for (const frontEnd of ['CLI', 'action']) {
      const deployPath = path.join(ctx.sites, `slow${++site}`);
      const inputs = { hosts: host, 'deploy-path': deployPath, release: 'v1', build };
      const run =
        frontEnd === 'CLI'
          ? await runWithSlowLog(ctx, [CLI, 'deploy', ...Object.entries({ ...inputs, 'private-key': `@${ctx.clientKey}`, 'known-hosts': `@${ctx.knownHosts}` }).flatMap(([name, value]) => [`--${name}`, value])], {}, 'stderr')
          : await runWithSlowLog(ctx, [ACTION_BUNDLE], Object.fromEntries(Object.entries({ ...inputs, 'private-key': fs.readFileSync(ctx.clientKey, 'utf8'), 'known-hosts': fs.readFileSync(ctx.knownHosts, 'utf8') }).map(([name, value]) => [`INPUT_${name.toUpperCase()}`, value])), 'stdout');
      if (run.code !== 0) throw new BenchError(`the ${frontEnd} deploy printing ${what} exited ${run.code}\n${tail(run.said)}`);
      const peak = run.peakKb / 1024;
      const rate = run.bytes / (1024 * 1024) / run.seconds;
      verdicts.push(
        `${peak <= SLOW_READER.rssMiB ? 'PASS' : 'FAIL'} slow reader, ${frontEnd}, ${what}: peak RSS ${peak.toFixed(0)} MiB (target ≤ ${SLOW_READER.rssMiB} MiB); ${(run.bytes / (1024 * 1024)).toFixed(0)} MiB of log read at ${rate.toFixed(0)} MiB/s in ${run.seconds.toFixed(1)} s`,
      );
    }
  }
}
