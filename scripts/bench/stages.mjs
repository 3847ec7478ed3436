// Part `stages` of npm run bench (issue 24): the switch of a prepared release (a deploy
// that finds the release ready from the same source, so it builds nothing and only flips)
// at most TARGET x a rollback to a release on the host, measured side by side in the same
// rounds, on loopback and across the 50 ms link. Each round prepares a fresh tag on the
// switch's site with `tagflip prepare`, outside the timing; then the timed runs are
// `tagflip deploy` of that tag (same repository, ref and build as the prepare) and
// `tagflip rollback --rollback-to` the other release of a second site.
//
// The switch does a little more than the rollback by design: its facts resolve the ref in
// the host's mirror (a `git fetch`), so that a release whose ref has moved is never
// flipped to; that fetch is local on the bench host, as a mirror of a nearby forge's is.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { HOST, USER, freePort, inNs, startSshd, wanLink, writeKnownHosts } from './hosts.mjs';
import { compare, measure } from './measure.mjs';
import { BUILD, CLI, checkCurrent, tagflipDeploy } from './peers.mjs';
import { BenchError, Skip, run, tail } from './processes.mjs';
import { addRow, fmtMs, fmtX, say, verdict, verdicts } from './report.mjs';

export const TARGET = 1.5;
const ROLLBACK_RELEASES = ['b1', 'b2'];

function reach(ctx, port, site) {
  return ['--hosts', `${USER}@${HOST}:${port}`, '--private-key', `@${ctx.clientKey}`, '--known-hosts', `@${ctx.knownHosts}`, '--deploy-path', site];
}

/** `tagflip prepare` of `tag`, untimed: the release is ready on the host afterwards, current untouched. */
async function prepare(ctx, { ns, port, site }, tag) {
  const cli = inNs(ns, process.execPath, [CLI, 'prepare', ...reach(ctx, port, site), '--release', `s${tag}`, '--ref', tag, '--repository', ctx.repo, '--build', BUILD]);
  const result = await run(cli.command, cli.args, { env: ctx.env, timeoutMs: 120_000 });
  if (result.code !== 0 || !/status: prepared/.test(result.stdout + result.stderr)) throw new BenchError(`tagflip prepare of ${tag} exited ${result.code}\n${tail(result.stdout + result.stderr)}`);
}

/** The timed switch: `tagflip deploy` of the prepared release, which must build nothing. */
async function prepareAndSwitch(ctx, on, tag) {
  await prepare(ctx, on, tag);
  const release = `s${tag}`;
  const cli = inNs(on.ns, process.execPath, [CLI, 'deploy', ...reach(ctx, on.port, on.site), '--release', release, '--ref', tag, '--repository', ctx.repo, '--build', BUILD]);
  const sample = await measure(ctx, `tagflip deploy of the prepared ${release}`, cli.command, cli.args);
  if (!/status: deployed/.test(sample.output)) throw new BenchError(`tagflip deploy of the prepared ${release}: no "status: deployed"\n${tail(sample.output)}`);
  checkCurrent(on.site, release, `tagflip deploy of the prepared ${release}`);
  return sample;
}

/** The timed rollback: `tagflip rollback --rollback-to` the release the site does not serve. */
async function rollback(ctx, { ns, port, site }) {
  const now = fs.readlinkSync(path.join(site, 'current'));
  const tag = now === `releases/${ROLLBACK_RELEASES[1]}` ? ROLLBACK_RELEASES[0] : ROLLBACK_RELEASES[1];
  const cli = inNs(ns, process.execPath, [CLI, 'rollback', ...reach(ctx, port, site), '--rollback-to', tag]);
  const sample = await measure(ctx, `tagflip rollback to ${tag}`, cli.command, cli.args);
  if (!/status: rolled-back/.test(sample.output)) throw new BenchError(`tagflip rollback to ${tag}: no "status: rolled-back"\n${tail(sample.output)}`);
  checkCurrent(site, tag, `tagflip rollback to ${tag}`);
  return sample;
}

export async function partStages(ctx) {
  const port = await freePort();
  writeKnownHosts(ctx, [port]);
  await startSshd(ctx, 'stages', { port });
  const links = [{ key: 'loopback', label: 'loopback', ns: null, port }];
  try {
    links.push({ key: 'wan', ...(await wanLink(ctx)) });
  } catch (error) {
    if (!(error instanceof Skip)) throw error;
    say(`skipped: stages across the 50 ms link: ${error.message}`);
  }
  const variants = [];
  for (const link of links) {
    const rollbackSite = path.join(ctx.sites, `stages-${link.key}-rollback`);
    for (const tag of ROLLBACK_RELEASES) await tagflipDeploy(ctx, { ns: link.ns, ports: [link.port], site: rollbackSite }, tag);
    const switchSite = path.join(ctx.sites, `stages-${link.key}-switch`);
    await tagflipDeploy(ctx, { ns: link.ns, ports: [link.port], site: switchSite }, 'b1');
    const on = (site) => ({ ns: link.ns, port: link.port, site });
    variants.push(
      { link, key: 'rollback', label: `tagflip rollback (CLI), ${link.label}`, deploy: () => rollback(ctx, on(rollbackSite)) },
      { link, key: 'switch', label: `tagflip deploy of a prepared release (CLI), ${link.label}`, deploy: (tag) => prepareAndSwitch(ctx, on(switchSite), tag) },
    );
  }
  const stats = await compare(ctx, variants);
  const of = (link, key) => stats[variants.findIndex((v) => v.link === link && v.key === key)];
  for (const link of links) {
    const back = of(link, 'rollback');
    const switched = of(link, 'switch');
    addRow('stages', variants.find((v) => v.link === link && v.key === 'rollback').label, back);
    addRow('stages', variants.find((v) => v.link === link && v.key === 'switch').label, switched, back);
    verdict(`prepared switch, ${link.label}`, TARGET, 'tagflip deploy of a prepared release', switched, 'tagflip rollback', back);
  }
  verdicts.push(`info stages: the prepared switch resolves its ref in the host's mirror (git fetch), the rollback reads no source (medians of ${of(links[0], 'switch').n}; ${fmtMs(of(links[0], 'switch').median)} ms vs ${fmtMs(of(links[0], 'rollback').median)} ms = ${fmtX(of(links[0], 'switch').median / of(links[0], 'rollback').median)} on loopback)`);
}
