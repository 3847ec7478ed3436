/**
 * Issue 4 in the flip and prune scripts, run for real in /bin/sh against
 * temporary directories: the flip script flipping data/current before current
 * (and back when the code flip fails), the prune script removing data
 * releases but never data/current's, and (issue 21) data never copied,
 * flipped or removed through a link planted in the data tree.
 */
import { describe, expect, test } from '@jest/globals';
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from '../../src/core/manifest.js';
import { type ScriptContext, renderDiscardScript, renderFlipScript, renderPruneScript } from '../../src/remote/scripts.js';
import { history, manifest } from './host-facts.js';
import { ISO_TIME, runSh as run, scriptContext as context } from './script-runner.js';
import { build, fresh, historyLines, list, makeTree, read, record } from './shared-data-fixtures.js';

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
  // data/releases/<tag>, which is what data/current points to (see the migrate step in shared-data-scripts.test.ts).
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
      ...history.prunedWithData(['v1'], ['d1', 'd2']),
      time: expect.stringMatching(ISO_TIME),
      runUrl: 'https://github.com/o/r/actions/runs/42',
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
