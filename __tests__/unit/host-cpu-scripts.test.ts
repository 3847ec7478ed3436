/**
 * The host-side work of the scripts, made cheap (issue 12) without changing
 * what they leave: the history grows by appends (a torn last line tolerated),
 * the facts read every record in one pass (or without awk, by the shell), a
 * prune of many failed records, and a flock that cannot run told at once.
 * Every script runs for real in /bin/sh against a temporary deploy-path.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { gitRepoWithTags } from '../support/fixtures.js';
import { readHostFacts } from '../../src/core/facts.js';
import { parseHistoryEntry, renderRecord } from '../../src/core/manifest.js';
import { CLOSE_WORDS, renderBuildScript, renderHistoryScript, renderOpenScript, renderPruneScript } from '../../src/remote/scripts.js';
import { hostFile } from '../support/host-files.js';
import { control, manifest } from './host-facts.js';
import { runSh, scriptContext } from './script-runner.js';

const root = mkdtempSync(join(tmpdir(), 'tagflip-hostcpu-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
function site(): string {
  count += 1;
  const path = join(root, `site-${count}`);
  mkdirSync(join(path, '.tagflip/releases'), { recursive: true, mode: 0o700 });
  mkdirSync(join(path, 'releases'));
  return path;
}

const STOP_WATCHDOG = '\nkill "$tf_watchdog" 2>/dev/null\n';
const HOLDER = { command: 'deploy', release: 'v2', actor: 'octocat', runUrl: '', host: 'deploy@web1', since: '' };
const DEPLOYED = { time: '2024-06-01T10:00:00Z', event: 'deploy', status: 'deployed', release: 'v1', previousRelease: '', host: 'h', actor: 'a', runUrl: '' };
const recordHistory = (path: string) =>
  runSh(renderHistoryScript(scriptContext(path), 'rollback', 'failed', { failedStep: 'verify', exitCode: 3, reason: 'verify exited with status 3' }).text);

/** The open script's facts (lock 'no': nothing taken), with PATH as given. */
function openFacts(path: string, env?: NodeJS.ProcessEnv) {
  const run = runSh(renderOpenScript(scriptContext(path), { lock: 'no', lockTimeout: 1, holder: HOLDER }).text + STOP_WATCHDOG, env && { ...process.env, ...env });
  expect(run.code).toBe(0);
  return { run, facts: readHostFacts(run.texts.map(control)) };
}

describe('the history', () => {
  test('a record is appended in place: the file is not rewritten (same inode), and a new one is private', () => {
    const path = site();
    const file = join(path, '.tagflip/history.jsonl');
    expect(recordHistory(path).code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const inode = statSync(file).ino;
    expect(recordHistory(path).code).toBe(0);
    expect(statSync(file).ino).toBe(inode);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((line) => parseHistoryEntry(line)?.status)).toEqual(['failed', 'failed']);
    expect(JSON.parse(lines[1])).toMatchObject({ failedStep: 'verify', exitCode: 3, reason: 'verify exited with status 3', time: expect.stringMatching(/^\d{4}-/) });
  });

  test('after a torn last line (a crash mid-write), the next record is still read, by the facts too', () => {
    const path = site();
    const file = join(path, '.tagflip/history.jsonl');
    writeFileSync(file, `${renderRecord(DEPLOYED)}\n{"time":"2024-06-01T11:00:00Z","event":"dep`, { mode: 0o600 });
    expect(recordHistory(path).code).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.map((line) => parseHistoryEntry(line)?.event)).toEqual(['deploy', 'rollback']);
    expect(openFacts(path).facts.history.map((entry) => `${entry.event} ${entry.status}`)).toEqual(['deploy deployed', 'rollback failed']);
  });

  test('a torn line alone, or text that is not a record, still reads as nothing', () => {
    expect(parseHistoryEntry('{"time":"2024-06-01T11:00:00Z","event":"dep')).toBeNull();
    expect(parseHistoryEntry('garbage {"time":"x"} more')).toBeNull();
  });

  test('the facts read only the newest 200 lines of a long history', () => {
    const path = site();
    const lines = Array.from({ length: 5000 }, (_, i) => renderRecord({ ...DEPLOYED, release: `r${i}` }));
    writeFileSync(join(path, '.tagflip/history.jsonl'), `${lines.join('\n')}\n`);
    const history = openFacts(path).facts.history;
    expect(history).toHaveLength(200);
    expect([history[0].release, history[199].release]).toEqual(['r4800', 'r4999']);
  });
});

/** A PATH that has every command of this machine but awk. */
function pathWithoutAwk(): string {
  const bin = join(root, 'no-awk-bin');
  if (!existsSync(bin)) {
    mkdirSync(bin);
    for (const dir of ['/usr/local/bin', '/usr/bin', '/bin']) {
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        if (/awk$/.test(name) || existsSync(join(bin, name))) continue;
        symlinkSync(join(dir, name), join(bin, name));
      }
    }
  }
  return bin;
}

describe('the records, in one read', () => {
  const records = (path: string) => {
    const dir = join(path, '.tagflip/releases');
    writeFileSync(join(dir, 'v1.json'), `${renderRecord(manifest('v1', 'inactive'))}\n`);
    // Written by hand over several lines: read as one.
    writeFileSync(join(dir, 'v2.json'), JSON.stringify(manifest('v2', 'active', 'v1'), null, 2));
    writeFileSync(join(dir, 'empty.json'), '');
    writeFileSync(join(dir, 'v3.json'), `${renderRecord(manifest('v3', 'failed'))}\n`);
    mkdirSync(join(dir, 'odd.json'));
  };

  test.each([
    ['with awk', undefined],
    ['without awk (the shell reads them)', 'no-awk'],
  ])('%s: every record, hand-written ones over several lines too; empty files and directories skipped', (_what, mode) => {
    const path = site();
    records(path);
    const { facts } = openFacts(path, mode ? { PATH: pathWithoutAwk() } : undefined);
    expect([...facts.manifests.keys()].sort()).toEqual(['v1', 'v2', 'v3']);
    expect(facts.manifests.get('v2')).toMatchObject({ state: 'active', previousRelease: 'v1' });
  });

  test('without awk, the history is read too', () => {
    const path = site();
    writeFileSync(join(path, '.tagflip/history.jsonl'), `${renderRecord(DEPLOYED)}\n`);
    expect(openFacts(path, { PATH: pathWithoutAwk() }).facts.history.map((entry) => entry.release)).toEqual(['v1']);
  });
});

describe('the content list of the current release (upload), behind the tag', () => {
  // Read by one process (a list may have 50,000 lines), with the tag in none of its arguments (ps).
  test.each([
    ['with awk', undefined],
    ['without awk (sed, its script in the run directory)', 'no-awk'],
  ])('%s: every line of the list, and what find saw', (_what, mode) => {
    const path = site();
    mkdirSync(join(path, 'releases/v1'));
    writeFileSync(join(path, 'releases/v1/kept.txt'), 'kept\n');
    symlinkSync('releases/v1', join(path, 'current'));
    const lines = Array.from({ length: 10_000 }, (_, i) => JSON.stringify({ path: `f${i}`, type: 'file' }));
    writeFileSync(join(path, '.tagflip/releases/v1.files'), `${lines.join('\n')}\n`);
    writeFileSync(join(path, 'releases/v1/changed.txt'), 'changed\n');
    // The identities the upload step recorded; changed.txt is written again since, extra.txt is no file of the upload.
    execFileSync('sh', ['-c', `${hostFile('identity.sh')}\ncd "$1" && tf_identity_owner && tf_identities . | LC_ALL=C sort -z > "$2"`, 'sh', join(path, 'releases/v1'), join(path, '.tagflip/releases/v1.ids')]);
    writeFileSync(join(path, 'releases/v1/changed.txt'), 'CHANGED\n');
    writeFileSync(join(path, 'releases/v1/extra.txt'), 'extra\n');
    const run = runSh(renderOpenScript(scriptContext(path, { upload: true }), { lock: 'no', lockTimeout: 1, holder: HOLDER }).text + STOP_WATCHDOG, mode ? { ...process.env, PATH: pathWithoutAwk() } : undefined);
    expect(run.code).toBe(0);
    const { currentContent } = readHostFacts(run.texts.map(control));
    expect(currentContent?.files).toEqual(new Set(['kept.txt']));
    expect(currentContent?.lines).toEqual(new Set(lines));
  });
});

describe('prune of many failed records', () => {
  test('records without a directory go by one rm, each named; the directories and their records too', () => {
    const path = site();
    const failed = Array.from({ length: 50 }, (_, i) => `f${i}`);
    for (const name of failed) writeFileSync(join(path, `.tagflip/releases/${name}.json`), renderRecord(manifest(name, 'failed')));
    writeFileSync(join(path, '.tagflip/releases/f0.files'), '');
    mkdirSync(join(path, 'releases/v1'));
    writeFileSync(join(path, '.tagflip/releases/v1.json'), renderRecord(manifest('v1', 'inactive')));
    mkdirSync(join(path, 'releases/v2'));
    symlinkSync('releases/v2', join(path, 'current'));
    const run = runSh(renderPruneScript(scriptContext(path), ['v1', ...failed]).text);
    expect(run.code).toBe(0);
    expect(run.texts).toEqual(['step prune', 'removed v1', ...failed.map((name) => `removed-record ${name}`)]);
    expect(readdirSync(join(path, '.tagflip/releases'))).toEqual([]);
    expect(readdirSync(join(path, 'releases'))).toEqual(['v2']);
  });

  test('a record whose release current still names (a dangling link) is refused, and nothing goes', () => {
    const path = site();
    writeFileSync(join(path, '.tagflip/releases/f1.json'), renderRecord(manifest('f1', 'failed')));
    writeFileSync(join(path, '.tagflip/releases/f2.json'), renderRecord(manifest('f2', 'failed')));
    symlinkSync('releases/f2', join(path, 'current'));
    const run = runSh(renderPruneScript(scriptContext(path), ['f1', 'f2']).text);
    expect(run.code).toBe(1);
    expect(run.texts).toEqual(['step prune', 'error prune 1 refusing to remove releases/f2: it is current']);
    expect(readdirSync(join(path, '.tagflip/releases')).sort()).toEqual(['f1.json', 'f2.json']);
  });

  test('a record that cannot be removed is named', () => {
    if (process.getuid?.() === 0) return; // root removes anything: see the same case in the sh tests run as another user
    const path = site();
    writeFileSync(join(path, '.tagflip/releases/f1.json'), renderRecord(manifest('f1', 'failed')));
    chmodSync(join(path, '.tagflip/releases'), 0o500);
    const run = runSh(renderPruneScript(scriptContext(path), ['f1']).text);
    chmodSync(join(path, '.tagflip/releases'), 0o700);
    expect(run.texts.at(-1)).toBe('error prune 1 cannot remove the record of f1');
  });
});

describe('a flock that cannot run (a BusyBox without the applet)', () => {
  const fakeFlock = () => {
    const bin = join(root, 'busybox-bin');
    if (!existsSync(bin)) {
      mkdirSync(bin);
      writeFileSync(join(bin, 'flock'), '#!/bin/sh\necho "flock: applet not found" >&2\nexit 127\n', { mode: 0o755 });
    }
    return `${bin}:${process.env.PATH}`;
  };

  test('the open script says what failed, at once, not that another run held the lock', () => {
    const path = site();
    const started = Date.now();
    const text = renderOpenScript(scriptContext(path), { lock: 'yes', lockTimeout: 30, holder: HOLDER }).text + STOP_WATCHDOG;
    const run = runSh(text, { ...process.env, PATH: fakeFlock() });
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', 'flock-failed 127 flock: applet not found']);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('status does not report a holder it cannot know', () => {
    const path = site();
    writeFileSync(join(path, '.tagflip/lock'), '');
    const run = runSh(renderOpenScript(scriptContext(path), { lock: 'report', lockTimeout: 1, holder: HOLDER }).text + STOP_WATCHDOG, { ...process.env, PATH: fakeFlock() });
    expect(readHostFacts(run.texts.map(control)).lockHolder).toBeNull();
  });
});

describe('how long a build ran, without a clock process per build', () => {
  // The start is the time of a file in the run directory; the clock is read
  // only for a build that ends by SIGKILL, to tell timeout's -k from another kill.
  const build = (command: string, runDir: string | null) => {
    const path = site();
    const ctx = scriptContext(path, { build: command, commandTimeout: 1 });
    const env = runDir ? { ...process.env, tf_run_dir: runDir } : undefined;
    return runSh(renderBuildScript(ctx, manifest('v2', 'building', 'v1')).text, env);
  };

  test.each([
    ['with', true],
    ['without', false],
  ])('%s a run directory: a build that ignores SIGTERM past command-timeout is told as too long, not as killed', (_with, hasRunDir) => {
    const runDir = hasRunDir ? mkdtempSync(join(root, 'run-')) : null;
    // SIGTERM ignored is inherited through exec: sleep outlives timeout's TERM, until its KILL 5 s later.
    const run = build("trap '' TERM; sleep 30", runDir);
    expect(run.texts.at(-1)).toBe('error build 137 build ran longer than command-timeout (1 s) and was stopped');
  }, 20_000);

  test('a build killed at once by another hand is told as killed', () => {
    const run = build('kill -KILL $$', mkdtempSync(join(root, 'run-')));
    expect(run.texts.at(-1)).toBe('error build 137 build was killed by signal 9');
  });
});

/** A directory holding stand-ins for `names` that fail when their first argument is `when` (else run the real one). */
function failing(names: string[], when: string): string {
  const dir = mkdtempSync(join(root, 'bin-'));
  for (const name of names) {
    const real = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    writeFileSync(join(dir, name), `#!/bin/sh\ncase " $* " in *" ${when} "*) echo "${name}: failing on purpose" >&2; exit 3 ;; esac\nexec '${real}' "$@"\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

describe('the source streamed from git archive into tar', () => {
  const repo = gitRepoWithTags(['v1', 'v2']);
  const build = (bin: string | null) => {
    const path = site();
    execFileSync('git', ['clone', '-q', '--mirror', repo, join(path, '.tagflip/repo.git')]);
    const ctx = scriptContext(path, { repository: repo, ref: 'v2' });
    return { path, run: runSh(renderBuildScript(ctx, manifest('v2', 'building', 'v1')).text, bin ? { ...process.env, PATH: `${bin}:${process.env.PATH}` } : undefined) };
  };

  test('the tree lands in the release, and no archive file is left in it', () => {
    const { path, run } = build(null);
    expect(run.texts.at(-1)).toMatch(/^ready /);
    expect(readdirSync(join(path, 'releases/v2')).sort()).toEqual(['build.sh', 'version']);
    expect(readFileSync(join(path, 'releases/v2/version'), 'utf8')).toBe('v2\n');
  });

  test.each([
    ['git archive', ['git'], 'archive'],
    ['tar', ['tar'], '-x'],
  ])('%s failing fails the build, and the release is gone', (_what, names, when) => {
    const { path, run } = build(failing(names, when));
    expect(run.texts.at(-1)).toBe(`error source 1 exporting v2 into ${join(path, 'releases/v2')} failed`);
    expect(existsSync(join(path, 'releases/v2'))).toBe(false);
  });
});

describe('the mv -T probe', () => {
  const preflight = (path: string, bin: string) =>
    runSh(renderOpenScript(scriptContext(path), { lock: 'no', lockTimeout: 1, holder: HOLDER }).text + STOP_WATCHDOG, { ...process.env, PATH: `${bin}:${process.env.PATH}` });

  test('a host whose mv has no -T is told so at preflight', () => {
    const run = preflight(site(), failing(['mv'], '-T'));
    expect(run.texts).toContain("problem mv-T 'mv -T' does not work: tagflip flips current with it; install GNU coreutils");
  });

  test('where a flip by mv -T has worked (.tagflip/mv-T), it is not probed again', () => {
    const path = site();
    writeFileSync(join(path, '.tagflip/mv-T'), '');
    const run = preflight(path, failing(['mv'], '-T'));
    expect(run.texts.filter((text) => text.startsWith('problem'))).toEqual([]);
  });
});

describe('the watchdog', () => {
  test('stopped by the closing words, it leaves no process behind (not even its sleep)', () => {
    const path = site();
    const sidFile = join(root, `sid-${Date.now()}`);
    const script = renderOpenScript(scriptContext(path), { lock: 'no', lockTimeout: 1, holder: HOLDER }).text;
    // A session of its own, so that whatever outlives the shell still carries its id.
    const run = spawnSync('setsid', ['-w', 'sh', '-c', `printf %s "$$" > '${sidFile}'; exec sh -s`], { input: `${script}\n${CLOSE_WORDS}\n`, encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(0);
    const sid = readFileSync(sidFile, 'utf8');
    // (A process killed a moment ago may still wait to be reaped: it runs nothing.)
    const left = spawnSync('pgrep', ['-a', '-s', sid], { encoding: 'utf8' }).stdout.split('\n').filter((line) => line && !line.includes('<defunct>'));
    expect(left).toEqual([]);
  });
});

describe('never rebuilt in place, with the real paths compared only when needed', () => {
  const build = (setup: (path: string) => void) => {
    const path = site();
    setup(path);
    return runSh(renderBuildScript(scriptContext(path, { build: 'true' }), manifest('v2', 'building', 'v1')).text);
  };

  test('current dangling at the release to build (its directory gone): refused, nothing made', () => {
    let site = '';
    const run = build((path) => {
      site = path;
      symlinkSync('releases/v2', join(path, 'current'));
    });
    expect(run.texts.at(-1)).toBe('error prepare 1 releases/v2 is the current release; it is never rebuilt in place');
    expect(existsSync(join(site, 'releases/v2'))).toBe(false);
  });

  test('current leading to the release through another name: refused', () => {
    const run = build((path) => {
      mkdirSync(join(path, 'releases/v2'));
      symlinkSync('v2', join(path, 'releases/alias'));
      symlinkSync('releases/alias', join(path, 'current'));
    });
    expect(run.texts.at(-1)).toBe('error prepare 1 releases/v2 is the current release; it is never rebuilt in place');
  });

  test('current at another release: built', () => {
    const run = build((path) => {
      mkdirSync(join(path, 'releases/v1'));
      symlinkSync('releases/v1', join(path, 'current'));
    });
    expect(run.texts.at(-1)).toMatch(/^ready /);
  });
});
