// Part `rollback` of npm run bench (issue 12): a rollback (no build) across the 50 ms
// link at most TARGET x the flip by hand, one OpenSSH session running
// `ln -sfn releases/X current.tmp && mv -T current.tmp current`; on loopback too, for
// information. Each site holds two releases, deployed by tagflip outside the timing;
// every run flips its site to the other one, so every run really moves `current`.
// The hand flip's site is a plain directory with the same two releases.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { HOST, USER, chownR, freePort, inNs, startSshd, wanLink, writeKnownHosts } from './hosts.mjs';
import { compare, measure } from './measure.mjs';
import { CLI, checkCurrent, sshArgs, tagflipDeploy } from './peers.mjs';
import { BenchError, Skip, tail } from './processes.mjs';
import { addRow, fmtMs, fmtX, say, verdict, verdicts } from './report.mjs';

export const TARGET = 1.3;
const RELEASES = ['b1', 'b2'];

const shq = (value) => `'${String(value).replace(/'/g, `'\\''`)}'`;

/** The release `site` does not serve now: where the next run flips to. */
function other(site) {
  const now = fs.readlinkSync(path.join(site, 'current'));
  return now === `releases/${RELEASES[1]}` ? RELEASES[0] : RELEASES[1];
}

/** tagflip's CLI: `rollback --rollback-to` the other release. */
async function tagflipRollback(ctx, { ns, port, site }) {
  const tag = other(site);
  const cli = inNs(ns, process.execPath, [
    CLI, 'rollback',
    '--hosts', `${USER}@${HOST}:${port}`,
    '--private-key', `@${ctx.clientKey}`,
    '--known-hosts', `@${ctx.knownHosts}`,
    '--deploy-path', site,
    '--rollback-to', tag,
  ]);
  const sample = await measure(ctx, `tagflip rollback to ${tag}`, cli.command, cli.args);
  if (!/status: rolled-back/.test(sample.output)) throw new BenchError(`tagflip rollback to ${tag}: no "status: rolled-back" in its output\n${tail(sample.output)}`);
  checkCurrent(site, tag, `tagflip rollback to ${tag}`);
  return sample;
}

/** The flip by hand: one `ssh host 'ln -sfn … && mv -T …'`. */
async function sshFlip(ctx, { ns, port, site }) {
  const tag = other(site);
  const tmp = path.join(site, 'current.tmp');
  const command = `ln -sfn ${shq(`releases/${tag}`)} ${shq(tmp)} && mv -T ${shq(tmp)} ${shq(path.join(site, 'current'))}`;
  const ssh = inNs(ns, 'ssh', sshArgs(ctx, port, command));
  const sample = await measure(ctx, `ssh flip to ${tag}`, ssh.command, ssh.args);
  checkCurrent(site, tag, `ssh flip to ${tag}`);
  return sample;
}

/** A plain directory with the two releases (a copy of what tagflip made), current → the second. */
function plainSite(ctx, site, from) {
  fs.mkdirSync(path.join(site, 'releases'), { recursive: true, mode: 0o755 });
  for (const tag of RELEASES) fs.cpSync(path.join(from, 'releases', tag), path.join(site, 'releases', tag), { recursive: true });
  fs.symlinkSync(`releases/${RELEASES[1]}`, path.join(site, 'current'));
  chownR(site, ctx.ids);
}

export async function partRollback(ctx) {
  const port = await freePort();
  writeKnownHosts(ctx, [port]);
  await startSshd(ctx, 'rollback', { port });
  const links = [{ key: 'loopback', label: 'loopback', ns: null, port }];
  try {
    links.push({ key: 'wan', ...(await wanLink(ctx)) });
  } catch (error) {
    if (!(error instanceof Skip)) throw error;
    say(`skipped: rollback across the 50 ms link: ${error.message}`);
  }
  const variants = [];
  for (const link of links) {
    const tagflipSite = path.join(ctx.sites, `rollback-${link.key}-tagflip`);
    for (const tag of RELEASES) await tagflipDeploy(ctx, { ns: link.ns, ports: [link.port], site: tagflipSite }, tag);
    const sshSite = path.join(ctx.sites, `rollback-${link.key}-ssh`);
    plainSite(ctx, sshSite, tagflipSite);
    const on = (site) => ({ ns: link.ns, port: link.port, site });
    variants.push(
      { link, key: 'ssh', label: `ssh 'ln -sfn … && mv -T …', ${link.label}`, deploy: () => sshFlip(ctx, on(sshSite)) },
      { link, key: 'tagflip', label: `tagflip rollback (CLI), ${link.label}`, deploy: () => tagflipRollback(ctx, on(tagflipSite)) },
    );
  }
  const stats = await compare(ctx, variants);
  const of = (link, key) => stats[variants.findIndex((v) => v.link === link && v.key === key)];
  for (const link of links) {
    const ssh = of(link, 'ssh');
    const tagflip = of(link, 'tagflip');
    addRow('rollback', variants.find((v) => v.link === link && v.key === 'ssh').label, ssh);
    addRow('rollback', variants.find((v) => v.link === link && v.key === 'tagflip').label, tagflip, ssh);
    if (link.key === 'wan') {
      verdict(`rollback, ${link.label}`, TARGET, 'tagflip rollback', tagflip, 'ssh ln+mv', ssh);
    } else {
      verdicts.push(`info rollback, loopback: tagflip ${fmtMs(tagflip.median)} ms = ${fmtX(tagflip.median / ssh.median)} ssh ln+mv ${fmtMs(ssh.median)} ms (no target; medians of ${tagflip.n})`);
    }
  }
}
