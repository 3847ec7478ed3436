/**
 * An upload that cannot finish: the connection cut mid-stream, the host out of
 * space. Nothing flips, no partial release stays, the lock is freed, and the
 * next deploy succeeds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { deployRootFor, runTagflip } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';
import { sampleTree } from '../support/trees.js';

let sshd: TestSshd;
let root: string;
let sites = 0;

beforeAll(async () => {
  sshd = await startSshd();
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

const newSite = () => join(root, `site${++sites}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} never happened`);
    await sleep(50);
  }
}

const lockIsFree = (site: string) => spawnSync('flock', ['-n', join(site, '.tagflip/lock'), 'true']).status === 0;
const pids = (user: string, name: string) => spawnSync('pgrep', ['-u', user, '-x', name]).stdout.toString().split('\n').filter(Boolean).map(Number);

/** Kill sshd's own processes of every session, not the user's shell: the host notices on its own. */
function killSshdOnly(server: TestSshd): void {
  for (const monitor of server.sessionPids()) {
    const children = spawnSync('pgrep', ['-x', '-P', String(monitor), 'sshd']).stdout.toString().split('\n').filter(Boolean).map(Number);
    for (const pid of [monitor, ...children]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

function expectFailedRecord(site: string, release: string): void {
  expect(existsSync(join(site, 'releases', release))).toBe(false);
  expect(existsSync(join(site, `.tagflip/releases/${release}.files`))).toBe(false);
  expect(JSON.parse(readFileSync(join(site, `.tagflip/releases/${release}.json`), 'utf8'))).toMatchObject({ state: 'failed', failedStep: 'upload' });
}

test('the connection cut mid-stream: nothing flips, the host removes the partial release, frees the lock; the next deploy succeeds', async () => {
  const tree = sampleTree(40);
  const site = newSite();
  expect((await runTagflip(sshd, site, '', { release: 'v1', upload: sampleTree(1) })).host.error).toBe('');
  const running = runTagflip(sshd, site, '', { release: 'v2', upload: tree });
  // Hold the host's tar still, so that the stream is surely in flight when sshd goes.
  await until('tar on the host', () => pids(sshd.user, 'tar').length > 0);
  pids(sshd.user, 'tar').forEach((pid) => process.kill(pid, 'SIGSTOP'));
  await sleep(300);
  killSshdOnly(sshd);
  pids(sshd.user, 'tar').forEach((pid) => process.kill(pid, 'SIGCONT'));
  const { result, host } = await running;
  expect(result.status).toBe('failed');
  expect(host.error).toContain(`${sshd.user}@127.0.0.1:${sshd.port}`);
  await until('the lock freed', () => lockIsFree(site));
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  expectFailedRecord(site, 'v2');
  const next = await runTagflip(sshd, site, '', { release: 'v2', upload: tree });
  expect(next.host.error).toBe('');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v2');
}, 60_000);

test('out of space mid-upload: a clear error naming the host, the release removed', async () => {
  // Every file the host writes is limited to 4 MB, as `ulimit -f` does.
  const small = await startSshd({ fileSizeLimit: 4 * 1024 * 1024 });
  try {
    const site = join(deployRootFor(small.user), 'site');
    const { result, host } = await runTagflip(small, site, '', { release: 'v1', upload: sampleTree(8) });
    expect(result.status).toBe('failed');
    expect(host.error).toMatch(new RegExp(`^${small.user}@127\\.0\\.0\\.1:${small.port}: upload failed: the upload exceeded the file size limit .*out of space`));
    expectFailedRecord(site, 'v1');
    expect(lockIsFree(site)).toBe(true);
    expect(existsSync(join(site, 'current'))).toBe(false);
    // The session survived the failure in order: nothing of the stream was run as commands.
    const next = await runTagflip(small, site, '', { release: 'v1', upload: sampleTree(1) });
    expect(next.host.error).toBe('');
  } finally {
    await small.stop();
  }
}, 60_000);
