/**
 * The remote side of adoption and of "retention never removes what tagflip has
 * no record of", run for real in /bin/sh against a temporary deploy-path.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { departedRecord } from '../../src/core/adopt.js';
import { readHostFacts } from '../../src/core/facts.js';
import { type Manifest, parseHistoryEntry, parseManifest } from '../../src/core/manifest.js';
import { factsAfterFlip, planPrune, rollbackTarget } from '../../src/core/plan.js';
import { renderFlipScript, renderOpenScript, renderPruneScript } from '../../src/remote/scripts.js';
import { control, manifest } from './host-facts.js';
import { runSh, scriptContext } from './script-runner.js';

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const root = mkdtempSync(join(tmpdir(), 'tagflip-adopt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A site deployed by hand: current -> releases/vhand, releases/old-by-hand, no .tagflip. */
function handSite(): string {
  const path = join(root, `site-${++count}`);
  for (const release of ['vhand', 'old-by-hand']) {
    mkdirSync(join(path, 'releases', release), { recursive: true });
    writeFileSync(join(path, 'releases', release, 'index.html'), `${release}\n`);
  }
  symlinkSync('releases/vhand', join(path, 'current'));
  return path;
}

const writeManifest = (path: string, record: Manifest) => {
  mkdirSync(join(path, '.tagflip/releases'), { recursive: true });
  writeFileSync(join(path, `.tagflip/releases/${record.release}.json`), `${JSON.stringify(record)}\n`);
};

/** The facts the open script reads (no lock; the watchdog stopped at once). */
function factsOf(path: string) {
  const text = renderOpenScript(scriptContext(path, { release: 'r1', previousRelease: '' }), {
    lock: 'no',
    lockTimeout: 1,
    holder: { command: 'deploy', release: 'r1', actor: '', runUrl: '', host: '', since: '' },
  }).text;
  const run = runSh(`${text}\nkill "$tf_watchdog" 2>/dev/null\n`);
  return readHostFacts(run.texts.map(control));
}

describe('facts: the commit of a current release tagflip has no record of', () => {
  test('from a REVISION file, as Capistrano writes it', () => {
    const path = handSite();
    writeFileSync(join(path, 'releases/vhand/REVISION'), '0123456789abcdef0123456789abcdef01234567\n');
    expect(factsOf(path)).toMatchObject({ currentRelease: 'vhand', currentCommit: '0123456789abcdef0123456789abcdef01234567' });
  });

  test('from a git checkout', () => {
    const path = handSite();
    const dir = join(path, 'releases/vhand');
    execFileSync('git', ['init', '-q', dir]);
    execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '--allow-empty', '-m', 'x']);
    const head = execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD']).toString().trim();
    expect(factsOf(path).currentCommit).toBe(head);
  });

  test('none told, or a record exists: no commit', () => {
    const path = handSite();
    expect(factsOf(path).currentCommit).toBe('');
    writeFileSync(join(path, 'releases/vhand/REVISION'), '0123456789abcdef0123456789abcdef01234567\n');
    writeManifest(path, manifest('vhand', 'active'));
    expect(factsOf(path).currentCommit).toBe('');
  });
});

describe('the first flip on a hand-made site', () => {
  test('adopts the release replaced: record inactive and marked, an adopt line before the deploy line; prune leaves the unknown directory alone', () => {
    const path = handSite();
    mkdirSync(join(path, 'releases/r1'));
    const before = factsOf(path);
    const r1 = manifest('r1', 'ready', 'vhand', { finished: '2024-06-01T10:05:00Z' });
    const departed = departedRecord(before, 'vhand');
    const after = factsAfterFlip(before, r1, departed, 'deploy');
    const prune = planPrune(after, 1, ['r1', rollbackTarget(after)]);
    expect(prune).toEqual({ remove: [], keep: ['r1', 'vhand'], removeData: [], unknown: ['old-by-hand'] });

    const context = scriptContext(path, { release: 'r1', previousRelease: 'vhand' });
    const run = runSh(renderFlipScript(context, { active: r1, departed, event: 'deploy', dataTarget: '', dataBefore: '', prune }).text);
    expect([run.code, run.texts]).toEqual([
      0,
      ['step flip', 'flipped', 'log adopted releases/vhand (made without tagflip): recorded as inactive, the release to go back to', 'step prune', 'left-alone old-by-hand'],
    ]);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/r1');
    expect(readdirSync(join(path, 'releases')).sort()).toEqual(['old-by-hand', 'r1', 'vhand']);
    const adopted = parseManifest(readFileSync(join(path, '.tagflip/releases/vhand.json'), 'utf8'));
    expect(adopted).toMatchObject({ release: 'vhand', state: 'inactive', started: '', finished: '', adopted: expect.stringMatching(ISO_TIME) });
    const lines = readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8').trim().split('\n').map(parseHistoryEntry);
    // Nothing was removed: no prune line.
    expect(lines.map((entry) => `${entry?.event}:${entry?.release}`)).toEqual(['adopt:vhand', 'deploy:r1']);

    // Read back, the site now has what a bare rollback needs.
    const next = factsOf(path);
    expect([next.currentRelease, rollbackTarget(next)]).toEqual(['r1', 'vhand']);
  });

  test('a later flip does not adopt again', () => {
    const path = handSite();
    writeManifest(path, { ...manifest('vhand', 'active'), adopted: '2024-06-01T10:00:00Z' });
    mkdirSync(join(path, 'releases/r2'));
    const before = factsOf(path);
    const departed = departedRecord(before, 'vhand');
    const context = scriptContext(path, { release: 'r2', previousRelease: 'vhand' });
    const run = runSh(renderFlipScript(context, { active: manifest('r2', 'ready'), departed, event: 'deploy', dataTarget: '', dataBefore: '' }).text);
    expect([run.code, run.texts]).toEqual([0, ['step flip', 'flipped']]);
    expect(readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8').trim().split('\n').map((line) => parseHistoryEntry(line)?.event)).toEqual(['deploy']);
    expect(parseManifest(readFileSync(join(path, '.tagflip/releases/vhand.json'), 'utf8'))?.adopted).toBe('2024-06-01T10:00:00Z');
  });
});

describe('prune script: never a directory without a record', () => {
  test('asked to remove one (a plan gone wrong): refuses before removing anything', () => {
    const path = handSite();
    mkdirSync(join(path, 'releases/v1'));
    writeManifest(path, manifest('v1', 'inactive'));
    const run = runSh(renderPruneScript(scriptContext(path, { release: '' }), ['v1', 'old-by-hand']).text);
    expect([run.code, run.texts]).toEqual([1, ['step prune', 'error prune 1 refusing to remove releases/old-by-hand: tagflip has no record of it']]);
    expect(readdirSync(join(path, 'releases')).sort()).toEqual(['old-by-hand', 'v1', 'vhand']);
    expect(existsSync(join(path, '.tagflip/releases/v1.json'))).toBe(true);
    expect(existsSync(join(path, '.tagflip/history.jsonl'))).toBe(false);
  });

  test('names the directories left alone, removes the rest, and only claims directories that existed', () => {
    const path = handSite();
    mkdirSync(join(path, 'releases/v1'));
    writeManifest(path, manifest('v1', 'inactive'));
    writeManifest(path, manifest('v2', 'failed'));
    const run = runSh(renderPruneScript(scriptContext(path, { release: '' }), ['v1', 'v2'], [], ['old-by-hand']).text);
    expect([run.code, run.texts]).toEqual([0, ['step prune', 'left-alone old-by-hand', 'removed v1', 'removed-record v2']]);
    expect(readdirSync(join(path, 'releases')).sort()).toEqual(['old-by-hand', 'vhand']);
    expect(readdirSync(join(path, '.tagflip/releases'))).toEqual([]);
  });
});
