import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployRootFor, gitRepoWithTags, openTempDir, runTagflip, loginFiles } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';
import { transpileSources } from '../support/transpiled.js';

// The faults deploys meet, against a real sshd. After each: no process of the
// deploy left on the host, no lock held, current unchanged, and the next
// deploy of the same tag succeeds. A build the client stopped hearing from is
// cleaned up by the host itself: directory (and data copy) removed, manifest
// and history saying failed, interrupted.
let sshd: TestSshd;
let repo: string;
let root: string;
let files: string;
let sites = 0;

beforeAll(async () => {
  sshd = await startSshd();
  repo = gitRepoWithTags(['v1', 'v2'], sshd.user);
  root = deployRootFor(sshd.user);
  files = loginFiles(sshd, 'tagflip-faults-');
});

afterAll(async () => {
  spawnSync('pkill', ['-KILL', '-u', sshd.user, '-f', '^sleep 300[0-9]']);
  await sshd?.stop();
});

const newSite = () => join(root, `site${++sites}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const deploy = (site: string, inputs: Record<string, string>) => runTagflip(sshd, site, repo, inputs);

/** The CLI deploying in a child process, as a runner would run it. */
function deployInChild(site: string, release: string, build: string, more: string[] = []): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(
    process.execPath,
    ['bin/tagflip.js', 'deploy', '--hosts', `${sshd.user}@${sshd.host}:${sshd.port}`, '--private-key', `@${join(files, 'key')}`,
      '--known-hosts', `@${join(files, 'known_hosts')}`, '--deploy-path', site, '--release', release, '--repository', repo, '--build', build, ...more],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return { child, output: () => output };
}

async function waitFor(path: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`${path} never appeared`);
    await sleep(100);
  }
}

/** Processes of the test user whose command line has `marker`, after waiting up to `ms` for them to go. */
async function leftovers(marker: string, ms = 10_000): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const found = spawnSync('pgrep', ['-a', '-u', sshd.user, '-f', marker]).stdout.toString().trim();
    if (!found || Date.now() > until) return found;
    await sleep(200);
  }
}

/** The lock of a site is free: flock -n on it succeeds (as the test user). */
function lockIsFree(site: string): boolean {
  const lock = join(site, '.tagflip/lock');
  return !existsSync(lock) || spawnSync('flock', ['-n', lock, 'true']).status === 0;
}

/**
 * A build that starts a child ignoring SIGHUP and SIGTERM, then waits: only a
 * group SIGKILL ends it. `marker` is a sleep duration no other test uses, so
 * `sleep <marker>` finds exactly this build's processes.
 */
const stubbornBuild = (marker: string, started: string) => `touch ${started}; sh -c 'trap "" HUP TERM; exec ${marker}' & trap "" HUP; ${marker}`;

async function lockFreed(site: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!lockIsFree(site)) {
    if (Date.now() > until) throw new Error(`the lock of ${site} was never released`);
    await sleep(100);
  }
}

/**
 * What the host did for a build nobody listens to any more, by the time it
 * released the lock: directory gone, manifest and history say failed at `step`,
 * interrupted.
 */
async function expectInterrupted(site: string, release: string, step: string): Promise<void> {
  await lockFreed(site);
  expect(existsSync(join(site, 'releases', release))).toBe(false);
  const interrupted = { state: 'failed', failedStep: step, reason: 'interrupted: connection lost' };
  expect(JSON.parse(readFileSync(join(site, '.tagflip/releases', `${release}.json`), 'utf8'))).toMatchObject(interrupted);
  const history = readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  expect(history.at(-1)).toMatchObject({ event: 'deploy', status: 'failed', release, failedStep: step, reason: 'interrupted: connection lost' });
}

/**
 * Kill sshd's own processes of every session (the monitor and the child that
 * owns the socket), not the user's shell: as when sshd crashes or is killed.
 */
function killSshdOnly(): void {
  const pids = sshd.sessionPids().flatMap((monitor) => [
    monitor,
    ...spawnSync('pgrep', ['-x', '-P', String(monitor), 'sshd']).stdout.toString().split('\n').filter(Boolean).map(Number),
  ]);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function expectCleanAfter(site: string, marker: string, current: string) {
  // A host that was stopped needs a moment after it wakes: allow for a loaded machine.
  expect(await leftovers(marker, 20_000)).toBe('');
  expect(lockIsFree(site)).toBe(true);
  expect(readlinkSync(join(site, 'current'))).toBe(current);
  const next = await deploy(site, { release: 'v2', 'lock-timeout': '30' });
  expect(next.host.error).toBe('');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v2');
}

test('SIGKILL of the client mid-build', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const marker = 'sleep 3001';
  const { child } = deployInChild(site, 'v2', stubbornBuild(marker, `${site}.started`));
  await waitFor(`${site}.started`);
  child.kill('SIGKILL');
  await expectInterrupted(site, 'v2', 'build');
  await expectCleanAfter(site, marker, 'releases/v1');
});

test('SIGTERM of the client mid-build: it says so, stops the remote work and exits non-zero', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const marker = 'sleep 3002';
  const { child, output } = deployInChild(site, 'v2', stubbornBuild(marker, `${site}.started`));
  await waitFor(`${site}.started`);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(143);
  expect(output()).toContain('received SIGTERM: dropping the connection to');
  await expectInterrupted(site, 'v2', 'build');
  await expectCleanAfter(site, marker, 'releases/v1');
});

test('SIGINT of the client mid-build (Ctrl-C): the same, exit status 130', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const marker = 'sleep 3007';
  const { child, output } = deployInChild(site, 'v2', stubbornBuild(marker, `${site}.started`));
  await waitFor(`${site}.started`);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  expect(await exited).toBe(130);
  expect(output()).toContain('received SIGINT: dropping the connection to');
  await expectInterrupted(site, 'v2', 'build');
  await expectCleanAfter(site, marker, 'releases/v1');
});

test('the client killed during migrate: the data copy goes too, data/current stays', async () => {
  const site = newSite();
  const migrate = 'echo "$TAGFLIP_RELEASE" > "$TAGFLIP_DATA_PATH/migrated"';
  await deploy(site, { release: 'v1', migrate });
  const marker = 'sleep 3008';
  const { child } = deployInChild(site, 'v2', 'true', ['--migrate', stubbornBuild(marker, `${site}.started`)]);
  await waitFor(`${site}.started`);
  expect(existsSync(join(site, 'data/releases/v2'))).toBe(true);
  child.kill('SIGKILL');
  await expectInterrupted(site, 'v2', 'migrate');
  expect(readdirSync(join(site, 'data/releases'))).toEqual(['v1']);
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v1');
  expect(readFileSync(join(site, 'data/current/migrated'), 'utf8')).toBe('v1\n');
  await expectCleanAfter(site, marker, 'releases/v1');
});

test('the sshd session process killed mid-build', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const marker = 'sleep 3003';
  const running = deploy(site, { release: 'v2', build: stubbornBuild(marker, `${site}.started`) });
  await waitFor(`${site}.started`);
  killSshdOnly();
  const { host } = await running;
  expect(host.status).toBe('failed');
  expect(host.error).toMatch(/connection|ended/);
  await expectInterrupted(site, 'v2', 'build');
  await expectCleanAfter(site, marker, 'releases/v1');
});

test('the whole session killed on the host (sshd, the shell, the build): the next deploy starts clean', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const marker = 'sleep 3009';
  const running = deploy(site, { release: 'v2', build: stubbornBuild(marker, `${site}.started`) });
  await waitFor(`${site}.started`);
  sshd.killSessions('SIGKILL');
  const { host } = await running;
  expect(host.status).toBe('failed');
  await expectCleanAfter(site, marker, 'releases/v1');
});

test('a server that goes silent is detected by keepalive, and the host is left consistent', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const marker = 'sleep 3004';
  const started = Date.now();
  const running = deploy(site, { release: 'v2', build: stubbornBuild(marker, `${site}.started`) });
  await waitFor(`${site}.started`);
  const stopped = sshd.sessionPids();
  // Stop every process of the session on the server side: no packets at all.
  for (const pid of stopped) spawnSync('pkill', ['-STOP', '-P', String(pid)]);
  stopped.forEach((pid) => process.kill(pid, 'SIGSTOP'));
  const { host } = await running;
  expect(host.status).toBe('failed');
  expect(Date.now() - started).toBeLessThan(90_000);
  expect(host.error).toMatch(/connection|Keepalive|timed out/i);
  // The server wakes up, finds the client gone, and cleans up.
  for (const pid of stopped) spawnSync('pkill', ['-CONT', '-P', String(pid)]);
  stopped.forEach((pid) => process.kill(pid, 'SIGCONT'));
  await expectInterrupted(site, 'v2', 'build');
  await expectCleanAfter(site, marker, 'releases/v1');
}, 150_000);

test('a full disk (file size limit) fails the build cleanly and says so', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const { host } = await deploy(site, { release: 'v2', build: 'ulimit -f 8; dd if=/dev/zero of=big bs=1k count=64' });
  expect(host.status).toBe('failed');
  expect(host.error).toMatch(/out of space/);
  expect(readdirSync(join(site, 'releases'))).toEqual(['v1']);
  await expectCleanAfter(site, 'sleep 3005', 'releases/v1');
});

test('a hook that starts a background daemon does not hang the deploy', async () => {
  const site = newSite();
  const marker = 'sleep 3006';
  const started = Date.now();
  const { host } = await deploy(site, { release: 'v1', build: `nohup ${marker} >/dev/null 2>&1 & echo started` });
  expect(host.status).toBe('deployed');
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(lockIsFree(site)).toBe(true);
  // The daemon is the user's to keep; this test stops it.
  execFileSync('pkill', ['-u', sshd.user, '-f', marker]);
});

// Control lines are printed newline first: output a hook leaves unterminated,
// on stdout or stderr, ends there instead of swallowing the next control line.
const RUN_TAG = /tagflip-[0-9a-f]{24}/;

test('hooks whose output has no final newline hide no control line, and the run tag is never logged', async () => {
  const site = newSite();
  const { host, log } = await deploy(site, {
    release: 'v1',
    build: 'printf "compiled 12 files"',
    migrate: 'printf "migrated" >&2',
    activate: 'printf "activated"',
    verify: 'printf "verified"',
  });
  expect(host.error).toBe('');
  expect(host.status).toBe('deployed');
  const lines = log.split('\n');
  for (const line of ['compiled 12 files', 'migrated', 'activated', 'verified']) expect(lines).toContain(line);
  expect(log).not.toMatch(RUN_TAG);
  // The ready line carried the commit and the time the build finished.
  const record = JSON.parse(readFileSync(join(site, '.tagflip/releases/v1.json'), 'utf8'));
  expect(record).toMatchObject({ state: 'active', commit: expect.stringMatching(/^[0-9a-f]{40}$/), finished: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
});

test('a build that prints without a final newline and exits 3 is reported with status 3', async () => {
  const site = newSite();
  const { host, log } = await deploy(site, { release: 'v1', build: 'printf "fatal: x"; exit 3' });
  expect(host.status).toBe('failed');
  expect(host.error).toContain('build exited with status 3');
  expect(log.split('\n')).toContain('fatal: x');
  expect(log).not.toMatch(RUN_TAG);
  expect(JSON.parse(readFileSync(join(site, '.tagflip/releases/v1.json'), 'utf8'))).toMatchObject({ state: 'failed', exitCode: 3, failedStep: 'build' });
});

test('a daemon the build leaves printing without newlines cannot hide the control lines of later phases', async () => {
  const site = newSite();
  const marker = 'sleep 0.0307';
  const { host, log } = await deploy(site, {
    release: 'v1',
    build: `(i=0; while [ $i -lt 150 ]; do printf x; ${marker}; i=$((i + 1)); done) & printf started`,
    activate: 'sleep 1',
    verify: 'sleep 1',
  });
  expect(host.error).toBe('');
  expect(host.status).toBe('deployed');
  expect(log).not.toMatch(RUN_TAG);
  expect(JSON.parse(readFileSync(join(site, '.tagflip/releases/v1.json'), 'utf8'))).toMatchObject({ state: 'active', commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
  spawnSync('pkill', ['-u', sshd.user, '-f', marker]);
});

// 64 MB on one line once took the client 132 s and 953 MB: the receiver
// rescanned its whole buffer on every chunk and never capped a line. The CLI
// runs in a child node of its own, so its peak memory (VmHWM) is its alone.
test('a build printing 64 MB on one line: the client stays fast and its memory flat', () => {
  const dir = transpileSources();
  const site = join(openTempDir('tagflip-flood-'), 'site');
  writeFileSync(
    join(dir, 'flood.mjs'),
    `import { readFileSync } from 'node:fs';
import { runCli } from './src/cli/cli.js';
let longest = 0;
let pieces = 0;
const stderr = (text) => { longest = Math.max(longest, text.length); if (text.startsWith('xxxx')) pieces += 1; };
const started = Date.now();
const code = await runCli(JSON.parse(process.argv[2]), { stdout: () => undefined, stderr, env: process.env });
const peakKb = Number(/VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
console.log(JSON.stringify({ code, seconds: (Date.now() - started) / 1000, peakMb: peakKb / 1024, longest, pieces }));
`,
  );
  const args = ['deploy', '--hosts', 'local', '--deploy-path', site, '--release', 'v1', '--build', "head -c 67108864 /dev/zero | tr '\\0' x"];
  const child = spawnSync(process.execPath, ['--max-old-space-size=96', join(dir, 'flood.mjs'), JSON.stringify(args)], { encoding: 'utf8', timeout: 60_000 });
  expect(child.stderr).toBe('');
  const measured = JSON.parse(child.stdout);
  expect(measured).toMatchObject({ code: 0, pieces: 1024 });
  expect(measured.seconds).toBeLessThan(20);
  expect(measured.peakMb).toBeLessThan(150);
  // Each piece is the cap and its mark, plus the logger's newline.
  expect(measured.longest).toBeLessThan(70_000);
});

// hosts: local runs the shell as a child of the CLI: a daemon holding that
// shell's stdout and stderr must not hold the CLI too.
test.each([
  ['holding the output pipes', 'sleep 30 &'],
  ['with its output redirected', 'nohup sleep 30 >/dev/null 2>&1 &'],
])('hosts: local: a build that starts a daemon %s returns within seconds; the daemon keeps running', (_what, start) => {
  const dir = openTempDir('tagflip-local-');
  const pidFile = join(dir, 'daemon.pid');
  const started = Date.now();
  const run = spawnSync(process.execPath, ['bin/tagflip.js', 'deploy', '--hosts', 'local', '--deploy-path', join(dir, 'site'), '--release', 'v1', '--build', `${start} echo $! > ${pidFile}`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const pid = Number(readFileSync(pidFile, 'utf8'));
  try {
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('status: deployed');
    // The daemon lives 30 s: returning well before it ends is what counts.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(() => process.kill(pid, 0)).not.toThrow();
  } finally {
    // The daemon is the user's to keep; this test stops it, by its pid.
    spawnSync('kill', ['-KILL', String(pid)]);
  }
});
