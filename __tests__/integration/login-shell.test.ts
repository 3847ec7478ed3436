/**
 * A login shell that cannot run tagflip's scripts (issue 20, item 5), over a
 * real sshd: a user whose shell is nologin or false, and an sshd with
 * `ForceCommand internal-sftp`. The session ends before anything of
 * tagflip's script has run, with an exit status; the message says so, names
 * the login shell and ForceCommand, and what to change. A connection that
 * drops while the first phase runs (no exit status) is still a drop.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { deployRootFor, recordingLogger } from '../support/fixtures.js';
import { ensureUser } from '../support/login-user.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

let sshd: TestSshd;
let sftpOnly: TestSshd;
let root: string;

beforeAll(async () => {
  [sshd, sftpOnly] = await Promise.all([startSshd(), startSshd({ extraConfig: ['ForceCommand internal-sftp'] })]);
  root = deployRootFor(sshd.user);
}, 60_000);

afterAll(async () => {
  await Promise.all([sshd?.stop(), sftpOnly?.stop()]);
});

/** A user of its own with `shell` as login shell; the sshd's key logs in as anyone (one AuthorizedKeysFile). */
async function userWithShell(user: string, shell: string): Promise<string> {
  await ensureUser(user);
  execFileSync('usermod', ['-s', shell, user]);
  return user;
}

function deploy(server: TestSshd, user: string, site: string, logger = recordingLogger()) {
  const settings = parseSettings({
    hosts: `${user}@${server.host}:${server.port}`,
    'private-key': server.privateKey,
    'known-hosts': server.knownHosts,
    'deploy-path': site,
    release: 'v1',
    build: 'true',
  });
  return runCommand(settings, logger).then((result) => ({ result, host: result.hosts[0], log: logger.text() }));
}

const remedy = (user: string) => `give ${user} a POSIX shell (chsh -s /bin/sh ${user}) and remove any ForceCommand for it in sshd_config`;

describe('a login shell that cannot run scripts gets its own message', () => {
  test.each([
    ['nologin', 'tagflip-nologin', '/usr/sbin/nologin', ': "This account is currently not available."'],
    ['false', 'tagflip-false', '/bin/false', ', printing nothing'],
  ])('%s as the login shell', async (_name, name, shell, words) => {
    const user = await userWithShell(name, shell);
    const site = join(root, `site-${name}`);
    const { result, host, log } = await deploy(sshd, user, site);
    expect(result.status).toBe('failed');
    const label = `${user}@${sshd.host}:${sshd.port}`;
    expect(host.error).toBe(
      `${label}: connect failed: the login shell of ${user}, or a ForceCommand for it, cannot run tagflip's scripts (it ended at once with exit status 1${words}). ${remedy(user)}`,
    );
    expect(log).not.toContain('dropped the session');
    expect(existsSync(site)).toBe(false);
  });

  test('ForceCommand internal-sftp in sshd_config', async () => {
    const user = sftpOnly.user;
    const site = join(root, 'site-sftp');
    const { result, host } = await deploy(sftpOnly, user, site);
    expect(result.status).toBe('failed');
    expect(host.error).toBe(
      `${user}@${sftpOnly.host}:${sftpOnly.port}: connect failed: the login shell of ${user}, or a ForceCommand for it, cannot run tagflip's scripts (it ended at once with exit status 1: "This service allows sftp connections only."). ${remedy(user)}`,
    );
    expect(existsSync(site)).toBe(false);
  });
});

test('a connection dropped in the first phase (waiting for the lock) is still told as a drop', async () => {
  const site = join(root, 'site-dropped');
  expect((await deploy(sshd, sshd.user, site)).host.error).toBe('');
  // Another run holds the lock: the next deploy's first phase waits for it.
  const holder = spawn('flock', [join(site, '.tagflip/lock'), 'sh', '-c', 'echo held && exec sleep 60'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await new Promise((resolve) => holder.stdout!.once('data', resolve));
    const logger = recordingLogger();
    const running = deploy(sshd, sshd.user, site, logger);
    const deadline = Date.now() + 20_000;
    while (!logger.text().includes('waiting up to') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    sshd.killSessions('SIGKILL');
    const { host } = await running;
    expect(host.error).toContain('the host or the network dropped the session');
    expect(host.error).not.toContain('login shell');
  } finally {
    process.kill(-holder.pid!, 'SIGKILL');
  }
}, 60_000);
