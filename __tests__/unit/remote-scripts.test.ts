/**
 * The open, prune and flip scripts run for real in /bin/sh against a temporary
 * deploy-path, with real flock. What they print on stdout is read back the way
 * RemoteSession does: lines starting with the run tag are control lines. stderr
 * is read separately: the open script's watchdog pings there.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readHostFacts } from '../../src/core/facts.js';
import { type LockHolder, type Manifest, parseHistoryEntry, parseLockHolder, parseManifest } from '../../src/core/manifest.js';
import { CLOSE_WORDS, type OpenOptions, type ScriptContext, renderBuildScript, renderFlipScript, renderOpenScript, renderPruneScript } from '../../src/remote/scripts.js';
import { type ControlLine, RemoteSession } from '../../src/remote/session.js';
import type { ShellChannel, Transport } from '../../src/remote/transport.js';
import { control, history, manifest } from './host-facts.js';
import { TAG, readLines, scriptContext } from './script-runner.js';

/** A first deploy of v2 at `path`. */
const context = (path: string, changes: Partial<ScriptContext> = {}) => scriptContext(path, { previousRelease: '', ...changes });

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const STOP_WATCHDOG = '\nkill "$tf_watchdog" 2>/dev/null\n';

const HOLDER: LockHolder = {
  command: 'deploy',
  release: 'v2',
  actor: 'octocat',
  runUrl: 'https://github.com/o/r/actions/runs/42',
  host: 'deploy@web1',
  since: '',
};
/** Another run's lock.json, as its open script wrote it. */
const OTHER: LockHolder = { command: 'rollback', release: '', actor: 'alice', runUrl: 'https://github.com/o/r/actions/runs/7', host: 'deploy@web1', since: '2024-06-01T09:00:00Z' };

const root = mkdtempSync(join(tmpdir(), 'tagflip-scripts-'));
/** $TMPDIR of the shells: the watchdog's run directory lands here, not in /tmp (see the CLOSE_WORDS test). */
const shellTemp = join(root, 'tmp');
mkdirSync(shellTemp);
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A fresh deploy-path (created unless `create` is false). */
function deployPath(create = true): string {
  count += 1;
  const path = join(root, `site-${count}`);
  if (create) mkdirSync(path);
  return path;
}


interface ShellRun {
  /** Control lines, in order. */
  lines: ControlLine[];
  /** Their text after the tag, for exact comparisons. */
  texts: string[];
  /** Lines without the tag. */
  output: string[];
  /** stderr lines, without the watchdog's pings. */
  errors: string[];
  /** How many `<tag> ping` lines came on stderr. */
  pings: number;
  code: number | null;
  seconds: number;
}


/**
 * Pipe `text` into `sh -s` and read what it prints. Done when the shell has
 * exited and its stdout is drained: stderr is not waited for, since a watchdog
 * left running may hold it; our end of it is closed then. With `stderr:
 * 'ignore'` the shell's stderr is /dev/null, where every ping succeeds.
 */
function runShell(text: string, env: NodeJS.ProcessEnv = {}, { stderr = 'pipe' }: { stderr?: 'pipe' | 'ignore' } = {}): Promise<ShellRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-s'], { env: { ...process.env, TMPDIR: shellTemp, ...env }, stdio: ['pipe', 'pipe', stderr] });
    const [input, out] = [child.stdin!, child.stdout!];
    let stdout = '';
    let errText = '';
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => (errText += chunk));
    child.on('error', reject);
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const drained = new Promise<void>((done) => out.once('close', () => done()));
    void Promise.all([exited, drained]).then(([code]) => {
      child.stderr?.destroy();
      const { texts, output } = readLines(stdout);
      const errors = readLines(errText);
      resolve({
        lines: texts.map(control),
        texts,
        output,
        errors: errors.output,
        pings: errors.texts.filter((text) => text === 'ping').length,
        code,
        seconds: (Date.now() - started) / 1000,
      });
    });
    input.end(text);
  });
}

function openScript(path: string, lock: OpenOptions['lock'], lockTimeout = 1, changes: Partial<ScriptContext> = {}): string {
  return renderOpenScript(context(path, changes), { lock, lockTimeout, holder: HOLDER }).text;
}

/** The open script, then the watchdog stopped, as a session would end. */
const runOpen = (path: string, lock: OpenOptions['lock'], lockTimeout = 1, changes: Partial<ScriptContext> = {}) =>
  runShell(openScript(path, lock, lockTimeout, changes) + STOP_WATCHDOG);

/** Whether another process could take the lock of `path` right now. */
function lockIsFree(path: string): boolean {
  try {
    execFileSync('flock', ['-n', join(path, '.tagflip/lock'), 'true']);
    return true;
  } catch {
    return false;
  }
}

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

function writeManifest(path: string, record: Manifest, pretty = false): void {
  mkdirSync(join(path, '.tagflip/releases'), { recursive: true });
  writeFileSync(join(path, `.tagflip/releases/${record.release}.json`), `${JSON.stringify(record, null, pretty ? 2 : undefined)}\n`);
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

describe('open script: the watchdog', () => {
  test('the watchdog pings on stderr about once a second, never on stdout', async () => {
    const path = deployPath();
    const run = await runShell(`${openScript(path, 'yes')}\nsleep 2.5\n${CLOSE_WORDS}\n`);
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', 'locked', 'step facts']);
    expect(run.output).toEqual([]);
    expect(run.errors).toEqual([]);
    expect(run.pings).toBeGreaterThanOrEqual(2);
    expect(run.pings).toBeLessThanOrEqual(5);
  });

  test('when the session shell ends without the last words, the watchdog ends too and removes its run directory', async () => {
    const path = deployPath();
    const temp = mkdtempSync(join(root, 'tmp-'));
    // stderr is /dev/null, where pings never fail: only the session's end can stop the watchdog.
    await runShell(openScript(path, 'yes'), { TMPDIR: temp }, { stderr: 'ignore' });
    for (let i = 0; i < 40 && readdirSync(temp).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(readdirSync(temp)).toEqual([]);
  });

  test('a session ended with CLOSE_WORDS leaves no run directory behind in $TMPDIR, at once', async () => {
    const path = deployPath();
    const temp = mkdtempSync(join(root, 'tmp-'));
    const run = await runShell(`${openScript(path, 'yes')}\n${CLOSE_WORDS}\n`, { TMPDIR: temp }, { stderr: 'ignore' });
    expect(run.code).toBe(0);
    expect(readdirSync(temp)).toEqual([]);
  });

  test('the run directory is made in $TMPDIR while the session lives', async () => {
    const path = deployPath();
    const temp = mkdtempSync(join(root, 'tmp-'));
    const run = await runShell(`${openScript(path, 'yes')}\nls -- "$TMPDIR" | wc -l | tr -d ' '\n${CLOSE_WORDS}\n`, { TMPDIR: temp });
    expect(run.output).toEqual(['1']);
    expect(readdirSync(temp)).toEqual([]);
  });

  test('once the watchdog has found the client gone, no hook starts: the build is removed and recorded as interrupted', async () => {
    const path = deployPath();
    const runDir = mkdtempSync(join(root, 'run-'));
    writeFileSync(join(runDir, 'lost'), '');
    const ctx = context(path, { release: 'v1', build: 'touch "$TAGFLIP_DEPLOY_PATH/built"' });
    const run = await runShell(`tf_run_dir='${runDir}'\n${renderBuildScript(ctx, manifest('v1', 'building')).text}`);
    expect(run.texts.at(-1)).toBe('error build 1 interrupted: connection lost');
    expect(existsSync(join(path, 'built'))).toBe(false);
    expect(existsSync(join(path, 'releases/v1'))).toBe(false);
    expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v1.json'), 'utf8'))).toMatchObject({ state: 'failed', failedStep: 'build', reason: 'interrupted: connection lost' });
  });

  test('when the connection goes (the shell’s output is closed), the running hook’s process group is stopped', async () => {
    const path = deployPath();
    const ctx = context(path, { release: 'v1', build: 'echo started; sleep 3; touch "$TAGFLIP_DEPLOY_PATH/not-stopped"' });
    const building = manifest('v1', 'building');
    const wrap = (open: string, text: string, close: string) => `${open}\n${text}\n${close}\nprintf '\\n%s end %s\\n' '${TAG}' "$?"\n`;
    const child = spawn('/bin/sh', ['-s'], { env: { ...process.env, TMPDIR: shellTemp }, stdio: ['pipe', 'pipe', 'pipe'] });
    const closed = new Promise((resolve) => child.on('close', resolve));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (chunk.includes('started')) {
        child.stdout.destroy();
        child.stderr.destroy();
      }
    });
    child.stderr.resume();
    // As RemoteSession wraps them: the open script in session scope (its stderr is the channel's), the build in a subshell.
    child.stdin.write(wrap('{', openScript(path, 'yes', 1, { release: 'v1' }), '} </dev/null'));
    child.stdin.write(wrap('(', renderBuildScript(ctx, building).text, ') </dev/null 2>&1 9>&-'));
    child.stdin.end(`${CLOSE_WORDS}\n`);
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(existsSync(join(path, 'not-stopped'))).toBe(false);
    expect(lockIsFree(path)).toBe(true);
  });
});

describe('open script through RemoteSession on a local shell', () => {
  /** Like LocalTransport (`sh -s` on this machine), with $TMPDIR set for the shell. */
  class TestTransport implements Transport {
    readonly label = 'local';
    private child: ChildProcess | null = null;

    async openShell(): Promise<ShellChannel> {
      const child = spawn('/bin/sh', ['-s'], { env: { ...process.env, TMPDIR: shellTemp }, stdio: ['pipe', 'pipe', 'pipe'] });
      this.child = child;
      const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      return { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, closed, exited };
    }

    /** Wait for the shell to exit; not for its stderr to close (a watchdog not yet stopped may hold it). */
    async close(): Promise<void> {
      const child = this.child;
      if (child && child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    }

    /** The client goes away: our ends of the shell's stdout and stderr close, as when the connection drops. */
    hangUp(): void {
      this.child?.stdout?.destroy();
      this.child?.stderr?.destroy();
    }

    /** Wait until stdout and stderr are closed too: once CLOSE_WORDS stopped the watchdog, at once. */
    async drained(): Promise<void> {
      const child = this.child;
      if (child && child.stdout?.closed === false) await new Promise((resolve) => child.once('close', resolve));
      if (child && child.stderr?.closed === false) await new Promise((resolve) => child.stderr?.once('close', resolve));
    }
  }

  async function session(): Promise<{ session: RemoteSession; transport: TestTransport; stderr: string[] }> {
    const transport = new TestTransport();
    const stderr: string[] = [];
    return { session: await RemoteSession.open(transport, TAG, (line) => stderr.push(line)), transport, stderr };
  }

  test('the lock taken in session scope outlives the phase; later phases cannot free it; ending the session frees it', async () => {
    const path = deployPath();
    const { session: shell, transport } = await session();
    try {
      const open = await shell.run(openScript(path, 'yes'), {}, { scope: 'session' });
      expect(open.control.map((line) => line.kind)).toContain('locked');
      const output: string[] = [];
      await shell.run(`if flock -n '${path}/.tagflip/lock' true; then echo free; else echo held; fi`, { onOutput: (line) => output.push(line) });
      expect(output).toEqual(['held']);
      expect(lockIsFree(path)).toBe(false);
    } finally {
      shell.end(CLOSE_WORDS);
      await transport.close();
    }
    expect(lockIsFree(path)).toBe(true);
  });

  // The watchdog pings on stderr (the session-scope group `{ … } </dev/null` keeps it), where
  // RemoteSession drops lines that start with the run tag: no ping joins a phase's output, its
  // control lines, or a line the build has not ended yet.
  test('the watchdog’s pings never reach a phase’s output, its control lines or onStderr', async () => {
    const path = deployPath();
    const { session: shell, transport, stderr } = await session();
    try {
      const open = await shell.run(openScript(path, 'yes'), {}, { scope: 'session' });
      expect(open.control.map((line) => line.kind)).toEqual(['step', 'fact', 'locked', 'step']);
      const output: string[] = [];
      const phase = await shell.run("printf 'progress'; sleep 2.5; echo ' done'; echo oops >&2", { onOutput: (line) => output.push(line) });
      expect(phase.control).toEqual([]);
      expect(output).toEqual(['progress done', 'oops']);
    } finally {
      shell.end(CLOSE_WORDS);
      await transport.close();
      await transport.drained();
    }
    expect(stderr).toEqual([]);
  });

  test('when the connection goes mid-build, the host removes the release and records why, all before its shell exits and frees the lock', async () => {
    const path = deployPath();
    const ctx = context(path, { release: 'v1', build: 'echo started; sleep 20' });
    const { session: shell, transport } = await session();
    const open = await shell.run(renderOpenScript(ctx, { lock: 'yes', lockTimeout: 1, holder: HOLDER }).text, {}, { scope: 'session' });
    expect(open.control.map((line) => line.kind)).toContain('locked');
    const build = shell.run(renderBuildScript(ctx, manifest('v1', 'building')).text, { onOutput: (line) => line === 'started' && transport.hangUp() });
    expect(await build.then(() => 'answered', () => 'connection gone')).toBe('connection gone');
    await transport.close();
    // Nothing waited for the cleanup but the shell's exit: it was done by then.
    expect(lockIsFree(path)).toBe(true);
    expect(existsSync(join(path, 'releases/v1'))).toBe(false);
    const interrupted = { state: 'failed', failedStep: 'build', exitCode: 143, reason: 'interrupted: connection lost' };
    expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v1.json'), 'utf8'))).toMatchObject(interrupted);
    const lines = readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((line) => JSON.parse(line))).toEqual([expect.objectContaining({ event: 'deploy', status: 'failed', release: 'v1', failedStep: 'build', reason: 'interrupted: connection lost' })]);
  });

  test('hooks run with SIGPIPE and SIGHUP at their defaults: the shells trap them, never ignore them', async () => {
    const path = deployPath();
    const ctx = context(path, { release: 'v1', build: "grep '^SigIgn:' /proc/self/status" });
    const { session: shell, transport } = await session();
    const output: string[] = [];
    try {
      await shell.run(renderOpenScript(ctx, { lock: 'yes', lockTimeout: 1, holder: HOLDER }).text, {}, { scope: 'session' });
      await shell.run(renderBuildScript(ctx, manifest('v1', 'building')).text, { onOutput: (line) => output.push(line) });
    } finally {
      shell.end(CLOSE_WORDS);
      await transport.close();
    }
    const ignored = BigInt(`0x${output.find((line) => line.startsWith('SigIgn:'))!.split(/\s+/)[1]}`);
    const bit = (signal: number) => (ignored >> BigInt(signal - 1)) & 1n;
    expect([bit(1), bit(13)]).toEqual([0n, 0n]);
  });

  test('stderr of the open script’s own shell commands reaches onStderr (the lock file cannot be opened)', async () => {
    const path = deployPath();
    mkdirSync(join(path, '.tagflip/lock'), { recursive: true });
    const { session: shell, transport, stderr } = await session();
    try {
      const open = await shell.run(openScript(path, 'yes'), {}, { scope: 'session' });
      expect(open.control.map((line) => line.rest)).toEqual(['preflight', 'deploy-path exists', `cannot open ${path}/.tagflip/lock`]);
    } finally {
      shell.end(CLOSE_WORDS);
      await transport.close();
      await transport.drained();
    }
    expect(stderr.join('\n')).toContain(`${path}/.tagflip/lock`);
    expect(stderr.filter((line) => line.includes('ping'))).toEqual([]);
  });
});

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
    expect(JSON.parse(lines[1])).toEqual({
      time: expect.stringMatching(ISO_TIME),
      event: 'prune',
      status: 'pruned',
      release: '',
      previousRelease: '',
      host: 'deploy@web1',
      actor: 'octocat',
      runUrl: 'https://github.com/o/r/actions/runs/42',
      removed: ['v1', 'v2'],
    });
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
