// npm run bench: how a run is measured. Wall time of the whole client process, its
// peak RSS (/usr/bin/time), its CPU and the host's (cgroups), rounds that alternate the
// variants, and medians.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BenchError, SHORT_TIMEOUT_MS, describe, killGroup, liveChildren, run, sleep, tail, undo } from './processes.mjs';

export const TIME = '/usr/bin/time';
export const DEPLOY_TIMEOUT_MS = 180_000;

// ---------------------------------------------------------------------------
// CPU accounting: a cgroup for the host side (the sshd daemons and all they fork) and
// one for the client of each measured run. Deploys run one at a time, so the deltas
// of the two counters around a run are that run's CPU, whatever else the machine does.
// ---------------------------------------------------------------------------

export function makeCgroups() {
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
    // A session still exiting (sshd's, after its listener was stopped) keeps its group
    // busy for a moment: moved out again and retried for up to 2 s.
    undo.push(() => {
      for (let attempt = 1; ; attempt++) {
        release();
        try {
          for (const dir of Object.values(groups)) if (fs.existsSync(dir)) fs.rmdirSync(dir);
          fs.rmdirSync(base);
          return;
        } catch (error) {
          if (error.code !== 'EBUSY' || attempt >= 40) throw error;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        }
      }
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

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A measured variant: times (ms) and peak RSS (KiB) per run. */
export function summary(samples) {
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

export async function measure(ctx, label, command, args, options = {}) {
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
 * Warm up each variant once, then ctx.runs rounds; within a round the variants run
 * one after the other, in an order that alternates, so drift hits them alike.
 * Every run deploys a fresh tag (b1 is the warm-up, b2.. the measured runs).
 */
export async function compare(ctx, variants) {
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

/**
 * Wall time from spawn to the first line matching `pattern` on stdout or stderr; the
 * process is killed there. Rejects if it exits without printing one.
 */
export function timeToLine(command, args, env, pattern) {
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
