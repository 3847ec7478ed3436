import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../../src/commands/run.js';
import { DRIFT_SHOWN } from '../../src/core/drift.js';
import { hostRows, renderStatus, renderSummary } from '../../src/core/result.js';
import { parseSettings } from '../../src/core/settings.js';
import { deployRootFor, gitRepoWithTags, openTempDir, recordingLogger, runTagflip } from '../support/fixtures.js';
import { hostFile } from '../support/host-files.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

// Drift (issue 25): the content recorded at the end of a build, compared by
// `status` with `drift: true`, over SSH to a real sshd.
let sshd: TestSshd;
let repo: string;
let root: string;
let sites = 0;

beforeAll(async () => {
  sshd = await startSshd();
  repo = gitRepoWithTags(['v1', 'v2'], sshd.user);
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

const newSite = () => join(root, `site${++sites}`);
const run = (site: string, inputs: Record<string, string>) => runTagflip(sshd, site, repo, inputs);
const status = (site: string, inputs: Record<string, string> = {}) => run(site, { command: 'status', drift: 'true', ...inputs });
/** Files written here as root stay readable by the deploy user (umask 022). */
const asRoot = (script: string, dir: string) => execFileSync('sh', ['-c', script, 'sh'], { cwd: dir });

// The build writes a file whose name is not UTF-8 (caf\xe9) and a link; var/log is shared.
const BUILD = 'printf "latin-1 name\\n" > "$(printf "caf\\351")" && ln -s version version-link && mkdir -p var/cache';

test('a release as deployed is clean; changed, added and removed paths are named, with links and a non-UTF-8 name, never through shared/', async () => {
  const site = newSite();
  expect((await run(site, { release: 'v1', build: BUILD, 'shared-dirs': 'var/log' })).result.status).toBe('deployed');
  // The record is private, like the rest of .tagflip.
  expect(statSync(join(site, '.tagflip')).mode & 0o777).toBe(0o700);
  expect(statSync(join(site, '.tagflip/releases/v1.tree')).isFile()).toBe(true);

  const clean = await status(site);
  expect(clean.result.ok).toBe(true);
  expect(clean.host.report?.drift).toMatchObject({ state: 'clean', release: 'v1', added: { count: 0 }, changed: { count: 0 }, removed: { count: 0 } });
  expect(renderStatus(clean.host)).toContain('  drift: v1 is as deployed');

  const release = join(site, 'releases/v1');
  writeFileSync(join(release, 'version'), 'hot fix\n');
  asRoot('printf "edited\\n" > "$(printf "caf\\351")"', release);
  writeFileSync(join(release, 'added.txt'), 'new\n');
  unlinkSync(join(release, 'build.sh'));
  unlinkSync(join(release, 'version-link'));
  symlinkSync('built', join(release, 'version-link'));
  mkdirSync(join(release, 'new-dir'));
  writeFileSync(join(release, 'var/cache/page.html'), 'cached\n');
  // Written through the shared link: the link is unchanged, and it is never followed.
  writeFileSync(join(site, 'shared/var/log/app.log'), 'logged\n');

  const drifted = await status(site, { 'drift-ignore': 'var/cache/\n# comments are skipped\n' });
  expect(drifted.result.ok).toBe(true);
  const drift = drifted.host.report!.drift!;
  expect(drift.state).toBe('drifted');
  expect(drift.added).toEqual({ count: 2, paths: ['added.txt', 'new-dir/'] });
  expect(drift.changed).toEqual({ count: 3, paths: ['caf\\xe9', 'version', 'version-link'] });
  expect(drift.removed).toEqual({ count: 1, paths: ['build.sh'] });
  expect(drift.ignored).toBe(1);
  const lines = renderStatus(drifted.host);
  expect(lines).toContain('  drift: v1: 2 added, 3 changed, 1 removed (1 ignored by drift-ignore)');
  expect(lines).toContain('    changed version-link');
  expect(drifted.log).toContain('group: drift');
  expect(hostRows(drifted.result.hosts)[0]).toMatchObject({ drift: { state: 'drifted', release: 'v1', removed: { count: 1, paths: ['build.sh'] } } });
  const summary = renderSummary(drifted.result, 'tagflip status');
  expect(summary).toContain('#### Drift');
  expect(summary).toContain('2 added, 3 changed, 1 removed');
  expect(summary).toContain('- removed build.sh');
});

test('a release deployed without a record says "no record"; counts are whole, paths stop at 50', async () => {
  const site = newSite();
  expect((await run(site, { release: 'v1', 'drift-record': 'false' })).result.status).toBe('deployed');
  const none = await status(site);
  expect(none.result.ok).toBe(true);
  expect(none.host.report?.drift).toMatchObject({ state: 'no record', release: 'v1' });
  expect(renderStatus(none.host).join('\n')).toContain('drift: no record for v1');

  expect((await run(site, { release: 'v2' })).result.status).toBe('deployed');
  asRoot('i=0; while [ $i -lt 60 ]; do echo $i > "f$i"; i=$((i + 1)); done', join(site, 'releases/v2'));
  const many = (await status(site)).host.report!.drift!;
  expect(many.added.count).toBe(60);
  expect(many.added.paths).toHaveLength(DRIFT_SHOWN);
  expect(renderStatus((await status(site)).host)).toContain('    … and 10 more added');

  // A release directory replaced by hand keeps its name but not its record's content.
  rmSync(join(site, 'releases/v2'), { recursive: true });
  renameSync(join(site, 'releases/v1'), join(site, 'releases/v2'));
  const replaced = (await status(site)).host.report!.drift!;
  expect(replaced.state).toBe('drifted');
});

test('status without drift does not compare; with no current release drift says so', async () => {
  const site = newSite();
  mkdirSync(site, { recursive: true });
  execFileSync('chown', [sshd.user, site]);
  const empty = await status(site);
  expect(empty.host.report?.drift).toMatchObject({ state: 'no current' });
  expect((await run(site, { release: 'v1' })).result.status).toBe('deployed');
  const plain = await run(site, { command: 'status' });
  expect(plain.host.report?.drift).toBeUndefined();
  expect(plain.log).not.toContain('group: drift');
});

test('an uploaded release is recorded too, with what its build added', async () => {
  const site = newSite();
  const tree = join(root, `upload${sites}`);
  mkdirSync(join(tree, 'app'), { recursive: true });
  writeFileSync(join(tree, 'app/main.py'), 'print(1)\n');
  execFileSync('chmod', ['-R', 'a+rX', tree]);
  const deployed = await run(site, { release: 'u1', repository: '', upload: tree, build: 'echo compiled > app/main.pyc' });
  expect(deployed.result.status).toBe('deployed');
  expect((await status(site)).host.report?.drift).toMatchObject({ state: 'clean', release: 'u1' });
  writeFileSync(join(site, 'releases/u1/app/main.pyc'), 'recompiled\n');
  writeFileSync(join(site, 'releases/u1/app/main.py'), 'print(2)\n');
  const drift = (await status(site, { 'drift-ignore': '*.pyc' })).host.report!.drift!;
  expect(drift).toMatchObject({ state: 'drifted', changed: { count: 1, paths: ['app/main.py'] }, ignored: 1 });
});

/** An upload deploy with the debug lines in its log (where the record says how it was made). */
async function uploadWithDebug(site: string, release: string, tree: string, build: string, inputs: Record<string, string> = {}) {
  const logger = recordingLogger();
  logger.debug = (message) => logger.lines.push(`debug: ${message}`);
  const settings = parseSettings({
    hosts: `${sshd.user}@${sshd.host}:${sshd.port}`,
    'private-key': sshd.privateKey,
    'known-hosts': sshd.knownHosts,
    'deploy-path': site,
    release,
    upload: tree,
    build,
    ...inputs,
  });
  const result = await runCommand(settings, logger);
  return { result, log: logger.text() };
}

/** The record tree-list.sh makes of `release` reading every file (no content list), here, as root. */
function fullRecord(release: string): Buffer {
  const out = join(openTempDir('tagflip-full-record-'), 'tree');
  execFileSync('sh', ['-c', `${hostFile('tree-list.sh')}\ntf_tree_list "$1" "$2"`, 'sh', release, out]);
  return readFileSync(out);
}

// Appends to one uploaded file, rewrites another in place with the same size,
// adds a file, removes one, replaces one by a symlink, writes a name that is not UTF-8.
const CHANGING_BUILD = [
  'printf "more\\n" >> app/append.log',
  'printf "BBBB\\n" 1<> app/same-size.txt',
  'printf "new\\n" > app/added.txt',
  'rm app/removed.txt',
  'rm app/to-link.txt && ln -s main.py app/to-link.txt',
  'printf "latin-1\\n" > "$(printf "caf\\351")"',
].join(' && ');

function uploadTree(): string {
  const tree = join(root, `upload-tree${++sites}`);
  mkdirSync(join(tree, 'app/static'), { recursive: true });
  writeFileSync(join(tree, 'app/main.py'), 'print(1)\n');
  writeFileSync(join(tree, 'app/append.log'), 'first\n');
  writeFileSync(join(tree, 'app/same-size.txt'), 'aaaa\n');
  writeFileSync(join(tree, 'app/removed.txt'), 'removed by the build\n');
  writeFileSync(join(tree, 'app/to-link.txt'), 'replaced by a link\n');
  writeFileSync(join(tree, 'café.txt'), 'utf-8 name\n');
  for (let i = 0; i < 20; i++) writeFileSync(join(tree, `app/static/s${i}.css`), `.c${i} {}\n`);
  symlinkSync('main.py', join(tree, 'app/link'));
  execFileSync('chmod', ['-R', 'a+rX', tree]);
  return tree;
}

test('an upload is recorded from its content list for the files still as uploaded, and only what the build wrote is read: the record is the full read, byte for byte', async () => {
  const site = newSite();
  const tree = uploadTree();
  const deployed = await uploadWithDebug(site, 'u1', tree, CHANGING_BUILD);
  expect(deployed.result.hosts[0].status).toBe('deployed');
  // main.py, café.txt and the 20 stylesheets are as uploaded; the build wrote 4 files.
  expect(deployed.log).toMatch(/debug: .*recorded the content of releases\/u1: 4 files hashed, 22 still as uploaded/);
  const recorded = readFileSync(join(site, '.tagflip/releases/u1.tree'));
  expect(recorded.equals(fullRecord(join(site, 'releases/u1')))).toBe(true);
  expect(recorded.toString('latin1')).toContain(' caf\xe9\0');
  expect((await status(site)).host.report?.drift).toMatchObject({ state: 'clean', release: 'u1' });

  // The next deploy of the same tree: the host copies what did not change, and records it the same way.
  const again = await uploadWithDebug(site, 'u2', tree, CHANGING_BUILD);
  expect(again.result.hosts[0].status).toBe('deployed');
  expect(again.log).toMatch(/debug: .*recorded the content of releases\/u2: 4 files hashed, 22 still as uploaded/);
  expect(readFileSync(join(site, '.tagflip/releases/u2.tree')).equals(fullRecord(join(site, 'releases/u2')))).toBe(true);
});

test('without the identity record of the upload (as when the clock never moved past it), every file is read', async () => {
  const site = newSite();
  const tree = uploadTree();
  const build = `${CHANGING_BUILD} && rm "../../.tagflip/releases/$TAGFLIP_RELEASE.ids"`;
  const deployed = await uploadWithDebug(site, 'u1', tree, build);
  expect(deployed.result.hosts[0].status).toBe('deployed');
  expect(deployed.log).toMatch(/debug: .*recorded the content of releases\/u1: 26 files hashed, 0 still as uploaded/);
  expect(readFileSync(join(site, '.tagflip/releases/u1.tree')).equals(fullRecord(join(site, 'releases/u1')))).toBe(true);
});

test('an upload with no build takes the identities its upload step listed as the ones now: linked shared paths and all, the record is the full read, and a change after it is drift', async () => {
  const site = newSite();
  const tree = uploadTree();
  mkdirSync(join(tree, 'var/log'), { recursive: true });
  writeFileSync(join(tree, 'var/log/shipped.log'), 'replaced by the shared directory\n');
  writeFileSync(join(tree, 'app/settings.env'), 'seeds shared/app/settings.env\n');
  execFileSync('chmod', ['-R', 'a+rX', tree]);
  const deployed = await uploadWithDebug(site, 'u1', tree, '', { 'shared-dirs': 'var/log', 'shared-files': 'app/settings.env' });
  expect(deployed.result.hosts[0].status).toBe('deployed');
  // 28 files uploaded; var/log (with shipped.log) and app/settings.env are links into shared/ now: 26 files, none read.
  expect(deployed.log).toMatch(/debug: .*recorded the content of releases\/u1: 0 files hashed, 26 still as uploaded/);
  const recorded = readFileSync(join(site, '.tagflip/releases/u1.tree'));
  expect(recorded.equals(fullRecord(join(site, 'releases/u1')))).toBe(true);
  expect(recorded.toString('latin1')).toContain(`l 777 ${join(site, 'shared/var/log').length} - var/log//${join(site, 'shared/var/log')}\0`);
  expect((await status(site)).host.report?.drift).toMatchObject({ state: 'clean', release: 'u1' });
  writeFileSync(join(site, 'releases/u1/app/static/s3.css'), '.changed {}\n');
  expect((await status(site)).host.report?.drift).toMatchObject({ state: 'drifted', changed: { count: 1, paths: ['app/static/s3.css'] } });
});
