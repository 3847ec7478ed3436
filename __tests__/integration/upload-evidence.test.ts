/**
 * An upload's re-deploy is the upload, byte for byte, whatever the host did in
 * between (issue 21): each release is `diff -r` identical to the upload plus
 * what its own build added, after a build that rewrote or appended to uploaded
 * files, moved a directory in, or wrote a name that is not UTF-8; after the
 * deploy user swapped a directory for a symlink; after another user replaced a
 * directory inside an uploaded 0777 one. The sites live on a loop-mounted ext4
 * with 128-byte inodes, whose timestamps are whole seconds; real sshd.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { chmodSync, chownSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openTempDir, runTagflip } from '../support/fixtures.js';
import { ensureUser } from '../support/login-user.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

const SPY = 'tagflip-spy';

let sshd: TestSshd;
let mountPoint = '';
let root: string;
let sites = 0;

beforeAll(async () => {
  [sshd] = await Promise.all([startSshd(), ensureUser(SPY)]);
  const dir = openTempDir('tagflip-ext4-');
  const image = join(dir, 'fs.img');
  execFileSync('truncate', ['-s', '128M', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-I', '128', image], { stdio: 'ignore' });
  mountPoint = join(dir, 'mnt');
  mkdirSync(mountPoint);
  execFileSync('mount', ['-o', 'loop', image, mountPoint]);
  chmodSync(mountPoint, 0o755);
  root = join(mountPoint, 'sites');
  mkdirSync(root);
  chownSync(root, uidOf(sshd.user), gidOf(sshd.user));
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
  if (mountPoint) spawnSync('umount', ['-l', mountPoint]);
});

const uidOf = (user: string) => Number(execFileSync('id', ['-u', user]).toString().trim());
const gidOf = (user: string) => Number(execFileSync('id', ['-g', user]).toString().trim());
const newSite = () => join(root, `site${++sites}`);
const deploy = (site: string, release: string, upload: string, build = '') => runTagflip(sshd, site, '', { release, upload, ...(build ? { build } : {}) });

/** Run `script` with sh as `user`, from /. */
function as(user: string, script: string): void {
  const run = spawnSync('runuser', ['-u', user, '--', 'sh', '-c', script], { cwd: '/', encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`as ${user}: ${script}: ${run.stderr}`);
}

/** What the release should be: the upload, with the build run in a copy of it (as the host's build runs in the release). */
function expected(tree: string, build = ''): string {
  const copy = join(openTempDir('tagflip-expected-'), 'release');
  cpSync(tree, copy, { recursive: true, verbatimSymlinks: true });
  if (build) execFileSync('sh', ['-c', build], { cwd: copy });
  return copy;
}

/** Every entry's name (as bytes), type, mode and owner, then diff -r of the contents: both must be the same. */
function sameTree(release: string, want: string): void {
  const list = (dir: string, owner: boolean) =>
    spawnSync('sh', ['-c', `cd "$1" && find . -mindepth 1 -printf '%P %y %m${owner ? ' %u' : ''}\\0' | LC_ALL=C sort -z | tr '\\0' '\\n'`, 'sh', dir], { encoding: 'latin1' }).stdout;
  const owned = list(release, true);
  // Everything in the release is the deploy user's: nothing another user made came along.
  expect(owned.split('\n').filter((line) => line && !line.endsWith(` ${sshd.user}`))).toEqual([]);
  expect(list(release, false)).toBe(list(want, false));
  const diff = spawnSync('diff', ['-r', '--no-dereference', want, release], { encoding: 'latin1' });
  expect(diff.stdout).toBe('');
  expect(diff.status).toBe(0);
}

test('the sites are on a file system whose timestamps are whole seconds', () => {
  const site = newSite();
  mkdirSync(site);
  writeFileSync(join(site, 'probe'), 'x');
  expect(execFileSync('stat', ['-c', '%z', join(site, 'probe')]).toString()).toMatch(/\.000000000 /);
});

test('a build that appends to an uploaded file and rewrites another in place (same size, same second): six re-deploys, each the upload plus one build', async () => {
  const tree = openTempDir('tagflip-evidence-');
  writeFileSync(join(tree, 'a.txt'), 'a, never touched\n');
  writeFileSync(join(tree, 'b.txt'), 'b, appended to by every build\n');
  writeFileSync(join(tree, 'c.txt'), 'c, rewritten in place\n');
  mkdirSync(join(tree, 'sub'));
  writeFileSync(join(tree, 'sub/d.txt'), 'd, never touched\n');
  const build = 'echo built >> b.txt && printf C | dd of=c.txt bs=1 seek=0 conv=notrunc 2>/dev/null';
  const want = expected(tree, build);
  const site = newSite();
  for (const release of ['v1', 'v2', 'v3', 'v4', 'v5', 'v6']) {
    const { host, log } = await deploy(site, release, tree, build);
    expect(host.error).toBe('');
    sameTree(join(site, 'releases', release), want);
    // The files no build touched are still reused: the evidence holds on this file system too.
    if (release !== 'v1') expect(log).toMatch(/: 4 files \(2 unchanged, copied on the host\)/);
  }
  expect(readFileSync(join(site, 'releases/v6/b.txt'), 'utf8')).toBe('b, appended to by every build\nbuilt\n');
}, 120_000);

test('a build that moves a directory in: the next re-deploy has the uploaded files, not the moved ones', async () => {
  const tree = openTempDir('tagflip-evidence-');
  mkdirSync(join(tree, 'static'));
  writeFileSync(join(tree, 'static/app.js'), 'uploaded app.js\n');
  writeFileSync(join(tree, 'index.html'), '<p>index</p>\n');
  const site = newSite();
  const prebuilt = `${site}-prebuilt`;
  // Made well before the deploy: its files' change times predate anything the deploy writes.
  as(sshd.user, `mkdir "${prebuilt}" && echo 'prebuilt app.js, stale' > "${prebuilt}/app.js"`);
  const build = `rm -rf static && mv "${prebuilt}" static`;
  expect((await deploy(site, 'v1', tree, build)).host.error).toBe('');
  expect(readFileSync(join(site, 'releases/v1/static/app.js'), 'utf8')).toBe('prebuilt app.js, stale\n');
  expect((await deploy(site, 'v2', tree)).host.error).toBe('');
  sameTree(join(site, 'releases/v2'), expected(tree));
}, 60_000);

test('another user replaces a directory inside an uploaded 0777 one (another app.js, a name that is not UTF-8): no later release has any of it', async () => {
  const tree = openTempDir('tagflip-evidence-');
  mkdirSync(join(tree, 'pub/js'), { recursive: true });
  writeFileSync(join(tree, 'pub/js/app.js'), 'uploaded app.js\n');
  writeFileSync(join(tree, 'pub/js/lib.js'), 'uploaded lib.js\n');
  writeFileSync(join(tree, 'top.txt'), 'top\n');
  chmodSync(join(tree, 'pub'), 0o777);
  const site = newSite();
  expect((await deploy(site, 'v1', tree)).host.error).toBe('');
  const pub = join(site, 'releases/v1/pub');
  as(SPY, `cd "${pub}" && mv js js.old && mkdir js && echo 'a payload of another size' > js/app.js && cp js.old/lib.js js/lib.js && printf '<?php' > "js/shell$(printf '\\377').php"`);
  expect(spawnSync('ls', [join(pub, 'js')], { encoding: 'latin1' }).stdout).toContain('shell\xff.php');

  const v2 = await deploy(site, 'v2', tree);
  expect(v2.host.error).toBe('');
  sameTree(join(site, 'releases/v2'), expected(tree));
  // What another user can write is never reused: sent again. top.txt is reused.
  expect(v2.log).toMatch(/: 3 files \(1 unchanged, copied on the host\)/);

  writeFileSync(join(tree, 'pub/js/app.js'), 'uploaded app.js, v3\n');
  expect((await deploy(site, 'v3', tree)).host.error).toBe('');
  sameTree(join(site, 'releases/v3'), expected(tree));
}, 60_000);

test('a build that writes a name that is not UTF-8, then the deploy user swaps a directory for a symlink: the next release is the upload', async () => {
  const tree = openTempDir('tagflip-evidence-');
  mkdirSync(join(tree, 'keep'));
  writeFileSync(join(tree, 'keep/a.txt'), 'a\n');
  mkdirSync(join(tree, 'static'));
  writeFileSync(join(tree, 'static/s.txt'), 'uploaded s.txt\n');
  const build = `printf cache > "keep/cache$(printf '\\377').bin"`;
  const site = newSite();
  expect((await deploy(site, 'v1', tree, build)).host.error).toBe('');
  sameTree(join(site, 'releases/v1'), expected(tree, build));
  const elsewhere = `${site}-elsewhere`;
  as(sshd.user, `mkdir "${elsewhere}" && echo 'not uploaded' > "${elsewhere}/s.txt" && cd "${site}/releases/v1" && mv static static.real && ln -s "${elsewhere}" static`);

  const v2 = await deploy(site, 'v2', tree);
  expect(v2.host.error).toBe('');
  sameTree(join(site, 'releases/v2'), expected(tree));
  expect(v2.log).toMatch(/: 2 files \(1 unchanged, copied on the host\)/);
}, 60_000);
