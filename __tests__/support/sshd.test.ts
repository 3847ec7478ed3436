/**
 * Proves the sshd test harness with the stock OpenSSH client: the authorized key logs
 * in, the wrong key and a mismatched host key are refused, session pids can be found
 * and killed, and stop() really tears everything down.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { startSshd, sshdAvailable, type TestSshd } from './sshd.js';

interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const describeIfSshd = sshdAvailable() ? describe : describe.skip;

describeIfSshd('sshd test harness', () => {
  let sshd: TestSshd;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  /** Write `content` into the harness temp dir (removed by stop()) and return its path. */
  function writeFile(name: string, content: string, mode = 0o600): string {
    const file = path.join(sshd.dir, name);
    fs.writeFileSync(file, content, { mode });
    return file;
  }

  /** Start the OpenSSH client against the harness, isolated from any user/global config. */
  function spawnSsh(opts: { key: string; knownHosts: string; command: string }) {
    const args = [
      '-F', '/dev/null',
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-o', 'IdentityAgent=none',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${opts.knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'ConnectTimeout=10',
      '-i', opts.key,
      '-p', String(sshd.port),
      `${sshd.user}@${sshd.host}`,
      opts.command,
    ];
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    const done = new Promise<SshResult>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: string) => (stdout += d));
      child.stderr.on('data', (d: string) => (stderr += d));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
    return { child, done };
  }

  const ssh = (opts: { key: string; knownHosts: string; command: string }) => spawnSsh(opts).done;

  async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('exposes connection details', () => {
    expect(sshd.host).toBe('127.0.0.1');
    expect(sshd.port).toBeGreaterThan(0);
    expect(sshd.privateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(sshd.wrongPrivateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(sshd.wrongPrivateKey).not.toBe(sshd.privateKey);
    const hostField = `[127.0.0.1]:${sshd.port}`;
    const lines = sshd.knownHosts.trim().split('\n').map((l) => l.split(' '));
    expect(lines).toEqual([
      [hostField, 'ssh-ed25519', expect.stringMatching(/^AAAA/)],
      [hostField, 'ssh-rsa', expect.stringMatching(/^AAAA/)],
    ]);
    const other = sshd.otherKnownHosts.trim().split(' ');
    expect(other).toEqual([hostField, 'ssh-ed25519', expect.stringMatching(/^AAAA/)]);
    expect(other[2]).not.toBe(lines[0][2]);
  });

  it('reports fingerprints matching the known_hosts keys', async () => {
    expect(sshd.hostKeyFingerprints).toHaveLength(2);
    const file = writeFile('fp_known_hosts', sshd.knownHosts, 0o644);
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('ssh-keygen', ['-E', 'sha256', '-lf', file], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
      child.once('error', reject);
      child.once('close', () => resolve(text));
    });
    const fromKnownHosts = out.trim().split('\n').map((l) => l.split(/\s+/)[1]);
    expect(fromKnownHosts).toEqual(sshd.hostKeyFingerprints);
    for (const fp of sshd.hostKeyFingerprints) expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('logs in with the authorized key and a verified host key', async () => {
    const result = await ssh({
      key: writeFile('id_good', sshd.privateKey),
      knownHosts: writeFile('known_hosts', sshd.knownHosts),
      command: 'echo ok; id -un',
    });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toBe(`ok\n${sshd.user}\n`);
  });

  it('refuses a key that is not authorized', async () => {
    const result = await ssh({
      key: writeFile('id_wrong', sshd.wrongPrivateKey),
      knownHosts: writeFile('known_hosts', sshd.knownHosts),
      command: 'echo ok',
    });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/Permission denied/);
  });

  it('refuses the connection when the host key does not match known_hosts', async () => {
    const result = await ssh({
      key: writeFile('id_good', sshd.privateKey),
      knownHosts: writeFile('other_known_hosts', sshd.otherKnownHosts),
      command: 'echo ok',
    });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  /** Start a long-running remote command and wait until its session is fully established. */
  async function startLongSession() {
    // Sessions of the previous tests may still be winding down; start from a clean slate.
    await waitFor(() => sshd.sessionPids().length === 0, 'earlier sessions to exit');
    const { child, done } = spawnSsh({
      key: writeFile('id_good', sshd.privateKey),
      knownHosts: writeFile('known_hosts', sshd.knownHosts),
      // Keeps writing, so it dies of SIGPIPE once its session is gone instead of being
      // orphaned (SIGTERM to a session pid does not kill the remote command).
      command: 'echo started; while echo tick; do sleep 0.2; done',
    });
    // "started" proves the session is authenticated and running, not just TCP-accepted.
    let output = '';
    child.stdout.on('data', (d: string) => (output += d));
    await waitFor(() => output.includes('started'), 'the remote command to start');
    // Wrapped: returning the bare promise would make the caller await the whole session.
    return { done };
  }

  it('lists session pids; SIGTERM to one drops its connection', async () => {
    const { done } = await startLongSession();
    const pids = sshd.sessionPids();
    expect(pids).toHaveLength(1);

    const t0 = Date.now();
    process.kill(pids[0], 'SIGTERM');
    const result = await done;
    expect(result.code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000); // dropped, not waited out
    expect(sshd.log()).toMatch(/Accepted publickey for/);
  });

  it('killSessions() drops live connections abruptly', async () => {
    const { done } = await startLongSession();
    const pids = sshd.sessionPids();

    const t0 = Date.now();
    expect(sshd.killSessions()).toEqual(pids);
    const result = await done;
    expect(result.code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await waitFor(() => sshd.sessionPids().length === 0, 'killed sessions to disappear');
  });

  it('stop() kills sshd and removes the temp dir', async () => {
    const { dir, port } = sshd;
    await sshd.stop();
    expect(fs.existsSync(dir)).toBe(false);
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    expect(accepted).toBe(false);
    await sshd.stop(); // idempotent
  });
});
