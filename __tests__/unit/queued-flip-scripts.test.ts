/**
 * The flip sent right behind a one-host build (deploy.ts, queuedFlip), run in a
 * real sh: it flips only what that build finished, for a client still there;
 * otherwise it changes nothing and says `skipped`.
 */
import { afterAll, expect, test } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMIT, FINISHED } from '../../src/core/manifest.js';
import { quote } from '../../src/remote/shell.js';
import { CLOSE_IF_FLIPPED, renderFlipScript } from '../../src/remote/scripts.js';
import { manifest } from './host-facts.js';
import { runSh, scriptContext } from './script-runner.js';

const root = mkdtempSync(join(tmpdir(), 'tagflip-queued-flip-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let sites = 0;

/** v1 current, v2 built; a session run directory, with what the build left in it. */
function site(built: string | null, { lost = false } = {}) {
  const path = join(root, `site${++sites}`);
  const runDir = join(root, `run${sites}`);
  mkdirSync(join(path, 'releases/v1'), { recursive: true });
  mkdirSync(join(path, 'releases/v2'));
  mkdirSync(join(path, '.tagflip/releases'), { recursive: true });
  symlinkSync('releases/v1', join(path, 'current'));
  mkdirSync(runDir);
  if (built !== null) writeFileSync(join(runDir, 'built'), built);
  if (lost) writeFileSync(join(runDir, 'lost'), '');
  return { path, runDir };
}

/** The flip queued behind a build of v2 over v1 (with `last`: nothing follows it). */
function queuedFlipText(path: string, last = false): string {
  const active = { ...manifest('v2', 'ready', 'v1'), finished: FINISHED, commit: COMMIT };
  return renderFlipScript(scriptContext(path), { active, departed: manifest('v1', 'inactive'), event: 'deploy', dataTarget: '', dataBefore: '' }, { pipelined: true, last }).text;
}

function queuedFlip(path: string, runDir: string) {
  // As in the session shell, where the open script made the run directory.
  return runSh(`tf_run_dir=${quote(runDir)}\n${queuedFlipText(path)}`);
}

test('behind a build that finished: flips, with the time and commit the build left', () => {
  const { path, runDir } = site('2026-11-30T01:02:03Z 1a2b3c4d\n');
  const run = queuedFlip(path, runDir);
  expect(run.code).toBe(0);
  expect(run.texts).toContain('flipped');
  expect(run.texts).not.toContain('skipped');
  expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
  expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8'))).toMatchObject({ state: 'active', finished: '2026-11-30T01:02:03Z', commit: '1a2b3c4d' });
  // Emptied: a later flip in this session finds no build in it.
  expect(readFileSync(join(runDir, 'built'), 'utf8')).toBe('');
});

test('an upload has no commit: the record gets none', () => {
  const { path, runDir } = site('2026-11-30T01:02:03Z \n');
  expect(queuedFlip(path, runDir).texts).toContain('flipped');
  expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8'))).toMatchObject({ finished: '2026-11-30T01:02:03Z', commit: '' });
});

test.each([
  ['the build failed (it left nothing)', () => site(null)],
  ['the client has gone (the watchdog said so)', () => site('2026-11-30T01:02:03Z 1a2b3c4d\n', { lost: true })],
])('%s: skipped, nothing changes', (_why, make) => {
  const { path, runDir } = make();
  const run = queuedFlip(path, runDir);
  expect(run.code).toBe(0);
  expect(run.texts).toEqual(['step flip', 'skipped']);
  // Quietly: no shell error for the record a failed build did not leave.
  expect(run.stderr).toBe('');
  expect(run.output).toEqual([]);
  expect(readlinkSync(join(path, 'current'))).toBe('releases/v1');
  expect(existsSync(join(path, '.tagflip/releases/v2.json'))).toBe(false);
  expect(existsSync(join(path, '.tagflip/history.jsonl'))).toBe(false);
});

test('without a run directory (the session could not make one): skipped', () => {
  const { path } = site(null);
  const { text } = renderFlipScript(scriptContext(path), { active: manifest('v2', 'ready', 'v1'), departed: null, event: 'deploy', dataTarget: '', dataBefore: '' }, { pipelined: true });
  const run = runSh(`tf_run_dir=''\n${text}`);
  expect(run.texts).toEqual(['step flip', 'skipped']);
  expect(readlinkSync(join(path, 'current'))).toBe('releases/v1');
});

describe('the last flip: the session ends as soon as it has flipped', () => {
  /** The session shell: the queued last flip, the line sent behind it, then words that run only if the session is still there. */
  function lastFlip(path: string, runDir: string) {
    return runSh([`tf_run_dir=${quote(runDir)}`, 'sleep 30 & tf_watchdog=$!', `(\n${queuedFlipText(path, true)}\n)`, CLOSE_IF_FLIPPED, 'echo still-here', 'kill "$tf_watchdog"'].join('\n'));
  }

  test('flipped: the shell exits right behind it, the run directory gone and the watchdog stopped', () => {
    const { path, runDir } = site('2026-11-30T01:02:03Z 1a2b3c4d\n');
    const run = lastFlip(path, runDir);
    expect(run.code).toBe(0);
    expect(run.texts).toContain('flipped');
    expect(run.output).not.toContain('still-here');
    expect(existsSync(runDir)).toBe(false);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
  });

  test('skipped (the build failed): the session stays for what the client sends next', () => {
    const { path, runDir } = site(null);
    const run = lastFlip(path, runDir);
    expect(run.texts).toEqual(['step flip', 'skipped']);
    expect(run.output).toContain('still-here');
    expect(existsSync(runDir)).toBe(true);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v1');
  });

  test('a flip that fails (current outside releases/) leaves no mark either', () => {
    const { path, runDir } = site('2026-11-30T01:02:03Z 1a2b3c4d\n');
    rmSync(join(path, 'current'));
    symlinkSync('/elsewhere', join(path, 'current'));
    const run = lastFlip(path, runDir);
    expect(run.texts.at(-1)).toMatch(/^error flip 1 .*outside/);
    expect(run.output).toContain('still-here');
  });
});
