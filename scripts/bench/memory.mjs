// Part `memory64` of npm run bench (issue 12): one deploy to 64 hosts at once, with
// max-parallel at its default. Targets: the runner process's peak RSS at most
// TARGETS.rssMiB, and its CPU per additional host at most TARGETS.cpuPerHostMs
// (against one host). The sizes between (8, 16, 32) give the slope of memory and time
// per host. Each host is an sshd of the fleet (hosts.mjs: its own mount namespace, so
// its own files at the same deploy path); each holds one connection, so sshd's
// MaxStartups never limits, and the runner needs one socket per host.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fleetHosts } from './hosts.mjs';
import { compare } from './measure.mjs';
import { ROOT, tagflipDeploy } from './peers.mjs';
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
