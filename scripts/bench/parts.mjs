// npm run bench: the parts measured against the peers and the targets. Start-up, one
// host on loopback and across 50 ms, and a fleet; the parts `history` and `upload`
// have modules of their own.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FLEET_SIZE, HOST, USER, fleetHosts, freePort, startSshd, wanLink, writeKnownHosts } from './hosts.mjs';
import { compare, summary, timeToLine } from './measure.mjs';
import { ACTION_BUNDLE, BUILD, CLI, baselineDeploy, floorDeploy, minaDeploy, tagflipDeploy } from './peers.mjs';
import { addRow, fmtMs, fmtX, say, verdict, verdicts } from './report.mjs';

// Issue 20's targets: one host at most 1.2x the floor on loopback and 1.15x across 50 ms, CPU per deploy at most 1.7x.
const TARGETS = { loopback: 1.2, wan: 1.15, fleet: 2, cpu: 1.7, startupMs: 80 };

/**
 * Start-up: `node -e` printing a line, against the first line a deploy prints
 * ("authenticating with …", logged before the connection is tried; a group's
 * heading waits for its first line) from the action
 * (`node dist/index.js` with INPUT_*, as the runner starts it) and from the CLI.
 * The host is a closed port on loopback: everything before that line is the same
 * as for a reachable host. Variants alternate within each round.
 */
export async function partStartup(ctx) {
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
  const firstLine = /authenticating|connect/;
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

export async function partLoopback(ctx) {
  const port = await freePort();
  writeKnownHosts(ctx, [port]);
  await startSshd(ctx, 'loopback', { port });
  await oneHost(ctx, 'loopback', { ns: null, port });
}

export async function partWan(ctx) {
  await oneHost(ctx, 'wan', await wanLink(ctx));
}

export async function partFleet(ctx) {
  const { target, ports, sources } = await fleetHosts(ctx);
  const one = { ns: null, ports: ports.slice(0, 1), site: path.join(target, 'one'), sources: [path.join(sources[0], 'one')] };
  const eight = { ns: null, ports, site: path.join(target, 'eight'), sources: sources.map((s) => path.join(s, 'eight')) };
  const [single, fleet] = await compare(ctx, [{ deploy: (tag) => tagflipDeploy(ctx, one, tag) }, { deploy: (tag) => tagflipDeploy(ctx, eight, tag) }]);
  addRow('fleet', 'tagflip, 1 host', single);
  addRow('fleet', `tagflip, ${FLEET_SIZE} hosts`, fleet, single);
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  verdict(`${FLEET_SIZE} hosts vs 1`, TARGETS.fleet, `${FLEET_SIZE} hosts`, fleet, '1 host', single, `; all ${FLEET_SIZE} sshd share this machine's ${cpus} CPU(s)`);
}
