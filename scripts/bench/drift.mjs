// Parts `drift` and `migratecheck` of npm run bench (issue 25).
//
// drift: a release of DRIFT_FILES files / DRIFT_MB MB, deployed by upload (each
// run a new release from the same tree: what did not change is copied on the
// host, as in a typical re-deploy), with the content recorded at the end of the
// build (drift-record: true, the default) and without it (false), side by side;
// then the same tree from git (a repository holding it, one tag per run), where
// every file is new to the host and is read; then `status` with and without
// `drift: true` on the recorded site. Target: recording adds at most 10% to the
// deploy, else it must stay a choice.
//
// migratecheck: a site whose data/current holds DATA_MB MB (300 and 2048), a git
// deploy without migrate against one with migrate and a migrate-check that exits
// 0 (no copy, no migration); at 300 MB also one whose check fails (copy and
// migrate), for scale. Target: the up-to-date deploy at most 1.2x the one without migrate.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HOST, USER, chownR, freePort, startSshd, writeKnownHosts } from './hosts.mjs';
import { freshDisk } from './disk.mjs';
import { runOk } from './processes.mjs';
import { compare, measure } from './measure.mjs';
import { BUILD, CLI, ROOT, checkCurrent } from './peers.mjs';
import { BenchError, tail } from './processes.mjs';
import { addRow, fmtMs, fmtX, say, verdict, verdicts } from './report.mjs';

const DRIFT_FILES = 10_000;
const DRIFT_MB = 200;
const RECORD_TARGET = 1.1;
const CHECK_TARGET = 1.2;

function cli(ctx, port, site, command, args) {
  return [CLI, command, '--hosts', `${USER}@${HOST}:${port}`, '--private-key', `@${ctx.clientKey}`, '--known-hosts', `@${ctx.knownHosts}`, '--deploy-path', site, ...args];
}

async function deploy(ctx, port, site, tag, args, label) {
  const sample = await measure(ctx, `${label} of ${tag}`, process.execPath, cli(ctx, port, site, 'deploy', ['--release', tag, ...args]));
  if (!/status: deployed/.test(sample.output)) throw new BenchError(`${label} of ${tag}: no "status: deployed" in its output\n${tail(sample.output)}`);
  checkCurrent(site, tag, `${label} of ${tag}`);
  return sample;
}

/** DRIFT_FILES files of DRIFT_MB MB in all, 100 to a directory, random bytes. */
function makeTree(dir) {
  const size = Math.floor((DRIFT_MB * 1e6) / DRIFT_FILES);
  for (let i = 0; i < DRIFT_FILES; i++) {
    const sub = path.join(dir, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${i}.bin`), randomBytes(size));
  }
}

/** The host functions the record step needs, as the host receives them (src/remote/host-pieces.ts: headers off, includes put in). */
const HOST_FUNCTIONS = (() => {
  const dir = path.join(ROOT, 'src/remote/host');
  const piece = (name) => {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    return text.slice(text.indexOf('\n\n') + 2).replace(/^([ \t]*)\. \.\/([a-z0-9-]+\.sh)$/gm, (_line, indent, included) => indent + piece(included));
  };
  return ['identity.sh', 'tree-list.sh', 'uploaded-sums.sh'].map(piece).join('\n');
})();

const show = (stats) => `${fmtMs(stats.median)} ms${stats.cpu ? `, CPU ${fmtMs(stats.cpu.total)} ms` : ''}`;

export async function partDrift(ctx) {
  const port = await freePort();
  writeKnownHosts(ctx, [port]);
  await startSshd(ctx, 'drift', { port });
  const tree = path.join(ctx.tmp, 'drift-tree');
  makeTree(tree);
  fs.chmodSync(ctx.tmp, 0o755);
  const upload = ['--upload', tree, '--build', BUILD];
  const disk = freshDisk(ctx, 'drift', '12G');
  const sites = { on: path.join(disk.root, 'drift-record'), off: path.join(disk.root, 'drift-norecord') };
  const variants = [
    { label: `upload deploy, ${DRIFT_FILES} files / ${DRIFT_MB} MB, drift-record: false`, deploy: (tag) => deploy(ctx, port, sites.off, tag, [...upload, '--drift-record', 'false'], 'deploy without record') },
    { label: `upload deploy, ${DRIFT_FILES} files / ${DRIFT_MB} MB, drift-record: true (default)`, deploy: (tag) => deploy(ctx, port, sites.on, tag, upload, 'deploy with record') },
  ];
  const [off, on] = await compare(ctx, variants);
  addRow('drift', variants[0].label, off);
  addRow('drift', variants[1].label, on, off);
  verdict(`drift: recording, ${DRIFT_FILES} files / ${DRIFT_MB} MB`, RECORD_TARGET, 'deploy with record', on, 'deploy without', off);

  // The record step alone, on the last release of the recorded site, as the
  // deploy user: from the upload's list (what a deploy does) against reading
  // every file. Without the deploys' 200 MB copies, whose writeback makes
  // their times swing on a shared machine.
  const last = `b${ctx.runs + 1}`;
  const out = path.join(ctx.tmp, 'record-step');
  fs.mkdirSync(out);
  chownR(out, ctx.ids);
  const releases = path.join(sites.on, '.tagflip/releases');
  const step = (fromList) => () =>
    measure(ctx, `record step${fromList ? ' from the list' : ''}`, 'su', ['-s', '/bin/sh', USER, '-c', `${HOST_FUNCTIONS}\n${
      fromList ? `tf_uploaded_sums "$1" "$2.files" "$2.ids" "$3/known" || exit 3; tf_tree_list "$1" "$3/tree" "$3/known" && cmp -s "$3/tree" "$2.tree"` : 'tf_tree_list "$1" "$3/tree" && cmp -s "$3/tree" "$2.tree"'
    }`, 'sh', path.join(sites.on, 'releases', last), path.join(releases, last), out]);
  const steps = [
    { label: `the record step alone, reading every file (${DRIFT_FILES} files / ${DRIFT_MB} MB)`, deploy: step(false) },
    { label: 'the record step alone, from the upload\'s list (as a deploy makes it)', deploy: step(true) },
  ];
  const [full, fast] = await compare(ctx, steps);
  addRow('drift', steps[0].label, full);
  addRow('drift', steps[1].label, fast, full);

  // The same tree from git: nothing is known, every file is read.
  const repo = path.join(ctx.tmp, 'drift-repo');
  fs.cpSync(tree, repo, { recursive: true });
  const git = (...args) => runOk('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', '-c', 'commit.gpgsign=false', '-c', 'core.compression=0', ...args], { cwd: repo });
  await git('init', '-q');
  await git('add', '-A');
  await git('commit', '-q', '-m', 'tree');
  for (let i = 1; i <= ctx.runs + 1; i++) await git('tag', `b${i}`);
  chownR(repo, ctx.ids);
  const fromGit = ['--repository', repo, '--build', BUILD];
  const gitSites = { on: path.join(disk.root, 'drift-git-record'), off: path.join(disk.root, 'drift-git-norecord') };
  const gitVariants = [
    { label: `git deploy, ${DRIFT_FILES} files / ${DRIFT_MB} MB, drift-record: false`, deploy: (tag) => deploy(ctx, port, gitSites.off, tag, [...fromGit, '--drift-record', 'false'], 'git deploy without record') },
    { label: `git deploy, ${DRIFT_FILES} files / ${DRIFT_MB} MB, drift-record: true (default)`, deploy: (tag) => deploy(ctx, port, gitSites.on, tag, fromGit, 'git deploy with record') },
  ];
  const [gitOff, gitOn] = await compare(ctx, gitVariants);
  addRow('drift', gitVariants[0].label, gitOff);
  addRow('drift', gitVariants[1].label, gitOn, gitOff);
  verdicts.push(`info drift: recording a git deploy of the same tree (every file read) adds ${fmtMs(gitOn.median - gitOff.median)} ms to ${fmtMs(gitOff.median)} ms (${fmtX(gitOn.median / gitOff.median)}); CPU ${show(gitOn)} against ${show(gitOff)}`);

  const status = (drift) => async () => {
    const sample = await measure(ctx, `status${drift ? ' --drift' : ''}`, process.execPath, cli(ctx, port, sites.on, 'status', drift ? ['--drift', 'true'] : []));
    if (drift && !/is as deployed/.test(sample.output)) throw new BenchError(`status --drift: the release is not reported as deployed\n${tail(sample.output)}`);
    return sample;
  };
  const checks = [
    { label: 'status', deploy: status(false) },
    { label: `status --drift true, ${DRIFT_FILES} files / ${DRIFT_MB} MB`, deploy: status(true) },
  ];
  const [plain, drift] = await compare(ctx, checks);
  addRow('drift', checks[0].label, plain);
  addRow('drift', checks[1].label, drift, plain);
  verdicts.push(`info drift: recording adds ${fmtMs(on.median - off.median)} ms to a ${fmtMs(off.median)} ms upload deploy (${fmtX(on.median / off.median)}), CPU ${show(on)} against ${show(off)}; checking: status ${show(plain)}, with drift ${show(drift)} (medians of ${drift.n})`);
  disk.drop();
}

const MIGRATE = (mb) => `[ -f "$TAGFLIP_DATA_PATH/Data.fs" ] || head -c ${mb}M /dev/urandom > "$TAGFLIP_DATA_PATH/Data.fs"; echo "$TAGFLIP_RELEASE" >> "$TAGFLIP_DATA_PATH/migrations"`;

export async function partMigrateCheck(ctx) {
  const port = await freePort();
  writeKnownHosts(ctx, [port]);
  await startSshd(ctx, 'migratecheck', { port });
  const git = ['--repository', ctx.repo, '--build', BUILD];
  for (const mb of [300, 2048]) {
    const site = (key) => path.join(ctx.sites, `data-${mb}-${key}`);
    // The site without migrate holds the same data, made once (the first deploy of the others makes theirs).
    fs.mkdirSync(path.join(site('plain'), 'data/releases/seed'), { recursive: true });
    const seeded = path.join(site('plain'), 'data/releases/seed/Data.fs');
    fs.writeFileSync(seeded, '');
    for (let written = 0; written < mb; written += 64) fs.appendFileSync(seeded, randomBytes(64 * 1024 * 1024));
    fs.symlinkSync('releases/seed', path.join(site('plain'), 'data/current'));
    chownR(site('plain'), ctx.ids);
    const variants = [
      { key: 'plain', label: `git deploy, no migrate (${mb} MB of data)`, deploy: (tag) => deploy(ctx, port, site('plain'), tag, git, 'deploy without migrate') },
      { key: 'reuse', label: `migrate + migrate-check exit 0: no copy (${mb} MB)`, deploy: (tag) => deploy(ctx, port, site('reuse'), tag, [...git, '--migrate', MIGRATE(mb), '--migrate-check', 'test -f "$TAGFLIP_DATA_PATH/Data.fs"'], 'deploy, data up to date') },
    ];
    if (mb <= 300) {
      variants.push({ key: 'copy', label: `migrate, check exits 1: copy + migrate (${mb} MB)`, deploy: (tag) => deploy(ctx, port, site('copy'), tag, [...git, '--migrate', MIGRATE(mb), '--migrate-check', 'false'], 'deploy, data copied') });
    }
    const stats = await compare(ctx, variants);
    variants.forEach((variant, i) => addRow('migratecheck', variant.label, stats[i], i === 0 ? undefined : stats[0]));
    verdict(`migrate-check up to date, ${mb} MB of data`, CHECK_TARGET, 'deploy with migrate-check 0', stats[1], 'deploy without migrate', stats[0]);
    if (stats[2]) verdicts.push(`info migrate-check, ${mb} MB: copy + migrate ${show(stats[2])} against up to date ${show(stats[1])} and no migrate ${show(stats[0])}`);
    for (const variant of variants) fs.rmSync(site(variant.key), { recursive: true, force: true });
  }
  say('');
}
