/**
 * The open script run for real in /bin/sh against a temporary deploy-path,
 * with real flock: preflight, the lock (taken, waited for, reported, given up
 * on), and the facts, read back by readHostFacts, which release current is
 * among them.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readHostFacts } from '../../src/core/facts.js';
import { type LockHolder, parseLockHolder } from '../../src/core/manifest.js';
import type { OpenOptions, ScriptContext } from '../../src/remote/scripts.js';
import { history, manifest } from './host-facts.js';
import { ISO_TIME } from './script-runner.js';
import { HOLDER, deployPath, lockIsFree, openScript, runShell, writeManifest } from './script-shell.js';

const STOP_WATCHDOG = '\nkill "$tf_watchdog" 2>/dev/null\n';

/** Another run's lock.json, as its open script wrote it. */
const OTHER: LockHolder = { command: 'rollback', release: '', actor: 'alice', runUrl: 'https://github.com/o/r/actions/runs/7', host: 'deploy@web1', since: '2024-06-01T09:00:00Z' };

/** The open script, then the watchdog stopped, as a session would end. */
const runOpen = (path: string, lock: OpenOptions['lock'], lockTimeout = 1, changes: Partial<ScriptContext> = {}) =>
  runShell(openScript(path, lock, lockTimeout, changes) + STOP_WATCHDOG);

const holders: ChildProcess[] = [];
afterEach(() => {
  // Only the lock holders this file started, each by its own process group.
  for (const holder of holders.splice(0)) {
    if (holder.exitCode === null && holder.signalCode === null && holder.pid) {
      try {
        process.kill(-holder.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

/** Another run holding the lock of `path` (`flock …/.tagflip/lock sleep N`), with its lock.json. */
async function holdLock(path: string, seconds: number): Promise<ChildProcess> {
  mkdirSync(join(path, '.tagflip'), { recursive: true });
  writeFileSync(join(path, '.tagflip/lock.json'), `${JSON.stringify(OTHER)}\n`);
  const holder = spawn('flock', [join(path, '.tagflip/lock'), 'sleep', String(seconds)], { detached: true, stdio: 'ignore' });
  holders.push(holder);
  for (let i = 0; i < 100 && lockIsFree(path); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(lockIsFree(path)).toBe(false);
  return holder;
}

describe('open script: preflight, lock, facts', () => {
  test("lock 'yes' on an empty deploy-path: locked, then the facts; lock.json names this run", async () => {
    const path = deployPath();
    const run = await runOpen(path, 'yes');
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', 'locked', 'step facts']);
    expect(run.output).toEqual([]);
    expect(run.errors).toEqual([]);
    const holder = parseLockHolder(readFileSync(join(path, '.tagflip/lock.json'), 'utf8'));
    expect(holder).toEqual({ ...HOLDER, since: expect.stringMatching(ISO_TIME) });
    expect(lstatSync(join(path, '.tagflip/lock')).isFile()).toBe(true);
  });

  test("lock 'yes' on a deploy-path that does not exist yet: it is created to hold the lock", async () => {
    const path = deployPath(false);
    const run = await runOpen(path, 'yes');
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path absent', 'locked', 'step facts']);
    expect(existsSync(join(path, '.tagflip/lock'))).toBe(true);
  });

  test("lock 'no' (dry run): no lock taken, nothing created, the facts all the same", async () => {
    const path = deployPath();
    const run = await runOpen(path, 'no');
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', 'step facts']);
    expect(readdirSync(path)).toEqual([]);
  });

  test('the facts of a deploy-path with releases, records, history and current, read back by readHostFacts', async () => {
    const path = deployPath();
    for (const dir of ['v1', 'v2', 'with space']) mkdirSync(join(path, 'releases', dir), { recursive: true });
    writeFileSync(join(path, 'releases/a-file'), '');
    symlinkSync('releases/v2', join(path, 'current'));
    const v1 = manifest('v1', 'inactive', '', { finished: '2024-06-01T10:01:00Z' });
    const v2 = manifest('v2', 'active', 'v1', { finished: '2024-06-01T10:02:00Z', actor: 'two  spaces' });
    writeManifest(path, v1, true);
    writeManifest(path, v2);
    writeFileSync(join(path, '.tagflip/releases/broken.json'), '{"release":');
    writeFileSync(join(path, '.tagflip/history.jsonl'), `${JSON.stringify(history.deployed('v1'))}\nnot json\n${JSON.stringify(history.deployed('v2', 'v1'))}\n`);

    const run = await runOpen(path, 'yes');
    expect(run.texts.slice(0, 6)).toEqual(['step preflight', 'fact deploy-path exists', 'locked', 'step facts', 'fact current releases/v2', 'fact current-release v2']);
    expect(readHostFacts(run.lines)).toEqual({
      deployPathExists: true,
      currentRelease: 'v2',
      currentTarget: 'releases/v2',
      currentCommit: '',
      currentContent: null,
      precopied: false,
      releaseDirExists: true,
      releaseDirs: new Set(['v1', 'v2']),
      currentDataRelease: '',
      currentDataTarget: '',
      dataDirs: new Set(),
      manifests: new Map([
        ['v1', v1],
        ['v2', v2],
      ]),
      history: [history.deployed('v1'), history.deployed('v2', 'v1')],
      lockHolder: null,
      problems: [],
      sourceCommit: '',
      sourceError: '',
    });
  });

  test('the data facts: what data/current points to and every data release directory, read back by readHostFacts', async () => {
    const path = deployPath();
    for (const dir of ['v1', 'v2', 'with space']) mkdirSync(join(path, 'data/releases', dir), { recursive: true });
    writeFileSync(join(path, 'data/releases/a-file'), '');
    symlinkSync('releases/v1', join(path, 'data/current'));
    const run = await runOpen(path, 'no');
    expect(run.texts).toEqual([
      'step preflight',
      'fact deploy-path exists',
      'step facts',
      'fact data-current releases/v1',
      'fact data-current-release v1',
      'fact data-dir v1',
      'fact data-dir v2',
      'fact data-dir with space',
    ]);
    const facts = readHostFacts(run.lines);
    expect([facts.currentDataRelease, facts.dataDirs, facts.currentRelease]).toEqual(['v1', new Set(['v1', 'v2']), '']);
  });

  test('data-path elsewhere than <deploy-path>/data is where the data facts come from', async () => {
    const path = deployPath();
    const elsewhere = deployPath();
    mkdirSync(join(path, 'data/releases/wrong'), { recursive: true });
    mkdirSync(join(elsewhere, 'releases/d1'), { recursive: true });
    symlinkSync('releases/d1/', join(elsewhere, 'current'));
    const run = await runOpen(path, 'no', 1, { dataPath: elsewhere });
    expect(run.texts.slice(3)).toEqual(['fact data-current releases/d1/', 'fact data-current-release d1', 'fact data-dir d1']);
    expect(readHostFacts(run.lines).currentDataRelease).toBe('d1');
  });

  test('preflight: data/current that is not a symlink is a problem naming the remedy; no lock, no facts', async () => {
    const path = deployPath();
    mkdirSync(join(path, 'data/current'), { recursive: true });
    const run = await runOpen(path, 'yes');
    const message = `${path}/data/current is not a symlink; move the data to ${path}/data/releases/<name> and link current to releases/<name>`;
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', `problem data ${message}`]);
    expect(readHostFacts(run.lines).problems).toEqual([{ check: 'data', message }]);
    expect(existsSync(join(path, '.tagflip'))).toBe(false);
  });

  test('preflight: a data/current symlink, even a dangling one, is no problem; no data-path at all is none either', async () => {
    const path = deployPath();
    mkdirSync(join(path, 'data'));
    symlinkSync('releases/gone', join(path, 'data/current'));
    expect((await runOpen(path, 'no')).texts).toEqual(['step preflight', 'fact deploy-path exists', 'step facts', 'fact data-current releases/gone']);
    expect((await runOpen(deployPath(), 'no')).texts).toEqual(['step preflight', 'fact deploy-path exists', 'step facts']);
  });

  // Which release current is, by real path, however the link is written. Before,
  // only `releases/<name>` counted: an absolute link read as "no current", and
  // prune removed the release that served.
  describe('which release current is, decided by real path', () => {
    /** A deploy-path with releases v1, v2 (and its alias, a symlink to it); `link(path, alias)` is current's target. */
    async function currentOf(link: (path: string, alias: string) => string, { via = false } = {}) {
      const path = deployPath();
      for (const release of ['v1', 'v2']) mkdirSync(join(path, 'releases', release), { recursive: true });
      const alias = `${path}-alias`;
      symlinkSync(path, alias);
      const target = link(path, alias);
      symlinkSync(target, join(path, 'current'));
      const facts = readHostFacts((await runOpen(via ? alias : path, 'no')).lines);
      return { target, release: facts.currentRelease, seen: facts.currentTarget };
    }

    test.each<[string, (path: string, alias: string) => string]>([
      ['relative', () => 'releases/v2'],
      ['absolute', (path) => `${path}/releases/v2`],
      ['./-prefixed', () => './releases/v2'],
      ['with a trailing slash', () => 'releases/v2/'],
      ['absolute with a trailing slash', (path) => `${path}/releases/v2/`],
      ['with a doubled slash', () => 'releases//v2'],
      ['ending in /.', () => 'releases/v2/.'],
      ['through the symlinked deploy-path', (_path, alias) => `${alias}/releases/v2`],
      ['with a detour', () => 'releases/../releases/v2'],
      ['dangling, to a release that is gone', () => 'releases/v9'],
    ])('%s: the release it leads to', async (_form, link) => {
      const { target, release, seen } = await currentOf(link);
      expect([release, seen]).toEqual([target.includes('v9') ? 'v9' : 'v2', target]);
    });

    test('deploy-path given as a symlink, current written with the real path: the same release', async () => {
      expect((await currentOf((path) => `${path}/releases/v1`, { via: true })).release).toBe('v1');
    });

    /** `dir` (under `base`) created; its path relative to `base` returned. */
    const made = (base: string, dir: string) => {
      mkdirSync(join(base, dir), { recursive: true });
      return dir;
    };

    test('a chain of links ending in a release: that release', async () => {
      const hop = join(deployPath(), 'hop');
      const viaHop = (path: string) => {
        symlinkSync(`${path}/releases/v1`, hop);
        return hop;
      };
      expect((await currentOf(viaHop)).release).toBe('v1');
    });

    test.each<[string, (path: string) => string]>([
      ['another directory', () => deployPath()],
      ['another site’s release', () => {
        const other = deployPath();
        return join(other, made(other, 'releases/v2'));
      }],
      ['deploy-path itself', () => '.'],
      ['releases/..', () => 'releases/..'],
      ['releases/.', () => 'releases/.'],
      ['releases', () => 'releases'],
      ['a directory inside a release', (path) => made(path, 'releases/v2/sub')],
      ['a sibling of releases/', (path) => made(path, 'other/v2')],
      ['the parent directory', () => '..'],
    ])('%s: no release (the raw target is kept for the refusal)', async (_what, link) => {
      const { target, release, seen } = await currentOf(link);
      expect([release, seen]).toEqual(['', target]);
    });
  });

  test('the release being deployed: release-dir present only when releases/<release> exists', async () => {
    const path = deployPath();
    mkdirSync(join(path, 'releases/v1'), { recursive: true });
    expect(readHostFacts((await runOpen(path, 'no', 1, { release: 'v2' })).lines).releaseDirExists).toBe(false);
    expect(readHostFacts((await runOpen(path, 'no', 1, { release: 'v1' })).lines).releaseDirExists).toBe(true);
    expect(readHostFacts((await runOpen(path, 'no', 1, { release: '' })).lines).releaseDirExists).toBe(false);
  });

  test('while another run holds the lock: waiting (naming it), then lock-timeout after lock-timeout seconds; no facts', async () => {
    const path = deployPath();
    await holdLock(path, 10);
    const run = await runOpen(path, 'yes', 1);
    const other = JSON.stringify(OTHER);
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', `waiting ${other}`, `lock-timeout ${other}`]);
    expect(run.seconds).toBeGreaterThanOrEqual(0.9);
    expect(parseLockHolder(run.lines[2].rest)).toEqual(OTHER);
    // The holder's record is left as it was.
    expect(JSON.parse(readFileSync(join(path, '.tagflip/lock.json'), 'utf8'))).toEqual(OTHER);
  });

  test('lock-timeout 0: gives up at once', async () => {
    const path = deployPath();
    await holdLock(path, 10);
    const run = await runOpen(path, 'yes', 0);
    expect(run.lines.map((line) => line.kind)).toEqual(['step', 'fact', 'waiting', 'lock-timeout']);
    expect(run.seconds).toBeLessThan(5);
  });

  test('a lock released while waiting is taken: waiting, then locked and the facts', async () => {
    const path = deployPath();
    await holdLock(path, 1);
    const run = await runOpen(path, 'yes', 20);
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', `waiting ${JSON.stringify(OTHER)}`, 'locked', 'step facts']);
    expect(parseLockHolder(readFileSync(join(path, '.tagflip/lock.json'), 'utf8'))).toEqual({ ...HOLDER, since: expect.stringMatching(ISO_TIME) });
  });

  test("lock 'report' (status) while another run holds it: the facts say who, and nothing waits", async () => {
    const path = deployPath();
    await holdLock(path, 10);
    const run = await runOpen(path, 'report');
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', 'step facts', `fact lock-holder ${JSON.stringify(OTHER)}`]);
    expect(readHostFacts(run.lines).lockHolder).toEqual(OTHER);
    expect(lockIsFree(path)).toBe(false);
  });

  test("lock 'report' when the lock is free: a stale lock.json is not reported", async () => {
    const path = deployPath();
    mkdirSync(join(path, '.tagflip'));
    writeFileSync(join(path, '.tagflip/lock'), '');
    writeFileSync(join(path, '.tagflip/lock.json'), JSON.stringify(OTHER));
    const run = await runOpen(path, 'report');
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', 'step facts']);
    expect(readHostFacts(run.lines).lockHolder).toBeNull();
  });

  test("lock 'report' on a host never deployed to: no lock, nothing created", async () => {
    const path = deployPath();
    expect((await runOpen(path, 'report')).texts).toEqual(['step preflight', 'fact deploy-path exists', 'step facts']);
    expect(readdirSync(path)).toEqual([]);
  });

  test('the lock is held as long as the shell lives, by the shell itself, and released when it exits', async () => {
    const path = deployPath();
    const probe = `\nif flock -n "$tf_lock_file" true 9>&-; then echo free; else echo held; fi`;
    const run = await runShell(openScript(path, 'yes') + probe + STOP_WATCHDOG);
    expect(run.texts).toContain('locked');
    expect(run.output).toEqual(['held']);
    expect(lockIsFree(path)).toBe(true);
  });

  test('preflight: current that is a plain directory is a problem; no lock is taken and no facts are read', async () => {
    const path = deployPath();
    mkdirSync(join(path, 'current'));
    const run = await runOpen(path, 'yes');
    expect(run.texts).toEqual([
      'step preflight',
      'fact deploy-path exists',
      `problem current ${path}/current is not a symlink; move it aside so tagflip can manage it`,
    ]);
    expect(readHostFacts(run.lines).problems).toEqual([{ check: 'current', message: `${path}/current is not a symlink; move it aside so tagflip can manage it` }]);
    expect(existsSync(join(path, '.tagflip'))).toBe(false);
  });

  test('preflight: a deploy-path that is a file is a problem', async () => {
    const path = deployPath(false);
    writeFileSync(path, '');
    const run = await runOpen(path, 'report');
    expect(run.texts).toEqual(['step preflight', `problem writable ${path} exists but is not a directory`]);
  });

  test('a lock file that cannot be opened: lock-error naming it, at once, not lock-timeout; no lock, no facts', async () => {
    const path = deployPath();
    mkdirSync(join(path, '.tagflip/lock'), { recursive: true });
    const run = await runOpen(path, 'yes', 300);
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', `lock-error cannot open ${path}/.tagflip/lock`]);
    expect(run.seconds).toBeLessThan(10);
    expect(run.errors.join('\n')).toContain('.tagflip/lock');
  });
});
