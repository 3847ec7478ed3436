/**
 * The prune and flip scripts run for real in /bin/sh against a temporary
 * deploy-path: prune removes releases and records but never the one current
 * leads to, however current is written; flip rewrites current in the one form
 * tagflip writes and refuses a current outside releases/; a rollback's flip
 * and the records and history line it writes.
 */
import { describe, expect, test } from '@jest/globals';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHistoryEntry, parseManifest } from '../../src/core/manifest.js';
import { renderFlipScript, renderPruneScript } from '../../src/remote/scripts.js';
import { history, manifest } from './host-facts.js';
import { ISO_TIME } from './script-runner.js';
import { context, deployPath, runShell, writeManifest } from './script-shell.js';

describe('prune script', () => {
  /** releases v1, v2, v3 with records, current -> releases/v3 (or `target`, given the path), one history line. */
  function site(target: string | ((path: string) => string) = 'releases/v3'): string {
    const path = deployPath();
    for (const release of ['v1', 'v2', 'v3']) {
      mkdirSync(join(path, 'releases', release), { recursive: true });
      writeFileSync(join(path, 'releases', release, 'app.py'), 'print(1)\n');
      writeManifest(path, manifest(release, release === 'v3' ? 'active' : 'inactive'));
    }
    symlinkSync(typeof target === 'string' ? target : target(path), join(path, 'current'));
    writeFileSync(join(path, '.tagflip/history.jsonl'), `${JSON.stringify(history.deployed('v3', 'v2'))}\n`);
    return path;
  }

  const prune = (path: string, remove: string[]) => runShell(renderPruneScript(context(path, { release: '' }), remove).text);
  const dirs = (path: string) => readdirSync(join(path, 'releases')).sort();
  const records = (path: string) => readdirSync(join(path, '.tagflip/releases')).sort();
  const historyLines = (path: string) => readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8').split('\n').filter(Boolean);

  test('removes the listed releases, directory and record, and appends one history line naming them', async () => {
    const path = site();
    const run = await prune(path, ['v1', 'v2']);
    expect([run.code, run.texts, run.output]).toEqual([0, ['step prune', 'removed v1', 'removed v2'], []]);
    expect(dirs(path)).toEqual(['v3']);
    expect(records(path)).toEqual(['v3.json']);
    const lines = historyLines(path);
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0])).toEqual(history.deployed('v3', 'v2'));
    expect(JSON.parse(lines[1])).toEqual({ ...history.pruned('v1', 'v2'), time: expect.stringMatching(ISO_TIME), runUrl: 'https://github.com/o/r/actions/runs/42' });
    expect(parseHistoryEntry(lines[1])?.removed).toEqual(['v1', 'v2']);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v3');
  });

  test('asked to remove the release current points to: fails before removing anything, writes no history line', async () => {
    const path = site();
    const run = await prune(path, ['v1', 'v3']);
    expect([run.code, run.texts]).toEqual([1, ['step prune', 'error prune 1 refusing to remove releases/v3: it is current']]);
    expect(dirs(path)).toEqual(['v1', 'v2', 'v3']);
    expect(records(path)).toEqual(['v1.json', 'v2.json', 'v3.json']);
    expect(historyLines(path)).toHaveLength(1);
  });

  test('current listed last, after releases that could go: still nothing is removed', async () => {
    const path = site();
    const run = await prune(path, ['v2', 'v1', 'v3']);
    expect(run.code).toBe(1);
    expect(run.texts.at(-1)).toBe('error prune 1 refusing to remove releases/v3: it is current');
    expect(dirs(path)).toEqual(['v1', 'v2', 'v3']);
  });

  test('a failed release (a record without a directory) loses its record', async () => {
    const path = site();
    writeManifest(path, manifest('v4', 'failed'));
    const run = await prune(path, ['v4']);
    // Only its record: no directory is claimed removed.
    expect(run.texts).toEqual(['step prune', 'removed-record v4']);
    expect(records(path)).toEqual(['v1.json', 'v2.json', 'v3.json']);
    expect(dirs(path)).toEqual(['v1', 'v2', 'v3']);
  });

  test('without a history file yet: one is started', async () => {
    const path = site();
    rmSync(join(path, '.tagflip/history.jsonl'));
    await prune(path, ['v1']);
    expect(historyLines(path).map((line) => JSON.parse(line).event)).toEqual(['prune']);
  });

  test('an empty list: nothing is removed and no history line is appended', async () => {
    const path = site();
    const run = await prune(path, []);
    expect([run.code, run.texts]).toEqual([0, ['step prune']]);
    expect(dirs(path)).toEqual(['v1', 'v2', 'v3']);
    expect(historyLines(path)).toHaveLength(1);
  });

  test('the history line has no removedData when no data release goes', async () => {
    const path = site();
    await prune(path, ['v1']);
    expect(JSON.parse(historyLines(path)[1])).toMatchObject({ event: 'prune', status: 'pruned', removed: ['v1'] });
    expect(JSON.parse(historyLines(path)[1])).not.toHaveProperty('removedData');
  });

  // readHostFacts reads `current -> releases/v3/` as release v3; the script's guard strips the
  // trailing slash too, so it refuses as well.
  test('current written with a trailing slash (releases/v3/) is still never removed', async () => {
    const path = site('releases/v3/');
    const run = await prune(path, ['v1', 'v3']);
    expect([run.code, run.texts]).toEqual([1, ['step prune', 'error prune 1 refusing to remove releases/v3: it is current']]);
    expect(dirs(path)).toEqual(['v1', 'v2', 'v3']);
  });

  // The last guard compares real paths, not strings: before, an absolute link
  // passed it, and the release that served was removed.
  test.each<[string, (path: string) => string]>([
    ['absolute', (path) => `${path}/releases/v3`],
    ['./-prefixed', () => './releases/v3'],
    ['absolute with a trailing slash', (path) => `${path}/releases/v3/`],
    ['through a symlink to deploy-path', (path) => {
      symlinkSync(path, `${path}-alias`);
      return `${path}-alias/releases/v3`;
    }],
  ])('current written %s: asked to remove it, nothing is removed', async (_form, target) => {
    const path = site(target);
    const run = await prune(path, ['v1', 'v3']);
    expect([run.code, run.texts]).toEqual([1, ['step prune', 'error prune 1 refusing to remove releases/v3: it is current']]);
    expect(dirs(path)).toEqual(['v1', 'v2', 'v3']);
    expect(records(path)).toEqual(['v1.json', 'v2.json', 'v3.json']);
  });

  test('current written absolute: the releases it does not lead to are removed as planned', async () => {
    const path = site((at) => `${at}/releases/v3`);
    const run = await prune(path, ['v1', 'v2']);
    expect([run.code, run.texts]).toEqual([0, ['step prune', 'removed v1', 'removed v2']]);
    expect(dirs(path)).toEqual(['v3']);
  });

  test('current leading outside releases/: nothing is removed, and the error names the link, its target and the remedy', async () => {
    const elsewhere = deployPath();
    const path = site(elsewhere);
    const run = await prune(path, ['v1']);
    expect([run.code, run.texts]).toEqual([
      1,
      [
        'step prune',
        `error prune 1 ${path}/current points to '${elsewhere}', outside ${path}/releases: nothing was removed, since the release that serves cannot be told (point it at that release: ln -sfn releases/<name> ${path}/current)`,
      ],
    ]);
    expect(dirs(path)).toEqual(['v1', 'v2', 'v3']);
    expect(historyLines(path)).toHaveLength(1);
  });

  test('data/current written absolute: the data release it leads to is never removed', async () => {
    const path = site();
    for (const release of ['d1', 'd2']) mkdirSync(join(path, 'data/releases', release), { recursive: true });
    symlinkSync(`${path}/data/releases/d2/`, join(path, 'data/current'));
    const run = await runShell(renderPruneScript(context(path, { release: '' }), ['v1'], ['d1', 'd2']).text);
    expect([run.code, run.texts]).toEqual([1, ['step prune', 'error prune 1 refusing to remove data release d2: it is data/current']]);
    expect([dirs(path), readdirSync(join(path, 'data/releases')).sort()]).toEqual([['v1', 'v2', 'v3'], ['d1', 'd2']]);
  });

  test('a release whose name only starts like current’s is removed (the guard compares whole names)', async () => {
    const path = site();
    mkdirSync(join(path, 'releases/v3.1'));
    writeManifest(path, manifest('v3.1', 'inactive'));
    const run = await prune(path, ['v3.1']);
    expect([run.code, run.texts]).toEqual([0, ['step prune', 'removed v3.1']]);
    expect(dirs(path)).toEqual(['v1', 'v2', 'v3']);
  });
});

describe('flip script: how current is written before', () => {
  /** releases v1 (current, linked as `target` gives) and v2 (ready), with records. */
  function site(target: (path: string) => string): string {
    const path = deployPath();
    for (const release of ['v1', 'v2']) mkdirSync(join(path, 'releases', release), { recursive: true });
    writeManifest(path, manifest('v1', 'active'));
    writeManifest(path, manifest('v2', 'ready', 'v1'));
    symlinkSync(target(path), join(path, 'current'));
    return path;
  }
  const flip = (path: string) =>
    runShell(renderFlipScript(context(path, { previousRelease: 'v1' }), { active: manifest('v2', 'ready', 'v1'), departed: manifest('v1', 'inactive'), event: 'deploy', dataTarget: '', dataBefore: '' }).text);

  test.each<[string, (path: string) => string]>([
    ['absolute', (path) => `${path}/releases/v1`],
    ['./-prefixed', () => './releases/v1'],
    ['with a trailing slash', () => 'releases/v1/'],
  ])('%s, to a release: flipped, and rewritten in the one form tagflip writes', async (_form, target) => {
    const path = site(target);
    const run = await flip(path);
    expect([run.code, run.texts]).toEqual([0, ['step flip', 'flipped']]);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
  });

  test('leading outside releases/: nothing is flipped, and the error names the link, its target and the remedy', async () => {
    const elsewhere = deployPath();
    const path = site(() => elsewhere);
    const run = await flip(path);
    expect([run.code, run.texts]).toEqual([
      1,
      [
        'step flip',
        `error flip 1 ${path}/current points to '${elsewhere}', outside ${path}/releases; nothing was flipped (point it at the release that serves: ln -sfn releases/<name> ${path}/current)`,
      ],
    ]);
    expect(readlinkSync(join(path, 'current'))).toBe(elsewhere);
    expect(parseManifest(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8'))?.state).toBe('ready');
  });
});

describe('flip script of a rollback, run for real', () => {
  test('current flips to the target; the target is recorded active, the departed release as given; history says rollback', async () => {
    const path = deployPath();
    for (const release of ['v2', 'v3']) mkdirSync(join(path, 'releases', release), { recursive: true });
    symlinkSync('releases/v3', join(path, 'current'));
    const v2 = manifest('v2', 'inactive', 'v1', { finished: '2024-06-01T10:02:00Z' });
    const v3 = manifest('v3', 'active', 'v2', { finished: '2024-06-01T10:03:00Z' });
    writeManifest(path, v2);
    writeManifest(path, v3);
    const ctx = context(path, { release: 'v2', previousRelease: 'v3' });
    const run = await runShell(renderFlipScript(ctx, { active: v2, departed: { ...v3, state: 'rolled-back' }, event: 'rollback', dataTarget: '', dataBefore: '' }).text);
    expect([run.code, run.texts]).toEqual([0, ['step flip', 'flipped']]);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
    expect(parseManifest(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8'))).toEqual({ ...v2, state: 'active', activated: expect.stringMatching(ISO_TIME) });
    expect(parseManifest(readFileSync(join(path, '.tagflip/releases/v3.json'), 'utf8'))).toEqual({ ...v3, state: 'rolled-back' });
    const line = readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8').trim();
    expect(parseHistoryEntry(line)).toEqual({
      time: expect.stringMatching(ISO_TIME),
      event: 'rollback',
      status: 'rolled-back',
      release: 'v2',
      previousRelease: 'v3',
      host: 'deploy@web1',
      actor: 'octocat',
      runUrl: 'https://github.com/o/r/actions/runs/42',
    });
  });
});
