/**
 * Retention riding in the flip's script (renderFlipScript with a prune plan),
 * run in sh: it happens after the flip, it never fails the flip, and a client
 * that is gone (stdout a closed pipe: every write raises SIGPIPE) cannot stop
 * it between a release's directory and its record.
 */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderRecord } from '../../src/core/manifest.js';
import { renderFlipScript } from '../../src/remote/scripts.js';
import { manifest } from './host-facts.js';
import { readLines, scriptContext } from './script-runner.js';

/** A site with v0 inactive, v1 current, v2 ready: each with its directory and record. */
function site(): string {
  const path = mkdtempSync(join(tmpdir(), 'tagflip-after-flip-'));
  mkdirSync(join(path, '.tagflip/releases'), { recursive: true });
  for (const [release, state] of [['v0', 'inactive'], ['v1', 'active'], ['v2', 'ready']] as const) {
    mkdirSync(join(path, 'releases', release, 'app'), { recursive: true });
    writeFileSync(join(path, 'releases', release, 'app/file'), `${release}\n`);
    writeFileSync(join(path, `.tagflip/releases/${release}.json`), `${renderRecord(manifest(release, state))}\n`);
  }
  symlinkSync('releases/v1', join(path, 'current'));
  return path;
}

function flipScript(path: string): string {
  const records = { active: manifest('v2', 'ready', 'v1'), departed: manifest('v1', 'inactive'), event: 'deploy' as const, dataTarget: '', dataBefore: '', prune: { remove: ['v0'], removeData: [] } };
  return renderFlipScript(scriptContext(path), records).text;
}

describe('retention in the flip script', () => {
  test('after the flip: removed says so, and the phase ends 0', () => {
    const path = site();
    const run = spawnSync('sh', ['-s'], { input: flipScript(path), encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(readLines(run.stdout).texts).toEqual(['step flip', 'flipped', 'step prune', 'removed v0']);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
    expect([existsSync(join(path, 'releases/v0')), existsSync(join(path, '.tagflip/releases/v0.json'))]).toEqual([false, false]);
  });

  test('a release that cannot go: prune-failed, not an error; the flip stands and the phase ends 0', () => {
    const path = site();
    // A plan naming the release just flipped to: the host's own check refuses it, whatever the plan says.
    const script = flipScript(path).replace("tf_prune='v0'", "tf_prune='v2'");
    const run = spawnSync('sh', ['-s'], { input: script, encoding: 'utf8' });
    expect(run.status).toBe(0);
    const { texts } = readLines(run.stdout);
    expect(texts.slice(0, 3)).toEqual(['step flip', 'flipped', 'step prune']);
    expect(texts[3]).toMatch(/^prune-failed 1 refusing to remove releases\/v2: it is current$/);
    expect(texts.some((line) => line.startsWith('error'))).toBe(false);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
  });

  test('with nobody reading (SIGPIPE on every write), a release goes with its record, never one without the other', () => {
    const path = site();
    const scriptFile = join(path, 'flip.sh');
    writeFileSync(scriptFile, flipScript(path));
    // `exec true` ends at once: every write of the script's shell meets a closed pipe.
    const run = spawnSync('sh', ['-c', 'sh -s < "$1" | exec true', 'sh', scriptFile], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
    expect([existsSync(join(path, 'releases/v0')), existsSync(join(path, '.tagflip/releases/v0.json'))]).toEqual([false, false]);
  });
});
