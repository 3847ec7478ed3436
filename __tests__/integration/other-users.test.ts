/**
 * What the host's other users can see and do (issue 10, items 1, 6, 7), over a
 * real sshd and with `hosts: local`. `tagflip-spy` is another local user, made
 * here the way the sshd harness makes `tagflip-test`: it runs `ps -eo args`
 * over and over while a deploy runs, as anyone on a shared host can, and must
 * never see an env or secret-env value. So must /proc/<pid>/cmdline of every
 * process of the deploy user, read as the deploy goes.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/cli.js';
import { runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { deployRootFor, gitRepoWithTags, openTempDir, recordingLogger, runTagflip } from '../support/fixtures.js';
import { ensureUser } from '../support/login-user.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

const SPY = 'tagflip-spy';

let sshd: TestSshd;
let repo: string;
let root: string;

beforeAll(async () => {
  [sshd] = await Promise.all([startSshd(), ensureUser(SPY)]);
  repo = gitRepoWithTags(['v1', 'v2'], sshd.user);
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

const uidOf = (user: string) => Number(execFileSync('id', ['-u', user]).toString().trim());

/** Run a command as the spy, from /, and say how it went. */
function asSpy(command: string, ...args: string[]): { code: number | null; stdout: string } {
  const run = spawnSync('runuser', ['-u', SPY, '--', command, ...args], { cwd: '/', encoding: 'utf8' });
  return { code: run.status, stdout: run.stdout };
}

/**
 * Everything other users could read about the processes while a deploy runs:
 * the spy's `ps -eo args`, every 50 ms, and the command lines of `user`'s
 * processes, read from /proc at the same pace.
 */
class Watch {
  private readonly spy: ChildProcess;
  private psOutput = '';
  private readonly cmdlines = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(uid: number) {
    // A process group of its own, so that stop() ends the spy's loop and its ps.
    this.spy = spawn('runuser', ['-u', SPY, '--', 'sh', '-c', 'while :; do ps -eo args; sleep 0.05; done'], { cwd: '/', detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    this.spy.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.psOutput += chunk));
    this.timer = setInterval(() => this.readCmdlines(uid), 50);
  }

  private readCmdlines(uid: number): void {
    for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
      try {
        if (statSync(`/proc/${pid}`).uid === uid) this.cmdlines.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
      } catch {
        // gone meanwhile
      }
    }
  }

  /** What was seen: the spy's ps lines and the command lines, each once. */
  stop(): { ps: string[]; cmdlines: string[] } {
    clearInterval(this.timer);
    process.kill(-this.spy.pid!, 'SIGKILL');
    return { ps: [...new Set(this.psOutput.split('\n'))], cmdlines: [...this.cmdlines] };
  }
}

/** Values that must stay out of every command line. */
const PASSWORD = `hunter2-${randomBytes(8).toString('hex')}`;
const TOKEN = `t0ken-${randomBytes(8).toString('hex')}`;

/** Every hook sleeps long enough for the spy to see it, with a length that names it. */
const HOOKS = {
  env: `DB_PASSWORD=${PASSWORD}\nAPP_ENV=production`,
  'secret-env': `API_TOKEN=${TOKEN}`,
  build: `(umask 077 && printf '%s\\n' "$DB_PASSWORD" "$API_TOKEN" > "$TAGFLIP_DEPLOY_PATH/seen-by-build") && sleep 1.01`,
  migrate: '[ -n "$DB_PASSWORD" ] && [ -n "$API_TOKEN" ] && sleep 1.02',
  activate: '[ -n "$DB_PASSWORD" ] && [ -n "$API_TOKEN" ] && sleep 1.03',
  verify: '[ -n "$DB_PASSWORD" ] && [ -n "$API_TOKEN" ] && sleep 1.04',
};

/** The hooks ran with the values, the spy saw each of them run, and no value anywhere. */
function expectNoValueSeen(seen: { ps: string[]; cmdlines: string[] }, site: string): void {
  expect(readFileSync(join(site, 'seen-by-build'), 'utf8')).toBe(`${PASSWORD}\n${TOKEN}\n`);
  // The spy was looking: it saw every hook (and the timeout around it) while it ran.
  for (const hook of ['sleep 1.01', 'sleep 1.02', 'sleep 1.03', 'sleep 1.04']) expect(seen.ps).toContain(hook);
  expect(seen.ps.some((line) => /^(\/usr)?(\/bin\/)?timeout -k 5 /.test(line))).toBe(true);
  expect(seen.cmdlines.some((line) => line.startsWith('sleep 1.0'))).toBe(true);
  const leaks = [...seen.ps, ...seen.cmdlines].filter((line) => line.includes(PASSWORD) || line.includes(TOKEN));
  expect(leaks).toEqual([]);
}

describe('env and secret-env values are never on a command line', () => {
  test('over SSH: the other user sees every hook run, and no value; the deploy user’s command lines hold none', async () => {
    const site = join(root, 'spied-ssh');
    const watch = new Watch(uidOf(sshd.user));
    const { result, log } = await runTagflip(sshd, site, repo, { release: 'v1', ...HOOKS });
    const seen = watch.stop();
    expect([result.ok, log]).toEqual([true, expect.any(String)]);
    expectNoValueSeen(seen, site);
  });

  test('with hosts: local, the same', async () => {
    const site = join(openTempDir('tagflip-spied-local-'), 'site');
    const ownRepo = gitRepoWithTags(['v1']); // owned by whoever runs the tests, as git wants
    const watch = new Watch(process.getuid!());
    const settings = parseSettings({ hosts: 'local', 'deploy-path': site, repository: ownRepo, release: 'v1', ...HOOKS });
    const result = await runCommand(settings, recordingLogger());
    const seen = watch.stop();
    expect(result.ok).toBe(true);
    expectNoValueSeen(seen, site);
  });
});

describe('the CLI takes its secrets without a command line to show them', () => {
  test('an encrypted key and its passphrase from files, secret-env from TAGFLIP_SECRET_ENV: deployed over SSH, no warning', async () => {
    const files = openTempDir('tagflip-cli-secrets-');
    const key = join(files, 'key');
    writeFileSync(key, sshd.privateKey, { mode: 0o600 });
    execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', PASSWORD, '-f', key]);
    writeFileSync(join(files, 'passphrase'), `${PASSWORD}\n`, { mode: 0o600 });
    writeFileSync(join(files, 'known_hosts'), sshd.knownHosts);
    const site = join(root, 'cli-secrets');
    const argv = [
      'deploy', '--hosts', `${sshd.user}@${sshd.host}:${sshd.port}`, '--deploy-path', site, '--repository', repo, '--release', 'v1',
      '--private-key', `@${key}`, '--passphrase', `@${join(files, 'passphrase')}`, '--known-hosts', `@${join(files, 'known_hosts')}`,
      '--build', 'printf %s "$API_TOKEN" > token',
    ];
    let stdout = '';
    let stderr = '';
    const env: NodeJS.ProcessEnv = { HOME: files, USER: 'deploy', TAGFLIP_SECRET_ENV: `API_TOKEN=${TOKEN}` };
    const code = await runCli(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env });
    expect([code, stdout.split('\n')[0]]).toEqual([0, 'status: deployed']);
    expect(stderr).not.toContain('warning:');
    expect(readFileSync(join(site, 'current/token'), 'utf8')).toBe(TOKEN);
    expect(argv.join(' ')).not.toContain(PASSWORD);
    expect(argv.join(' ')).not.toContain(TOKEN);
  });
});

describe('another user cannot read the mirror; releases stay readable', () => {
  test('after a deploy with repository, .tagflip (and repo.git in it) is closed to the spy; releases/v1 is open', async () => {
    const site = join(root, 'private-mirror');
    const { result } = await runTagflip(sshd, site, repo, { release: 'v1', build: 'sh build.sh' });
    expect(result.ok).toBe(true);
    expect(existsSync(join(site, '.tagflip/repo.git/HEAD'))).toBe(true);
    expect((statSync(join(site, '.tagflip')).mode & 0o777).toString(8)).toBe('700');
    expect(asSpy('ls', join(site, '.tagflip/repo.git')).code).not.toBe(0);
    expect(asSpy('cat', join(site, '.tagflip/repo.git/HEAD')).code).not.toBe(0);
    expect(asSpy('ls', join(site, '.tagflip')).code).not.toBe(0);
    expect(asSpy('cat', join(site, 'releases/v1/version'))).toEqual({ code: 0, stdout: 'v1\n' });
    expect(asSpy('cat', join(site, 'current/built'))).toEqual({ code: 0, stdout: 'v1\n' });
  });
});

describe('preflight over SSH: a deploy-path others can change', () => {
  test('owned by root and writable by the deploy group (2775): a warning in the log with the remedy; the deploy goes ahead', async () => {
    const site = join(root, 'group-site');
    mkdirSync(site);
    chownSync(site, 0, Number(execFileSync('id', ['-g', sshd.user]).toString().trim()));
    chmodSync(site, 0o2775);
    const { result, log } = await runTagflip(sshd, site, repo, { release: 'v1', build: 'sh build.sh' });
    expect(result.ok).toBe(true);
    expect(log).toContain(`warning: ${sshd.user}@${sshd.host}:${sshd.port}: ${site} is writable by group ${sshd.user} (mode 2775): its members can change what tagflip deploys; chmod g-w ${site} unless every member may`);
  });

  test('owned by another user and writable by everyone: refused at preflight with both remedies; nothing is created', async () => {
    const site = join(root, 'spy-site');
    mkdirSync(site);
    chownSync(site, uidOf(SPY), uidOf(SPY));
    chmodSync(site, 0o777);
    const { result, host } = await runTagflip(sshd, site, repo, { release: 'v1', build: 'sh build.sh' });
    expect(result.ok).toBe(false);
    expect(host.error).toContain('preflight failed: ');
    expect(host.error).toContain(`${site} belongs to ${SPY}, not to ${sshd.user}, who deploys: another user must not be able to change what tagflip runs and records; chown ${sshd.user} ${site}`);
    expect(host.error).toContain(`${site} is writable by every user of the host (mode 777): anyone could plant files or links where tagflip writes; check it for files you did not make, then chmod o-w ${site}`);
    expect(readdirSync(site)).toEqual([]);
    expect(() => readlinkSync(join(site, 'current'))).toThrow();
  });
});

/** Every entry under `dir` (links not followed) with its owner and, for a file, its content: what "untouched" compares. */
function treeOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((name) => {
      const entry = lstatSync(join(dir, name));
      const what = entry.isSymbolicLink() ? `-> ${readlinkSync(join(dir, name))}` : entry.isFile() ? readFileSync(join(dir, name), 'utf8') : 'dir';
      return `${name} ${entry.uid} ${(entry.mode & 0o7777).toString(8)} ${what}`;
    });
}

// Issue 21, "what an attacker on the host showed": a data-path that another user
// owns and every user can write, its releases a link into a directory of the
// deploy user's and its current out of the data tree. tagflip once removed the
// deploy user's directory (rm -rf data/releases/<tag>, through the link) and
// migrated a copy of the other user's data (cp -a data/current/, through
// releases/..). Now preflight refuses all of it, before the lock, and nothing on
// the host changes.
describe('git refuses a repository for its owner (issue 22)', () => {
  test("a repository on the host another user owns: git's 'dubious ownership' gets safe.directory (or chown) as the remedy, not 'deploy key, network'", async () => {
    // As /srv/git/app.git, owned by the git user: readable by all, but another user's.
    const shared = mkdtempSync(join(tmpdir(), 'tagflip-owned-'));
    const other = join(shared, 'app.git');
    // A copy made by root is root's (a clone would refuse the test's repository for its owner too).
    execFileSync('cp', ['-R', join(repo, '.git'), other]);
    execFileSync('git', ['--git-dir', other, 'config', 'core.bare', 'true']);
    execFileSync('chmod', ['-R', 'a+rX', shared]);
    const site = join(root, 'owned-repository');
    const { result, host } = await runTagflip(sshd, site, other, { release: 'v1', build: 'sh build.sh' });
    expect(result.ok).toBe(false);
    expect(host.error).toContain(
      `source failed: git clone of ${other} failed. git on the host refused ${other} because another user owns it (git's safe.directory check): ` +
        `as ${sshd.user} on the host, run git config --global --add safe.directory '${other}' (or, if ${sshd.user} should own it, as root: chown -R ${sshd.user}: '${other}')`,
    );
    expect(host.error).not.toContain('deploy key');
    expect(() => readlinkSync(join(site, 'current'))).toThrow();
  });

  test("tagflip's mirror written by root: the deploy user cannot write it; the remedy is chown (or removing it), on a new release and on one being checked", async () => {
    const site = join(root, 'root-mirror');
    expect((await runTagflip(sshd, site, repo, { release: 'v1', build: 'sh build.sh' })).result.ok).toBe(true);
    const mirror = join(site, '.tagflip/repo.git');
    execFileSync('chown', ['-R', 'root', mirror]);
    const remedy = `${sshd.user} cannot write tagflip's mirror ${mirror} (another user, such as root, wrote to it): as root, chown -R ${sshd.user}: '${mirror}' (or remove it: the next deploy clones it again)`;
    const built = await runTagflip(sshd, site, repo, { release: 'v2', build: 'sh build.sh' });
    expect(built.host.error).toContain(`source failed: git fetch from ${repo} failed. ${remedy}`);
    // v1 has a record: the commit its ref names now is fetched before anything is planned.
    const checked = await runTagflip(sshd, site, repo, { release: 'v1', build: 'sh build.sh' });
    expect(checked.host.error).toContain(`${remedy}; nothing was changed`);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  });
});

describe('preflight over SSH: another user’s data-path', () => {
  test('0777, releases a link into the deploy user’s home, current out of the tree: refused with each remedy; nothing removed, copied or flipped', async () => {
    const site = join(root, 'data-attack');
    const store = join(root, 'data-attack-store');
    const inputs = { 'data-path': store, build: 'sh build.sh' };
    expect((await runTagflip(sshd, site, repo, { ...inputs, release: 'v1' })).result.status).toBe('deployed');

    // The deploy user's own directory, named like the release to come.
    const home = join(root, 'deploy-user-home');
    mkdirSync(join(home, 'v2'), { recursive: true });
    writeFileSync(join(home, 'v2/thesis.tex'), 'years of work\n');
    execFileSync('chown', ['-R', sshd.user, home]);
    // The other user's data, and their data-path leading to it.
    const theirs = join(root, 'spy-data');
    mkdirSync(theirs);
    writeFileSync(join(theirs, 'Data.fs'), 'the spy’s records\n');
    mkdirSync(store);
    symlinkSync(home, join(store, 'releases'));
    symlinkSync('releases/../spy-data', join(store, 'current'));
    execFileSync('chown', ['-R', '-h', SPY, theirs, store]);
    chmodSync(store, 0o777);
    const before = { home: treeOf(home), theirs: treeOf(theirs), store: treeOf(store), site: treeOf(site) };

    const migrate = 'echo migrated >> "$TAGFLIP_DATA_PATH/Data.fs"';
    const { result, host } = await runTagflip(sshd, site, repo, { ...inputs, release: 'v2', migrate });
    expect([result.ok, result.status, host.status]).toEqual([false, 'failed', 'failed']);
    expect(host.error).toContain('preflight failed: ');
    for (const message of [
      `data-path ${store} belongs to ${SPY}, not to ${sshd.user}, who deploys: another user must not be able to choose the data tagflip copies, migrates and removes; chown ${sshd.user} ${store}, or set data-path to a directory of ${sshd.user}'s`,
      `data-path ${store} is writable by every user of the host (mode 777): anyone could put a link there that tagflip would copy, migrate or remove through; check it for files you did not make, then chmod o-w ${store}`,
      `${store}/releases is a symlink (to '${home}'): tagflip copies data into it and removes data releases from it, never through a link; make it a directory of its own`,
      `${store}/current must be a relative link to releases/<name>, not to 'releases/../spy-data': tagflip will not copy, migrate or flip data through a link out of ${store}/releases; relink it: ln -sfn releases/<name> ${store}/current`,
      `fix the host, then run again; nothing was changed on ${sshd.user}@${sshd.host}:${sshd.port}`,
    ]) {
      expect(host.error).toContain(message);
    }
    // The deploy user's directory is still there, as it was; the other user's data was not copied nor migrated.
    expect(readFileSync(join(home, 'v2/thesis.tex'), 'utf8')).toBe('years of work\n');
    expect({ home: treeOf(home), theirs: treeOf(theirs), store: treeOf(store) }).toEqual({ home: before.home, theirs: before.theirs, store: before.store });
    // Nothing flipped, nothing built, no lock taken for it.
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
    expect(readdirSync(join(site, 'releases'))).toEqual(['v1']);
    expect(treeOf(site).filter((line) => !line.startsWith('.tagflip/lock'))).toEqual(before.site.filter((line) => !line.startsWith('.tagflip/lock')));

    // A rollback and retention, which flip and remove data releases, are refused the same way; so is the CLI, with exit code 1.
    for (const command of ['rollback', 'prune']) {
      const other = await runTagflip(sshd, site, repo, { ...inputs, command });
      expect([other.result.ok, other.host.status]).toEqual([false, 'failed']);
      expect(other.host.error).toContain(`${store}/releases is a symlink (to '${home}')`);
    }
    const files = openTempDir('tagflip-cli-data-attack-');
    writeFileSync(join(files, 'key'), sshd.privateKey, { mode: 0o600 });
    writeFileSync(join(files, 'known_hosts'), sshd.knownHosts);
    let stderr = '';
    const argv = [
      'deploy', '--hosts', `${sshd.user}@${sshd.host}:${sshd.port}`, '--deploy-path', site, '--data-path', store, '--repository', repo, '--release', 'v2',
      '--migrate', migrate, '--private-key', `@${join(files, 'key')}`, '--known-hosts', `@${join(files, 'known_hosts')}`,
    ];
    const code = await runCli(argv, { stdout: () => undefined, stderr: (text) => (stderr += text), env: { HOME: files } });
    expect(code).toBe(1);
    expect(stderr).toContain(`data-path ${store} belongs to ${SPY}`);
    expect({ home: treeOf(home), theirs: treeOf(theirs), store: treeOf(store) }).toEqual({ home: before.home, theirs: before.theirs, store: before.store });
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  });
});
