/**
 * What a deploy costs the host, counted rather than timed (issue 12): every
 * program the scripts start goes through a logging stand-in first in PATH, so
 * the count is exact on any machine. A process more is about a millisecond of
 * the host's CPU on every deploy of every site; the budget below is what the
 * scripts need today, so that a change that adds processes has to say so here.
 * The deploy is counted without its drift record (drift-record: false), whose
 * programs are counted on their own below.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gitRepoWithTags } from '../support/fixtures.js';

// sleep is left out: the watchdog's runs once a second, however long a deploy takes.
const TOOLS = ['awk', 'base64', 'cat', 'chmod', 'comm', 'cp', 'cut', 'date', 'df', 'dirname', 'find', 'flock', 'git', 'grep', 'head', 'id', 'join', 'ln', 'mkdir', 'mktemp', 'mv', 'nproc', 'paste', 'readlink', 'rm', 'sed', 'sha256sum', 'sort', 'split', 'stat', 'tail', 'tar', 'timeout', 'tr', 'wc', 'xargs'];

let root: string;
let shims: string;
let log: string;
let repo: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tagflip-procs-'));
  shims = join(root, 'bin');
  log = join(root, 'exec.log');
  mkdirSync(shims);
  for (const tool of TOOLS) {
    const real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    writeFileSync(join(shims, tool), `#!/bin/sh\nprintf '%s\\n' ${tool} >> '${log}'\nexec '${real}' "$@"\n`);
    chmodSync(join(shims, tool), 0o755);
  }
  repo = gitRepoWithTags(['v1', 'v2', 'v3']);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * Deploy `release` to a local site with the CLI (the bundle, as users run it),
 * the stand-ins first in its PATH; the programs the host ran, by name.
 */
function deployCounted(site: string, release: string, record = false, source = ['--repository', repo], build = ['--build', 'true']): Record<string, number> {
  writeFileSync(log, '');
  const args = ['bin/tagflip.js', 'deploy', '--hosts', 'local', '--deploy-path', site, ...source, '--release', release, ...build, '--keep-releases', '1', '--drift-record', String(record)];
  const output = execFileSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, PATH: `${shims}:${process.env.PATH}` } });
  expect(output).toContain('status: deployed');
  const counts: Record<string, number> = {};
  for (const name of readFileSync(log, 'utf8').split('\n').filter(Boolean)) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

test('a deploy to a site deployed before starts at most 29 of these programs on the host, each for a reason', () => {
  const site = join(root, 'site');
  deployCounted(site, 'v1');
  deployCounted(site, 'v2');
  // The third: a mirror to fetch into, a release to flip from, one to prune.
  const counts = deployCounted(site, 'v3');
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);

  expect(counts.mktemp).toBe(1); // the session's run directory; records are written without one
  expect(counts.id).toBeUndefined(); // who owns a directory: test -O
  expect(counts.chmod).toBeUndefined(); // .tagflip is private already
  expect(counts.date).toBeLessThanOrEqual(3); // the lock, the build's end, the flip: one each
  // fetch, rev-parse, archive: no remote set-url for the same URL; git gc --auto on about one fetch in 16
  expect(counts.git).toBeGreaterThanOrEqual(3);
  expect(counts.git).toBeLessThanOrEqual(4);
  expect(counts.readlink).toBeLessThanOrEqual(3); // what current is, by real path only where its text does not tell
  expect(counts.ln).toBe(1); // the flip's link: no mv -T probe where a flip by mv -T has worked
  expect(counts.rm).toBeLessThanOrEqual(3); // the release pruned, its records, the run directory: no archive on disk to remove
  expect(counts.awk).toBe(1); // every record and the history's newest lines in one read
  expect(counts.xargs).toBeUndefined();
  expect(total).toBeLessThanOrEqual(28 + (counts.git - 3));
});

test('the drift record of a deploy from git adds a fixed handful of programs, never one per file', () => {
  const plain = join(root, 'plain');
  const recorded = join(root, 'recorded');
  for (const release of ['v1', 'v2']) {
    deployCounted(plain, release);
    deployCounted(recorded, release, true);
  }
  const without = deployCounted(plain, 'v3');
  const withRecord = deployCounted(recorded, 'v3', true);
  // The record runs no git; git's own gc --auto, after about one fetch in 16 (by pid), would count in either deploy.
  const added: Record<string, number> = Object.fromEntries(
    [...new Set([...Object.keys(without), ...Object.keys(withRecord)])]
      .filter((tool) => tool !== 'git')
      .map((tool) => [tool, (withRecord[tool] ?? 0) - (without[tool] ?? 0)])
      .filter(([, count]) => count !== 0),
  );
  const total = Object.values(added).reduce((sum, n) => sum + n, 0);
  // Measured: 26 here (2 CPUs): mv 2, rm 3, find 1, grep 2, nproc 1, sed 4, xargs 2, sha256sum 2, cat 4, cut 3, paste 1, sort 1.
  expect(added.find).toBe(1); // one walk of the release
  expect(added.sort).toBe(1); // one sort of the record
  expect(added.sha256sum).toBeLessThanOrEqual(8); // one per CPU at most, never one per file
  expect(total).toBeLessThanOrEqual(26 + 2 * ((added.sha256sum ?? 0) - 2)); // a split part more costs an xargs and a sha256sum
  expect(Object.values(added).every((count) => count > 0)).toBe(true); // it takes nothing away
});

test('the drift record of an upload the build left as it was reads no file: a fixed handful of programs, whatever the number of files', () => {
  const tree = mkdtempSync(join(tmpdir(), 'tagflip-procs-tree-'));
  for (let i = 0; i < 200; i++) {
    mkdirSync(join(tree, `d${i % 10}`), { recursive: true });
    writeFileSync(join(tree, `d${i % 10}`, `f${i}.txt`), `${i}\n`);
  }
  const upload = ['--upload', tree];
  const added = (build: string[]) => {
    const without = deployCounted(join(root, `up-plain${build.length}`), 'v1', false, upload, build);
    const withRecord = deployCounted(join(root, `up-recorded${build.length}`), 'v1', true, upload, build);
    return Object.fromEntries(
      [...new Set([...Object.keys(without), ...Object.keys(withRecord)])]
        .map((tool) => [tool, (withRecord[tool] ?? 0) - (without[tool] ?? 0)])
        .filter(([, count]) => count !== 0),
    );
  };
  // After a build: the identities now, then the tree (find 2); whether awk
  // reads NUL-ended records, the sums from the list, the files split into
  // known and to hash (awk 3); the record's sort and its rename, the work
  // files removed. No sha256sum, no nproc.
  expect(added(['--build', 'true'])).toEqual({ find: 2, awk: 3, sort: 1, mv: 2, rm: 4 });
  // With no build (nor migrate), the upload step's identities are the ones now: one walk, the tree's.
  expect(added([])).toEqual({ find: 1, awk: 3, sort: 1, mv: 2, rm: 3 });
  rmSync(tree, { recursive: true, force: true });
});

test('a repository at a new URL is still fetched from: the mirror is pointed at it', () => {
  const site = join(root, 'moved');
  deployCounted(site, 'v1');
  const moved = join(mkdtempSync(join(tmpdir(), 'tagflip-moved-')), 'app.git');
  execFileSync('git', ['clone', '-q', '--mirror', repo, moved]);
  const counts = runMoved(site, moved);
  expect(counts.git).toBeGreaterThanOrEqual(4); // set-url, then as above
  expect(counts.git).toBeLessThanOrEqual(5);
  expect(execFileSync('git', ['--git-dir', join(site, '.tagflip/repo.git'), 'remote', 'get-url', 'origin'], { encoding: 'utf8' }).trim()).toBe(moved);
});

function runMoved(site: string, url: string): Record<string, number> {
  const before = repo;
  repo = url;
  try {
    return deployCounted(site, 'v2');
  } finally {
    repo = before;
  }
}
