/**
 * Issue 4 in the build script, run for real in /bin/sh against temporary
 * directories: the shared step (shared dirs and files linked into the release,
 * seeded, refused through a symlink) and the migrate step (data copied from
 * data/current, migrated, cleaned up when it fails). The flip and prune of
 * data releases are in data-flip-prune-scripts.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import { chmodSync, existsSync, lstatSync, mkdirSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderBuildScript } from '../../src/remote/scripts.js';
import { manifest } from './host-facts.js';
import { ISO_TIME, runSh as run, scriptContext as context } from './script-runner.js';
import { type Tree, build, fresh, historyLines, list, makeTree, read, record, withCheckout } from './shared-data-fixtures.js';

const READY = /^ready \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ $/;
const isLink = (path: string) => lstatSync(path).isSymbolicLink();

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
