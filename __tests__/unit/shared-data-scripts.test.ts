/**
 * Issue 4 in the remote scripts, run for real in /bin/sh against temporary
 * directories: the build script's shared and migrate steps, the flip script
 * flipping data/current before current, and the prune script removing data
 * releases. No git: the scripts are rendered with repository '', and a test
 * that needs "what the checkout brought" copies a fixture into the new release
 * right before the shared step (see withCheckout).
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type Manifest, parseHistoryEntry, parseManifest } from '../../src/core/manifest.js';
import { type ScriptContext, renderBuildScript, renderDiscardScript, renderFlipScript, renderPruneScript } from '../../src/remote/scripts.js';
import { quote } from '../../src/remote/shell.js';
import { history, manifest } from './host-facts.js';
import { type ShRun as Run, runSh as run, scriptContext as context } from './script-runner.js';

const READY = /^ready \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ $/;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

const root = mkdtempSync(join(tmpdir(), 'tagflip-shared-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A fresh, empty directory. */
function fresh(name = 'site'): string {
  count += 1;
  const path = join(root, `${name}-${count}`);
  mkdirSync(path);
  return path;
}




const SHARED_STEP = '\nif [ -n "$tf_shared_dirs$tf_shared_files" ]; then\n';

/**
 * The build script with "the checkout" put in place: `checkout` is copied
 * (cp -a: symlinks stay symlinks) into the new release right after the source
 * step, where git's export would have put it.
 */
function withCheckout(text: string, checkout: string): string {
  expect(text.split(SHARED_STEP)).toHaveLength(2);
  return text.replace(SHARED_STEP, `\ncp -a -- ${quote(`${checkout}/.`)} "$tf_release_path/" || exit 99${SHARED_STEP}`);
}

/** A directory tree: path -> file content, or { link } for a symlink. */
type Tree = Record<string, string | { link: string }>;

function makeTree(base: string, tree: Tree): string {
  mkdirSync(base, { recursive: true });
  for (const [path, entry] of Object.entries(tree)) {
    mkdirSync(dirname(join(base, path)), { recursive: true });
    if (typeof entry === 'string') writeFileSync(join(base, path), entry);
    else symlinkSync(entry.link, join(base, path));
  }
  return base;
}

/** Build `release` in deploy-path `path`; `checkout` is what the source step brought. */
function build(path: string, changes: Partial<ScriptContext> = {}, checkout: Tree = {}): Run {
  const ctx = context(path, changes);
  const text = renderBuildScript(ctx, manifest(ctx.release, 'building', ctx.previousRelease)).text;
  return run(withCheckout(text, makeTree(fresh('checkout'), checkout)));
}

const read = (path: string) => readFileSync(path, 'utf8');
const isLink = (path: string) => lstatSync(path).isSymbolicLink();
const record = (path: string, release: string) => parseManifest(read(join(path, `.tagflip/releases/${release}.json`)));
const historyLines = (path: string) =>
  read(join(path, '.tagflip/history.jsonl'))
    .split('\n')
    .filter(Boolean)
    .map((line) => parseHistoryEntry(line));
const list = (path: string) => (existsSync(path) ? readdirSync(path).sort() : []);

describe('build script: the shared step', () => {
  test('shared dirs are created under shared/ on first use and linked into the release, replacing what the checkout had there', () => {
    const path = fresh();
    const result = build(path, { sharedDirs: ['var/log', 'var/mailout'] }, { 'var/log/old.log': 'from git\n', 'app.py': 'print(1)\n' });
    expect([result.code, result.texts]).toEqual([0, ['step prepare', 'step source', 'step shared', 'step build', expect.stringMatching(READY)]]);
    const release = join(path, 'releases/v2');
    expect(readlinkSync(join(release, 'var/log'))).toBe(join(path, 'shared/var/log'));
    expect(readlinkSync(join(release, 'var/mailout'))).toBe(join(path, 'shared/var/mailout'));
    expect(list(join(path, 'shared/var'))).toEqual(['log', 'mailout']);
    expect(list(join(path, 'shared/var/log'))).toEqual([]);
    expect(read(join(release, 'app.py'))).toBe('print(1)\n');
    expect(record(path, 'v2')?.state).toBe('ready');
  });

  test('logs written by v1 through var/log are still there, and appended to, under v2', () => {
    const path = fresh();
    const append = 'echo "$TAGFLIP_RELEASE" >> var/log/app.log';
    expect(build(path, { release: 'v1', previousRelease: '', sharedDirs: ['var/log'], build: append }).code).toBe(0);
    expect(build(path, { release: 'v2', sharedDirs: ['var/log'], build: append }).code).toBe(0);
    expect(read(join(path, 'shared/var/log/app.log'))).toBe('v1\nv2\n');
    for (const release of ['v1', 'v2']) expect(read(join(path, 'releases', release, 'var/log/app.log'))).toBe('v1\nv2\n');
  });

  test('the links are in place before build runs; hooks see TAGFLIP_SHARED_PATH', () => {
    const path = fresh();
    writeFileSync(join(makeTree(join(path, 'shared/etc'), {}), 'app.cfg'), 'secret=1\n');
    const result = build(path, { sharedDirs: ['var/log'], sharedFiles: ['etc/app.cfg'], build: 'readlink var/log; cat etc/app.cfg; echo "$TAGFLIP_SHARED_PATH"' });
    expect(result.output).toEqual([join(path, 'shared/var/log'), 'secret=1', join(path, 'shared')]);
  });

  test('a shared file that exists in shared/ is linked; the checkout’s copy is replaced and the shared one is untouched', () => {
    const path = fresh();
    makeTree(join(path, 'shared'), { 'etc/production.cfg': 'real secrets\n' });
    const result = build(path, { sharedFiles: ['etc/production.cfg'] }, { 'etc/production.cfg': 'example\n', 'etc/other.cfg': 'kept\n' });
    expect(result.code).toBe(0);
    expect(result.texts).not.toContainEqual(expect.stringMatching(/^log /));
    const release = join(path, 'releases/v2');
    expect(readlinkSync(join(release, 'etc/production.cfg'))).toBe(join(path, 'shared/etc/production.cfg'));
    expect(read(join(release, 'etc/production.cfg'))).toBe('real secrets\n');
    expect(read(join(release, 'etc/other.cfg'))).toBe('kept\n');
  });

  test('a shared file missing from shared/ is seeded from the release (mode kept), then linked; a later release does not seed it again', () => {
    const path = fresh();
    const checkout = makeTree(fresh('checkout'), { 'etc/app.cfg': 'seed\n' });
    chmodSync(join(checkout, 'etc/app.cfg'), 0o640);
    const ctx = context(path, { sharedFiles: ['etc/app.cfg'] });
    const first = run(withCheckout(renderBuildScript(ctx, manifest('v2', 'building', 'v1')).text, checkout));
    expect(first.code).toBe(0);
    expect(first.texts).toContain('log seeded shared/etc/app.cfg from the release');
    expect(read(join(path, 'shared/etc/app.cfg'))).toBe('seed\n');
    expect(statSync(join(path, 'shared/etc/app.cfg')).mode & 0o777).toBe(0o640);
    expect(isLink(join(path, 'releases/v2/etc/app.cfg'))).toBe(true);

    const second = build(path, { release: 'v3', previousRelease: 'v2', sharedFiles: ['etc/app.cfg'] }, { 'etc/app.cfg': 'newer example\n' });
    expect(second.code).toBe(0);
    expect(second.texts.filter((line) => line.startsWith('log '))).toEqual([]);
    expect(read(join(path, 'shared/etc/app.cfg'))).toBe('seed\n');
  });

  test('a shared file that neither shared/ nor the release has: the build fails saying where to put it; the release is removed and recorded failed', () => {
    const path = fresh();
    const result = build(path, { sharedFiles: ['etc/app.cfg'], build: 'touch built' });
    const message = `shared file etc/app.cfg does not exist: create ${path}/shared/etc/app.cfg on the host (or ship etc/app.cfg in the release to seed it)`;
    expect([result.code, result.texts]).toEqual([1, ['step prepare', 'step source', 'step shared', `error shared 1 ${message}`]]);
    expect(list(join(path, 'releases'))).toEqual([]);
    expect(existsSync(join(path, 'shared/etc/app.cfg'))).toBe(false);
    expect(record(path, 'v2')).toMatchObject({ state: 'failed', exitCode: 1, failedStep: 'shared', finished: expect.stringMatching(ISO_TIME) });
    expect(historyLines(path).at(-1)).toMatchObject({ event: 'deploy', status: 'failed', release: 'v2' });
  });

  test('a release that brings the shared file only as a symlink does not seed it', () => {
    const path = fresh();
    const outside = makeTree(fresh('outside'), { 'passwd': 'not yours\n' });
    const result = build(path, { sharedFiles: ['etc/app.cfg'] }, { 'etc/app.cfg': { link: join(outside, 'passwd') } });
    expect(result.code).toBe(1);
    expect(result.texts.at(-1)).toMatch(/^error shared 1 shared file etc\/app\.cfg does not exist: /);
    expect(existsSync(join(path, 'shared/etc/app.cfg'))).toBe(false);
  });

  test.each([
    ['a shared dir under a symlinked top directory', { sharedDirs: ['var/log'] }, 'var', 'var/log'],
    ['a shared dir under a symlinked inner directory', { sharedDirs: ['a/b/c'] }, 'a/b', 'a/b/c'],
    ['a shared file to seed under a symlinked directory', { sharedFiles: ['etc/app.cfg'] }, 'etc', 'etc/app.cfg'],
  ])('%s is refused; nothing is written through the link', (_what, changes, linked, entry) => {
    const path = fresh();
    const outside = makeTree(fresh('outside'), { 'app.cfg': 'outside\n' });
    const result = build(path, changes, { [linked]: { link: outside } });
    expect([result.code, result.texts.at(-1)]).toEqual([1, `error shared 1 ${linked} in the release is a symlink; tagflip will not link ${entry} through it`]);
    expect(list(outside)).toEqual(['app.cfg']);
    expect(read(join(outside, 'app.cfg'))).toBe('outside\n');
    expect(existsSync(join(path, 'shared/etc/app.cfg'))).toBe(false);
    expect(list(join(path, 'releases'))).toEqual([]);
  });

  test('a shared file that exists in shared/ under a symlinked directory of the release is refused too', () => {
    const path = fresh();
    makeTree(join(path, 'shared'), { 'etc/app.cfg': 'shared\n' });
    const outside = fresh('outside');
    const result = build(path, { sharedFiles: ['etc/app.cfg'] }, { etc: { link: outside } });
    expect(result.texts.at(-1)).toBe('error shared 1 etc in the release is a symlink; tagflip will not link etc/app.cfg through it');
    expect(list(outside)).toEqual([]);
  });

  test('without shared paths there is no shared step, and no shared/ directory', () => {
    const path = fresh();
    const result = build(path, {}, { 'var/log/x': '' });
    expect(result.texts.slice(0, 3)).toEqual(['step prepare', 'step source', 'step build']);
    expect(existsSync(join(path, 'shared'))).toBe(false);
    expect(isLink(join(path, 'releases/v2/var/log'))).toBe(false);
  });
});

describe('build script: the migrate step', () => {
  /** data/releases/<name> for each tree, data/current -> releases/<current>. */
  function data(path: string, releases: Record<string, Tree>, current: string): string {
    const dataPath = join(path, 'data');
    for (const [name, tree] of Object.entries(releases)) makeTree(join(dataPath, 'releases', name), tree);
    if (current) symlinkSync(`releases/${current}`, join(dataPath, 'current'));
    return dataPath;
  }

  test('the first deploy with migrate: no data/current yet, so an empty directory is migrated in data/releases/<tag>; data/current is left to the flip', () => {
    const path = fresh();
    const migrate = 'pwd; echo "$TAGFLIP_DATA_PATH"; ls -A "$TAGFLIP_DATA_PATH" | wc -l; echo schema-1 > "$TAGFLIP_DATA_PATH/db"';
    const result = build(path, { release: 'v1', previousRelease: '', migrate });
    expect(result.code).toBe(0);
    expect(result.texts).toEqual([
      'step prepare',
      'step source',
      'step build',
      'step migrate',
      `log no ${path}/data/current yet: migrating an empty data directory`,
      expect.stringMatching(READY),
    ]);
    expect(result.output).toEqual([join(path, 'releases/v1'), join(path, 'data/releases/v1'), '0']);
    expect(read(join(path, 'data/releases/v1/db'))).toBe('schema-1\n');
    expect(existsSync(join(path, 'data/current'))).toBe(false);
    expect(record(path, 'v1')?.state).toBe('ready');
  });

  test('migrate runs on a copy of data/current: the live data release is byte for byte unchanged; the copy keeps modes, times and symlinks', () => {
    const path = fresh();
    const dataPath = data(path, { v1: { db: 'schema-1\n', 'blobs/a': 'blob a\n', 'keep.txt': 'untouched\n', latest: { link: 'blobs/a' } } }, 'v1');
    chmodSync(join(dataPath, 'releases/v1/db'), 0o600);
    utimesSync(join(dataPath, 'releases/v1/keep.txt'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    const migrate = 'echo schema-2 >> "$TAGFLIP_DATA_PATH/db" && rm "$TAGFLIP_DATA_PATH/blobs/a"';
    const result = build(path, { migrate, build: 'echo "build sees $TAGFLIP_DATA_PATH"' });
    expect(result.code).toBe(0);
    expect(result.texts).toEqual(['step prepare', 'step source', 'step build', 'step migrate', expect.stringMatching(READY)]);
    expect(result.output).toEqual([`build sees ${dataPath}/current`]);

    const [live, copy] = [join(dataPath, 'releases/v1'), join(dataPath, 'releases/v2')];
    expect([read(join(live, 'db')), read(join(live, 'blobs/a')), readlinkSync(join(live, 'latest'))]).toEqual(['schema-1\n', 'blob a\n', 'blobs/a']);
    expect(read(join(copy, 'db'))).toBe('schema-1\nschema-2\n');
    expect(existsSync(join(copy, 'blobs/a'))).toBe(false);
    expect(statSync(join(copy, 'db')).mode & 0o777).toBe(0o600);
    expect(statSync(join(copy, 'keep.txt')).mtime.toISOString()).toBe('2001-02-03T04:05:06.000Z');
    expect(readlinkSync(join(copy, 'latest'))).toBe('blobs/a');
    expect(isLink(copy)).toBe(false);
    expect(readlinkSync(join(dataPath, 'current'))).toBe('releases/v1');
  });

  test('migrate fails: the copy and the release are removed, neither link moves, the record says migrate failed with its status', () => {
    const path = fresh();
    const dataPath = data(path, { v1: { db: 'schema-1\n' } }, 'v1');
    mkdirSync(join(path, 'releases/v1'), { recursive: true });
    symlinkSync('releases/v1', join(path, 'current'));
    const result = build(path, { migrate: 'echo broken > "$TAGFLIP_DATA_PATH/db"; echo "evolve: boom"; exit 3' });
    expect([result.code, result.texts.slice(3), result.output]).toEqual([
      1,
      ['step migrate', 'error migrate 3 migrate exited with status 3; data/current and current are unchanged'],
      ['evolve: boom'],
    ]);
    expect(list(join(dataPath, 'releases'))).toEqual(['v1']);
    expect(list(join(path, 'releases'))).toEqual(['v1']);
    expect([readlinkSync(join(dataPath, 'current')), readlinkSync(join(path, 'current'))]).toEqual(['releases/v1', 'releases/v1']);
    expect(read(join(dataPath, 'releases/v1/db'))).toBe('schema-1\n');
    expect(record(path, 'v2')).toMatchObject({ state: 'failed', exitCode: 3, failedStep: 'migrate' });
    expect(historyLines(path).at(-1)).toMatchObject({ event: 'deploy', status: 'failed', release: 'v2', previousRelease: 'v1' });
  });

  test('migrate running longer than command-timeout is stopped (124), with the same clean-up', () => {
    const path = fresh();
    const dataPath = data(path, { v1: { db: 'schema-1\n' } }, 'v1');
    const started = Date.now();
    const result = build(path, { commandTimeout: 1, migrate: 'sleep 20' });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(result.texts.at(-1)).toBe('error migrate 124 migrate ran longer than command-timeout (1 s) and was stopped');
    expect(list(join(dataPath, 'releases'))).toEqual(['v1']);
    expect(record(path, 'v2')).toMatchObject({ state: 'failed', exitCode: 124, failedStep: 'migrate' });
  });

  test('a data copy left by an earlier attempt is replaced, not merged into', () => {
    const path = fresh();
    const dataPath = data(path, { v1: { db: 'schema-1\n' }, v2: { db: 'half-migrated\n', stale: '' } }, 'v1');
    expect(build(path, { migrate: 'true' }).code).toBe(0);
    expect(list(join(dataPath, 'releases/v2'))).toEqual(['db']);
    expect(read(join(dataPath, 'releases/v2/db'))).toBe('schema-1\n');
  });

  test('a build that fails never reaches migrate: no data copy is made', () => {
    const path = fresh();
    const dataPath = data(path, { v1: { db: 'schema-1\n' } }, 'v1');
    const result = build(path, { build: 'exit 2', migrate: 'touch "$TAGFLIP_DATA_PATH/ran"' });
    expect(result.texts.at(-1)).toBe('error build 2 build exited with status 2');
    expect(list(join(dataPath, 'releases'))).toEqual(['v1']);
  });

  test('without migrate, data is not copied and data/ is not touched', () => {
    const path = fresh();
    const result = build(path, { build: 'echo "$TAGFLIP_DATA_PATH"' });
    expect(result.texts).not.toContain('step migrate');
    expect(result.output).toEqual([`${path}/data/current`]);
    expect(existsSync(join(path, 'data'))).toBe(false);
  });

  test('data-path elsewhere: the copy is made there, from its current', () => {
    const path = fresh();
    const elsewhere = fresh('data');
    makeTree(join(elsewhere, 'releases/v1'), { db: 'schema-1\n' });
    symlinkSync('releases/v1', join(elsewhere, 'current'));
    expect(build(path, { dataPath: elsewhere, migrate: 'echo "$TAGFLIP_DATA_PATH"' }).output).toEqual([join(elsewhere, 'releases/v2')]);
    expect(read(join(elsewhere, 'releases/v2/db'))).toBe('schema-1\n');
    expect(existsSync(join(path, 'data'))).toBe(false);
  });

  // The code release being rebuilt can never be current (the prepare step refuses), but nothing
  // checks data/current the same way. After `rollback` with rollback-data: false, current is the
  // older release while data/current still points to data/releases/<the rolled-back release>;
  // deploying that rolled-back release again (planDeploy rebuilds it) makes the migrate step
  // `rm -rf` data/releases/<tag>: the live data. data/current then dangles, so the copy is
  // "migrated" from an empty directory and flipped in.
  test('the migrate step never removes the data release data/current points to', () => {
    const path = fresh();
    const dataPath = data(path, { v1: { db: 'schema-1\n' }, v2: { db: 'schema-2 with a week of live writes\n' } }, 'v2');
    mkdirSync(join(path, 'releases/v1'), { recursive: true });
    symlinkSync('releases/v1', join(path, 'current'));
    build(path, { migrate: 'true' });
    expect(read(join(dataPath, 'releases/v2/db'))).toBe('schema-2 with a week of live writes\n');
  });

  // "The first deploy with migrate and no data/current starts from an empty data directory." A
  // data/current that exists as a link to nothing (a data release removed by hand, a volume not
  // mounted) is not "no data/current", but the step tests it with `[ -e ]`, logs "no data/current
  // yet" and migrates an empty directory, which the flip then makes live.
  test('a dangling data/current is not taken for a first deploy: no empty data is migrated', () => {
    const path = fresh();
    mkdirSync(join(path, 'data/releases'), { recursive: true });
    symlinkSync('/mnt/not-mounted/app-data', join(path, 'data/current'));
    const result = build(path, { migrate: 'true' });
    expect(result.code).toBe(1);
    expect(existsSync(join(path, 'data/releases/v2'))).toBe(false);
  });
});

describe('flip script: data/current first, then current', () => {
  /** releases v1, v2 and data releases v1, v2; current and data/current -> v1. */
  function site(): { path: string; dataPath: string; v1: Manifest; v2: Manifest } {
    const path = fresh();
    const dataPath = join(path, 'data');
    for (const release of ['v1', 'v2']) {
      mkdirSync(join(path, 'releases', release), { recursive: true });
      mkdirSync(join(dataPath, 'releases', release), { recursive: true });
    }
    symlinkSync('releases/v1', join(path, 'current'));
    symlinkSync('releases/v1', join(dataPath, 'current'));
    const v1 = manifest('v1', 'active', '', { dataRelease: 'v1' });
    const v2 = manifest('v2', 'ready', 'v1', { dataRelease: 'v2' });
    return { path, dataPath, v1, v2 };
  }

  const flip = (path: string, records: Parameters<typeof renderFlipScript>[1], changes: Partial<ScriptContext> = {}) =>
    run(renderFlipScript(context(path, changes), records).text);
  const leftovers = (...dirs: string[]) => dirs.flatMap((dir) => readdirSync(dir).filter((name) => name.startsWith('.current.tagflip-')));

  test('a deploy with migrate: data/current flips to the new data release, then current; records and history are written', () => {
    const { path, dataPath, v1, v2 } = site();
    const result = flip(path, { active: v2, departed: { ...v1, state: 'inactive' }, event: 'deploy', dataTarget: 'v2', dataBefore: 'v1' });
    expect([result.code, result.texts]).toEqual([0, ['step flip', 'data-flipped', 'flipped']]);
    expect([readlinkSync(join(dataPath, 'current')), readlinkSync(join(path, 'current'))]).toEqual(['releases/v2', 'releases/v2']);
    expect(record(path, 'v2')).toEqual({ ...v2, state: 'active', activated: expect.stringMatching(ISO_TIME) });
    expect(record(path, 'v1')).toEqual({ ...v1, state: 'inactive' });
    expect(historyLines(path)).toEqual([{ ...history.deployed('v2', 'v1'), time: expect.stringMatching(ISO_TIME), runUrl: 'https://github.com/o/r/actions/runs/42' }]);
    expect(leftovers(path, dataPath)).toEqual([]);
  });

  test('no data target: data/current is left alone', () => {
    const { path, dataPath, v1, v2 } = site();
    const result = flip(path, { active: v2, departed: v1, event: 'deploy', dataTarget: '', dataBefore: 'v1' });
    expect([result.code, result.texts]).toEqual([0, ['step flip', 'flipped']]);
    expect([readlinkSync(join(dataPath, 'current')), readlinkSync(join(path, 'current'))]).toEqual(['releases/v1', 'releases/v2']);
  });

  test('the first data flip creates data/current', () => {
    const { path, dataPath, v2 } = site();
    rmSync(join(dataPath, 'current'));
    const result = flip(path, { active: v2, departed: null, event: 'deploy', dataTarget: 'v2', dataBefore: '' });
    expect([result.code, result.texts]).toEqual([0, ['step flip', 'data-flipped', 'flipped']]);
    expect(readlinkSync(join(dataPath, 'current'))).toBe('releases/v2');
  });

  test('a rollback flips data back to the target’s data release, then the code', () => {
    const { path, dataPath, v1, v2 } = site();
    for (const name of ['current', 'data/current']) {
      rmSync(join(path, name));
      symlinkSync('releases/v2', join(path, name));
    }
    const result = flip(path, { active: v1, departed: { ...v2, state: 'rolled-back' }, event: 'rollback', dataTarget: 'v1', dataBefore: 'v2' }, { release: 'v1', previousRelease: 'v2' });
    expect([result.code, result.texts]).toEqual([0, ['step flip', 'data-flipped', 'flipped']]);
    expect([readlinkSync(join(dataPath, 'current')), readlinkSync(join(path, 'current'))]).toEqual(['releases/v1', 'releases/v1']);
    expect(record(path, 'v2')?.state).toBe('rolled-back');
    expect(historyLines(path).at(-1)).toMatchObject({ event: 'rollback', status: 'rolled-back', release: 'v1', previousRelease: 'v2' });
  });

  test('the data target is missing: nothing is flipped, nothing is recorded', () => {
    const { path, dataPath, v1, v2 } = site();
    rmSync(join(dataPath, 'releases/v2'), { recursive: true });
    const result = flip(path, { active: v2, departed: v1, event: 'deploy', dataTarget: 'v2', dataBefore: 'v1' });
    expect([result.code, result.texts]).toEqual([1, ['step flip', `error flip 1 ${dataPath}/releases/v2 is missing; nothing was flipped`]]);
    expect([readlinkSync(join(dataPath, 'current')), readlinkSync(join(path, 'current'))]).toEqual(['releases/v1', 'releases/v1']);
    expect(existsSync(join(path, '.tagflip'))).toBe(false);
  });

  test('the code flip fails: data/current is flipped back, both links are as before, no temporary link is left', () => {
    const { path, dataPath, v1, v2 } = site();
    // current is a non-empty directory: rename(2) of a symlink over it fails.
    rmSync(join(path, 'current'));
    makeTree(join(path, 'current'), { 'index.html': '' });
    const result = flip(path, { active: v2, departed: v1, event: 'deploy', dataTarget: 'v2', dataBefore: 'v1' });
    expect([result.code, result.texts]).toEqual([
      1,
      ['step flip', 'data-flipped', `error flip 1 'mv -T' could not replace ${path}/current; current and data/current are unchanged`],
    ]);
    expect(readlinkSync(join(dataPath, 'current'))).toBe('releases/v1');
    expect(list(join(path, 'current'))).toEqual(['index.html']);
    expect(leftovers(path, dataPath)).toEqual([]);
    expect(existsSync(join(path, '.tagflip'))).toBe(false);
  });

  // On the first deploy with migrate there is no data/current before (dataBefore ''), so a code
  // flip that fails cannot flip data back: it reports "current … is unchanged" but leaves the
  // new data/current behind. The next attempt of the same release then removes
  // data/releases/<tag>, which is what data/current points to (see the migrate step above).
  test('the code flip fails on the first data flip: no data/current is left behind', () => {
    const { path, dataPath, v2 } = site();
    rmSync(join(dataPath, 'current'));
    rmSync(join(path, 'current'));
    makeTree(join(path, 'current'), { 'index.html': '' });
    const result = flip(path, { active: v2, departed: null, event: 'deploy', dataTarget: 'v2', dataBefore: '' });
    expect(result.code).toBe(1);
    expect(lstatSync(join(dataPath, 'current'), { throwIfNoEntry: false })).toBeUndefined();
  });
});

describe('prune script: data releases', () => {
  /** releases v1..v3 (current v3) and data releases d1..d3 (data/current -> `dataCurrent`). */
  function site(dataCurrent = 'releases/d3', dataPath = ''): { path: string; dataPath: string } {
    const path = fresh();
    const data = dataPath || join(path, 'data');
    for (const release of ['v1', 'v2', 'v3']) {
      makeTree(join(path, 'releases', release), { 'app.py': '' });
      makeTree(join(path, '.tagflip/releases'), { [`${release}.json`]: JSON.stringify(manifest(release, release === 'v3' ? 'active' : 'inactive')) });
    }
    for (const release of ['d1', 'd2', 'd3', 'v1']) makeTree(join(data, 'releases', release), { db: release });
    symlinkSync('releases/v3', join(path, 'current'));
    symlinkSync(dataCurrent, join(data, 'current'));
    return { path, dataPath: data };
  }

  const prune = (path: string, remove: string[], removeData: string[], changes: Partial<ScriptContext> = {}) =>
    run(renderPruneScript(context(path, { release: '', previousRelease: '', ...changes }), remove, removeData).text);

  test('removes the listed data releases after the code releases, and names both in one history line', () => {
    const { path, dataPath } = site();
    const result = prune(path, ['v1'], ['d1', 'd2']);
    expect([result.code, result.texts]).toEqual([0, ['step prune', 'removed v1', 'removed-data d1', 'removed-data d2']]);
    expect(list(join(path, 'releases'))).toEqual(['v2', 'v3']);
    expect(list(join(dataPath, 'releases'))).toEqual(['d3', 'v1']);
    expect(JSON.parse(read(join(path, '.tagflip/history.jsonl')))).toEqual({
      time: expect.stringMatching(ISO_TIME),
      event: 'prune',
      status: 'pruned',
      release: '',
      previousRelease: '',
      host: 'deploy@web1',
      actor: 'octocat',
      runUrl: 'https://github.com/o/r/actions/runs/42',
      removed: ['v1'],
      removedData: ['d1', 'd2'],
    });
  });

  test('a data release is removed from data/ only; the code release of the same name stays', () => {
    const { path, dataPath } = site();
    expect(prune(path, [], ['v1']).texts).toEqual(['step prune', 'removed-data v1']);
    expect(list(join(path, 'releases'))).toEqual(['v1', 'v2', 'v3']);
    expect(list(join(dataPath, 'releases'))).toEqual(['d1', 'd2', 'd3']);
  });

  test.each([
    ['releases/d3', 'as written by the flip'],
    ['releases/d3/', 'with a trailing slash'],
  ])('asked to remove data/current (-> %s, %s): fails before removing anything, code releases included', (link) => {
    const { path, dataPath } = site(link);
    const result = prune(path, ['v1'], ['d1', 'd3']);
    expect([result.code, result.texts]).toEqual([1, ['step prune', 'error prune 1 refusing to remove data release d3: it is data/current']]);
    expect(list(join(path, 'releases'))).toEqual(['v1', 'v2', 'v3']);
    expect(list(join(dataPath, 'releases'))).toEqual(['d1', 'd2', 'd3', 'v1']);
    expect(existsSync(join(path, '.tagflip/history.jsonl'))).toBe(false);
  });

  test('current and data/current both listed: the code check comes first', () => {
    const { path } = site();
    expect(prune(path, ['v3'], ['d3']).texts).toEqual(['step prune', 'error prune 1 refusing to remove releases/v3: it is current']);
  });

  test('data-path elsewhere is where data releases are removed, and its current is guarded', () => {
    const elsewhere = join(fresh('data'), 'data');
    const { path } = site('releases/d3', elsewhere);
    expect(prune(path, [], ['d1'], { dataPath: elsewhere }).texts).toEqual(['step prune', 'removed-data d1']);
    expect(list(join(elsewhere, 'releases'))).toEqual(['d2', 'd3', 'v1']);
    expect(prune(path, [], ['d3'], { dataPath: elsewhere }).code).toBe(1);
  });

  test('no data/current at all: listed data releases are removed', () => {
    const { path, dataPath } = site();
    rmSync(join(dataPath, 'current'));
    expect(prune(path, [], ['d3']).texts).toEqual(['step prune', 'removed-data d3']);
  });

  // The guard compares the link text with "releases/<name>". data/current made by hand as an
  // absolute link (which the preflight accepts) is not recognised, here nor by readHostFacts (see
  // data.test.ts): the live data release is removed.
  test('data/current written as an absolute link is still never removed', () => {
    const { path, dataPath } = site();
    rmSync(join(dataPath, 'current'));
    symlinkSync(join(dataPath, 'releases/d3'), join(dataPath, 'current'));
    prune(path, [], ['d3']);
    expect(list(join(dataPath, 'releases'))).toContain('d3');
  });
});

// Issue 21: preflight refuses a data-path whose parts are links (other-users-scripts.test.ts);
// the scripts that copy, flip and remove data check again right before they act, so that
// nothing is ever removed, copied or flipped through a link planted since.
describe('data is never copied, flipped or removed through a link', () => {
  /** A tree of the deploy user's that a planted link leads to: `v2/notes`. */
  function victim(): string {
    const dir = makeTree(fresh('victim'), { 'v2/notes': 'precious\n', 'd1/notes': 'precious\n' });
    return dir;
  }
  const untouched = (dir: string) => expect([read(join(dir, 'v2/notes')), read(join(dir, 'd1/notes'))]).toEqual(['precious\n', 'precious\n']);

  test('migrate step: data/releases a link: the build fails before any rm or copy; the release is removed and recorded failed', () => {
    const path = fresh();
    const home = victim();
    mkdirSync(join(path, 'data'));
    symlinkSync(home, join(path, 'data/releases'));
    const result = build(path, { migrate: 'touch "$TAGFLIP_DATA_PATH/migrated"' });
    expect(result.code).toBe(1);
    expect(result.texts.at(-1)).toBe(
      `error migrate 1 ${path}/data/releases is a symlink (to '${home}'): tagflip copies data into it and removes data releases from it, never through a link; make it a directory of its own (move the link aside, mkdir ${path}/data/releases, and move into it the data releases you trust); nothing under ${path}/data was changed`,
    );
    untouched(home);
    expect(list(home)).toEqual(['d1', 'v2']);
    expect(existsSync(join(path, 'releases/v2'))).toBe(false);
    expect(record(path, 'v2')).toMatchObject({ state: 'failed', failedStep: 'migrate' });
  });

  test('migrate step: data/current out of the data tree: nothing copied from there, nothing made', () => {
    const path = fresh();
    const home = victim();
    mkdirSync(join(path, 'data/releases'), { recursive: true });
    symlinkSync(`releases/../../../${home.slice(1)}/d1`, join(path, 'data/current'));
    const result = build(path, { migrate: 'touch "$TAGFLIP_DATA_PATH/migrated"' });
    expect(result.code).toBe(1);
    expect(result.texts.at(-1)).toMatch(new RegExp(`^error migrate 1 ${path}/data/current must be a relative link to releases/<name>, not to '.*': tagflip will not copy`));
    expect(list(join(path, 'data/releases'))).toEqual([]);
    untouched(home);
    expect(list(join(home, 'd1'))).toEqual(['notes']);
  });

  test('flip: a data target reached through a link is not flipped to; neither link moves', () => {
    const path = fresh();
    const home = victim();
    mkdirSync(join(path, 'releases/v2'), { recursive: true });
    mkdirSync(join(path, 'data/releases/v1'), { recursive: true });
    symlinkSync(join(home, 'v2'), join(path, 'data/releases/v2'));
    symlinkSync('releases/v1', join(path, 'data/current'));
    const records = { active: manifest('v2', 'ready', ''), departed: null, event: 'deploy' as const, dataTarget: 'v2', dataBefore: 'v1' };
    const result = run(renderFlipScript(context(path), records).text);
    expect([result.code, result.texts]).toEqual([
      1,
      ['step flip', `error flip 1 ${path}/data/releases/v2 is reached through a symlink; tagflip points data/current only at a data release of its own; nothing was flipped`],
    ]);
    expect(readlinkSync(join(path, 'data/current'))).toBe('releases/v1');
    expect(existsSync(join(path, 'current'))).toBe(false);
  });

  test('prune: data/releases a link: no data release is removed through it, nor any code release', () => {
    const path = fresh();
    const home = victim();
    makeTree(join(path, 'releases/v1'), { 'app.py': '' });
    makeTree(join(path, '.tagflip/releases'), { 'v1.json': JSON.stringify(manifest('v1', 'inactive')) });
    mkdirSync(join(path, 'data'));
    symlinkSync(home, join(path, 'data/releases'));
    const result = run(renderPruneScript(context(path, { release: '', previousRelease: '' }), ['v1'], ['v2', 'd1']).text);
    expect([result.code, result.texts]).toEqual([
      1,
      ['step prune', `error prune 1 ${path}/data/releases is a symlink (to '${home}'): no data release is removed through it, so nothing was removed; make it a directory of its own`],
    ]);
    untouched(home);
    expect(list(join(path, 'releases'))).toEqual(['v1']);
  });

  test('discard: the data copy is not removed through a data/releases link; a warning says so', () => {
    const path = fresh();
    const home = victim();
    mkdirSync(join(path, 'releases/v2'), { recursive: true });
    mkdirSync(join(path, 'data'));
    symlinkSync(home, join(path, 'data/releases'));
    const result = run(renderDiscardScript(context(path), manifest('v2', 'ready', 'v1'), 'v2', 'deploy@web2 failed').text);
    expect(result.texts).toContain(`warning ${path}/data/releases is a symlink: the data copy v2 was not removed through it`);
    untouched(home);
    expect(existsSync(join(path, 'releases/v2'))).toBe(false);
  });
});
