/**
 * What another user of the host could do to a deploy-path they can write in
 * (issue 10, item 6), and the private .tagflip (item 7), with the scripts run
 * for real in /bin/sh (the tests run as root; `nobody` stands for the other user).
 *
 * A planted link: before a script runs, a symlink to a victim file is put at
 * every temporary name it could use. The pid of `sh -s` is known before the
 * script is sent, so names made of `$$` are planted exactly.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LockHolder } from '../../src/core/manifest.js';
import { type OpenOptions, renderBuildScript, renderFlipScript, renderOpenScript } from '../../src/remote/scripts.js';
import { manifest } from './host-facts.js';
import { TAG, runShAsync, scriptContext } from './script-runner.js';

const root = mkdtempSync(join(tmpdir(), 'tagflip-other-users-'));
const shellTemp = join(root, 'tmp');
mkdirSync(shellTemp);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const NOBODY = 65534;
const PRECIOUS = 'precious: must never change\n';
const HOLDER: LockHolder = { command: 'deploy', release: 'v2', actor: 'octocat', runUrl: '', host: 'deploy@web1', since: '' };

let count = 0;
/** A fresh deploy-path (mode 755) with its .tagflip (700), and a victim file outside it. */
function site(): { path: string; victim: string } {
  count += 1;
  const path = join(root, `site-${count}`);
  mkdirSync(join(path, '.tagflip/releases'), { recursive: true, mode: 0o755 });
  chmodSync(path, 0o755);
  chmodSync(join(path, '.tagflip'), 0o700);
  const victim = join(root, `victim-${count}`);
  writeFileSync(victim, PRECIOUS);
  return { path, victim };
}

interface Run {
  code: number | null;
  texts: string[];
  stderr: string;
}

/** Run `text` in `sh -s`; `plant(pid)` runs once the shell exists, before it reads anything. */
async function runShell(text: string, plant: (pid: number) => void = () => undefined): Promise<Run> {
  const { code, texts, stderr } = await runShAsync(text, { env: { ...process.env, TMPDIR: shellTemp }, spawned: plant });
  return { code, texts, stderr: stderr.split('\n').filter((line) => line !== '' && line !== `${TAG} ping`).join('\n') };
}

/** The open script, then its watchdog stopped, as a session ends. */
function runOpen(path: string, lock: OpenOptions['lock'], plant?: (pid: number) => void, prefix = ''): Promise<Run> {
  const script = renderOpenScript(scriptContext(path, { previousRelease: '' }), { lock, lockTimeout: 1, holder: HOLDER }).text;
  return runShell(`${prefix}${script}\nkill "$tf_watchdog" 2>/dev/null\n`, plant);
}

/** Symlinks to `victim` at each of `names` (relative to `path`). */
const plantLinks = (path: string, victim: string, names: (pid: number) => string[]) => (pid: number) => {
  for (const name of names(pid)) symlinkSync(victim, join(path, name));
};

/** Files under .tagflip (recursively) that are neither planted links nor tagflip's records. */
function leftovers(path: string): string[] {
  return readdirSync(join(path, '.tagflip'), { recursive: true, encoding: 'utf8' }).filter((name) => name.includes('.tmp') && !lstatSync(join(path, '.tagflip', name)).isSymbolicLink());
}

const modeOf = (path: string) => (statSync(path).mode & 0o7777).toString(8);

describe('a link another user planted at a temporary name is never written through', () => {
  test('open: lock.json is written through a temporary file of its own, not .tagflip/lock.json.tmp', async () => {
    const { path, victim } = site();
    const run = await runOpen(path, 'yes', plantLinks(path, victim, () => ['.tagflip/lock.json.tmp']));
    expect(run.texts).toContain('locked');
    expect(readFileSync(victim, 'utf8')).toBe(PRECIOUS);
    expect(lstatSync(join(path, '.tagflip/lock.json')).isFile()).toBe(true);
    expect(JSON.parse(readFileSync(join(path, '.tagflip/lock.json'), 'utf8'))).toMatchObject({ command: 'deploy', release: 'v2' });
    expect(leftovers(path)).toEqual([]);
  });

  test('build: the manifest (building, then ready) is not written through <manifest>.tmp.$$', async () => {
    const { path, victim } = site();
    const ctx = scriptContext(path, { build: 'true' });
    const run = await runShell(renderBuildScript(ctx, manifest('v2', 'building', 'v1')).text, plantLinks(path, victim, (pid) => [`.tagflip/releases/v2.json.tmp.${pid}`]));
    expect({ code: run.code, last: run.texts[run.texts.length - 1], stderr: run.stderr }).toEqual({ code: 0, last: expect.stringMatching(/^ready /), stderr: '' });
    expect(readFileSync(victim, 'utf8')).toBe(PRECIOUS);
    expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8'))).toMatchObject({ release: 'v2', state: 'ready' });
    expect(leftovers(path)).toEqual([]);
  });

  test('a failed build: its failed manifest and history line are not written through <file>.tmp.$$', async () => {
    const { path, victim } = site();
    const ctx = scriptContext(path, { build: 'exit 3' });
    const names = (pid: number) => [`.tagflip/releases/v2.json.tmp.${pid}`, `.tagflip/history.jsonl.tmp.${pid}`];
    const run = await runShell(renderBuildScript(ctx, manifest('v2', 'building', 'v1')).text, plantLinks(path, victim, names));
    expect(run.texts[run.texts.length - 1]).toBe('error build 3 build exited with status 3');
    expect(readFileSync(victim, 'utf8')).toBe(PRECIOUS);
    expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8'))).toMatchObject({ state: 'failed', exitCode: 3 });
    expect(JSON.parse(readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8'))).toMatchObject({ status: 'failed', release: 'v2' });
    expect(leftovers(path)).toEqual([]);
  });

  test('flip: current, both records and the history line are written; nothing through the planted links', async () => {
    const { path, victim } = site();
    mkdirSync(join(path, 'releases/v1'), { recursive: true });
    mkdirSync(join(path, 'releases/v2'));
    symlinkSync('releases/v1', join(path, 'current'));
    const ctx = scriptContext(path);
    const names = (pid: number) => [
      `.current.tagflip-${pid}`,
      `.tagflip/releases/v2.json.tmp.${pid}`,
      `.tagflip/releases/v1.json.tmp.${pid}`,
      `.tagflip/history.jsonl.tmp.${pid}`,
    ];
    const records = { active: manifest('v2', 'ready', 'v1'), departed: manifest('v1', 'inactive'), event: 'deploy' as const, dataTarget: '', dataBefore: '' };
    const run = await runShell(renderFlipScript(ctx, records).text, plantLinks(path, victim, names));
    expect({ code: run.code, texts: run.texts, stderr: run.stderr }).toEqual({ code: 0, texts: ['step flip', 'flipped'], stderr: '' });
    expect(readFileSync(victim, 'utf8')).toBe(PRECIOUS);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
    expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8'))).toMatchObject({ state: 'active' });
    expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v1.json'), 'utf8'))).toMatchObject({ state: 'inactive' });
    expect(JSON.parse(readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8'))).toMatchObject({ status: 'deployed', release: 'v2' });
    expect(leftovers(path)).toEqual([]);
  });
});

describe('preflight refuses a deploy-path or .tagflip another user owns or every user can write', () => {
  /** The preflight's problem and warning lines. */
  const verdicts = (run: Run) => run.texts.filter((text) => /^(problem|warning) /.test(text));

  test.each(['777', '1777'])('deploy-path with mode %s: refused, with the chmod that fixes it; no lock, no facts', async (mode) => {
    const { path } = site();
    chmodSync(path, parseInt(mode, 8));
    const run = await runOpen(path, 'yes');
    expect(verdicts(run)).toEqual([
      `problem permissions ${path} is writable by every user of the host (mode ${mode}): anyone could plant files or links where tagflip writes; check it for files you did not make, then chmod o-w ${path}`,
    ]);
    expect(run.texts).not.toContain('locked');
    expect(run.texts).not.toContain('step facts');
  });

  test('deploy-path writable by its group: a warning with the remedy; the run goes on', async () => {
    const { path } = site();
    chmodSync(path, 0o775);
    const run = await runOpen(path, 'yes');
    expect(verdicts(run)).toEqual([`warning ${path} is writable by group root (mode 775): its members can change what tagflip deploys; chmod g-w ${path} unless every member may`]);
    expect(run.texts).toContain('locked');
    expect(run.texts).toContain('step facts');
  });

  test('deploy-path owned by another user: refused, naming the owner and the chown', async () => {
    const { path } = site();
    chownSync(path, NOBODY, NOBODY);
    const run = await runOpen(path, 'yes');
    expect(verdicts(run)).toEqual([
      `problem owner ${path} belongs to nobody, not to root, who deploys: another user must not be able to change what tagflip runs and records; chown root ${path}`,
    ]);
    expect(run.texts).not.toContain('locked');
  });

  test('.tagflip owned by another user, or writable by every user: refused', async () => {
    const owned = site();
    chownSync(join(owned.path, '.tagflip'), NOBODY, NOBODY);
    const open = site();
    chmodSync(join(open.path, '.tagflip'), 0o777);
    const [ownedRun, openRun] = await Promise.all([runOpen(owned.path, 'yes'), runOpen(open.path, 'yes')]);
    expect(verdicts(ownedRun)).toEqual([expect.stringMatching(new RegExp(`^problem owner ${owned.path}/.tagflip belongs to nobody, not to root, .*; chown root ${owned.path}/.tagflip$`))]);
    expect(verdicts(openRun)).toEqual([expect.stringMatching(new RegExp(`^problem permissions ${open.path}/.tagflip is writable by every user of the host \\(mode 777\\): .*chmod o-w ${open.path}/.tagflip$`))]);
    expect([ownedRun.texts, openRun.texts]).not.toContainEqual(expect.arrayContaining(['locked']));
  });
});

describe('.tagflip is private to the deploy user; deploy-path is not', () => {
  test('a first run makes deploy-path 755 and .tagflip 700, whatever the login umask', async () => {
    count += 1;
    const path = join(root, `site-${count}`, 'app');
    mkdirSync(join(root, `site-${count}`));
    const run = await runOpen(path, 'yes', undefined, 'umask 000\n');
    expect(run.texts).toContain('locked');
    expect([modeOf(path), modeOf(join(path, '.tagflip'))]).toEqual(['755', '700']);
  });

  test('an existing .tagflip of the deploy user (755, 775) is made 700 by the next run that takes the lock, without a word', async () => {
    const readable = site();
    chmodSync(join(readable.path, '.tagflip'), 0o755);
    const grouped = site();
    chmodSync(join(grouped.path, '.tagflip'), 0o775);
    const runs = await Promise.all([runOpen(readable.path, 'yes'), runOpen(grouped.path, 'yes')]);
    for (const run of runs) {
      expect(run.texts).toContain('locked');
      expect(run.texts.filter((text) => /^(problem|warning) /.test(text))).toEqual([]);
    }
    expect([modeOf(join(readable.path, '.tagflip')), modeOf(join(grouped.path, '.tagflip'))]).toEqual(['700', '700']);
  });

  test('a run that takes no lock (dry run, status) changes nothing', async () => {
    const { path } = site();
    chmodSync(join(path, '.tagflip'), 0o755);
    for (const lock of ['no', 'report'] as const) {
      const run = await runOpen(path, lock);
      expect(run.texts).toContain('step facts');
    }
    expect(modeOf(join(path, '.tagflip'))).toBe('755');
  });
});

// Issue 21: another user's data-path (mode 777, releases a link into the deploy
// user's home, current out of the data tree) made tagflip rm -rf a directory of
// the deploy user's and migrate the other user's data. data-path now gets
// deploy-path's checks, and its parts must be its own directories.
describe('preflight holds data-path as it holds deploy-path', () => {
  const verdicts = (run: Run) => run.texts.filter((text) => /^(problem|warning) /.test(text));
  /** The open script of a deploy with migrate (or without: `migrate: ''`) at `path`, data-path `data`. */
  const runOpenWith = (path: string, data: string, migrate = 'true') => {
    const script = renderOpenScript(scriptContext(path, { previousRelease: '', migrate, dataPath: data }), { lock: 'yes', lockTimeout: 1, holder: HOLDER }).text;
    return runShell(`${script}\nkill "$tf_watchdog" 2>/dev/null\n`);
  };
  /** A tree of the deploy user's that a planted link leads to, and what it holds. */
  function home(): { dir: string; files: string[] } {
    count += 1;
    const dir = join(root, `home-${count}`);
    mkdirSync(join(dir, 'v2'), { recursive: true });
    writeFileSync(join(dir, 'v2/notes'), PRECIOUS);
    return { dir, files: readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort() };
  }

  test('the attack: another user’s 0777 data-path, releases a link, current out of the tree: every part refused with its remedy; no lock, no facts, nothing touched', async () => {
    const { path } = site();
    const data = join(root, `store-${count}`);
    const victim = home();
    mkdirSync(data);
    symlinkSync(victim.dir, join(data, 'releases'));
    symlinkSync('releases/../../elsewhere', join(data, 'current'));
    chownSync(data, NOBODY, NOBODY);
    chmodSync(data, 0o777);
    const run = await runOpenWith(path, data);
    expect(verdicts(run)).toEqual([
      `problem owner data-path ${data} belongs to nobody, not to root, who deploys: another user must not be able to choose the data tagflip copies, migrates and removes; chown root ${data}, or set data-path to a directory of root's`,
      `problem permissions data-path ${data} is writable by every user of the host (mode 777): anyone could put a link there that tagflip would copy, migrate or remove through; check it for files you did not make, then chmod o-w ${data}`,
      `problem data ${data}/releases is a symlink (to '${victim.dir}'): tagflip copies data into it and removes data releases from it, never through a link; make it a directory of its own (move the link aside, mkdir ${data}/releases, and move into it the data releases you trust)`,
      `problem data ${data}/current must be a relative link to releases/<name>, not to 'releases/../../elsewhere': tagflip will not copy, migrate or flip data through a link out of ${data}/releases; relink it: ln -sfn releases/<name> ${data}/current`,
    ]);
    expect(run.texts).not.toContain('locked');
    expect(run.texts).not.toContain('step facts');
    expect(readdirSync(victim.dir, { recursive: true, encoding: 'utf8' }).sort()).toEqual(victim.files);
    expect(readFileSync(join(victim.dir, 'v2/notes'), 'utf8')).toBe(PRECIOUS);
  });

  test('data/releases owned by another user, or a data release current leads to that is a link: refused', async () => {
    const owned = site();
    mkdirSync(join(owned.path, 'data/releases/v1'), { recursive: true });
    symlinkSync('releases/v1', join(owned.path, 'data/current'));
    chownSync(join(owned.path, 'data/releases'), NOBODY, NOBODY);
    const linked = site();
    const victim = home();
    mkdirSync(join(linked.path, 'data/releases'), { recursive: true });
    symlinkSync(victim.dir, join(linked.path, 'data/releases/v1'));
    symlinkSync('releases/v1/', join(linked.path, 'data/current'));
    const [ownedRun, linkedRun] = await Promise.all([runOpenWith(owned.path, join(owned.path, 'data'), ''), runOpenWith(linked.path, join(linked.path, 'data'), '')]);
    expect(verdicts(ownedRun)).toEqual([expect.stringMatching(new RegExp(`^problem owner ${owned.path}/data/releases belongs to nobody, not to root, .*; chown root ${owned.path}/data/releases, or set data-path to a directory of root's$`))]);
    const data = join(linked.path, 'data');
    expect(verdicts(linkedRun)).toEqual([
      `problem data ${data}/releases/v1, where ${data}/current points, is a symlink (to '${victim.dir}'): tagflip copies the live data from there, never through a link; put the data itself at ${data}/releases/v1`,
    ]);
    expect([ownedRun.texts, linkedRun.texts]).not.toContainEqual(expect.arrayContaining(['locked']));
  });

  test('data-path writable by its group: a warning with the remedy; the run goes on', async () => {
    const { path } = site();
    mkdirSync(join(path, 'data/releases'), { recursive: true });
    chmodSync(join(path, 'data'), 0o2775);
    const run = await runOpenWith(path, join(path, 'data'));
    expect(verdicts(run)).toEqual([
      `warning data-path ${path}/data is writable by group root (mode 2775): its members can change the data tagflip copies, migrates and removes; chmod g-w ${path}/data unless every member may`,
    ]);
    expect(run.texts).toContain('locked');
  });

  test('a directory of the app’s own at data-path (no current, no releases) is left alone without migrate, and checked with it', async () => {
    const { path } = site();
    mkdirSync(join(path, 'data'));
    chownSync(join(path, 'data'), NOBODY, NOBODY);
    const [without, withMigrate] = await Promise.all([runOpenWith(path, join(path, 'data'), ''), runOpenWith(site().path, join(path, 'data'))]);
    expect(verdicts(without)).toEqual([]);
    expect(without.texts).toContain('locked');
    expect(verdicts(withMigrate)).toEqual([expect.stringMatching(/^problem owner data-path .* belongs to nobody/)]);
  });

  test.each([
    ['releases/v1', false],
    ['releases/v1/', false],
    ['releases/gone', false],
    ['releases/..', true],
    ['releases/', true],
    ['releases//v1', true],
    ['releases/v1/../../..', true],
    ['/srv/other/data', true],
    ['../elsewhere', true],
  ])('data/current -> %s: refused %s', async (link, refused) => {
    const { path } = site();
    const data = join(path, 'data');
    mkdirSync(join(data, 'releases/v1'), { recursive: true });
    symlinkSync(link, join(data, 'current'));
    const run = await runOpenWith(path, data, '');
    const problem = `problem data ${data}/current must be a relative link to releases/<name>, not to '${link}': tagflip will not copy, migrate or flip data through a link out of ${data}/releases; relink it: ln -sfn releases/<name> ${data}/current`;
    expect(verdicts(run)).toEqual(refused ? [problem] : []);
  });
});
