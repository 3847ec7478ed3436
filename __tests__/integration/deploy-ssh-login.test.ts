import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { type AddressInfo, connect, createServer } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { deployRootFor, recordingLogger, runTagflip } from '../support/fixtures.js';
import { startSshd } from '../support/sshd.js';
import { sshd, repo, startDeploySuite, newSite, throughProxy, deploy, current } from '../support/deploy-suite.js';

// Every test here deploys over SSH to a real OpenSSH sshd started for the suite.
startDeploySuite();

test('logs in with the key straight away: no "none" attempt (sshd answers it only after a delay), and the signed request without asking first', async () => {
  const verbose = await startSshd({ user: sshd.user, clientKey: { privateKey: sshd.privateKey, publicKey: sshd.publicKey }, logLevel: 'DEBUG1' });
  try {
    const site = join(deployRootFor(sshd.user), 'straight');
    const { result } = await runTagflip(verbose, site, repo, { build: 'sh build.sh', release: 'v1' });
    expect(result.status).toBe('deployed');
    expect(verbose.log()).toMatch(/userauth-request for user \S+ service ssh-connection method publickey/);
    expect(verbose.log()).not.toMatch(/method none/);
    // Asking whether the key would do first costs a round trip; sshd logs the
    // answer to such a query as "Postponed publickey".
    expect(verbose.log()).toMatch(/Accepted publickey for /);
    expect(verbose.log()).not.toMatch(/Postponed publickey/);
  } finally {
    await verbose.stop();
  }
});

test('asks for the command right behind the channel: five client flights before the first script', async () => {
  // A flight is what the client sends before it waits for an answer: the
  // identification, the key exchange, the service request, the login, the
  // channel and its command. ssh2 alone waits for the channel to be
  // confirmed before it asks for the command: six.
  //
  // Counted by cause, not by the clock (issue 22: with both CPUs busy, a
  // starved client's flight was split by a pause and counted as two). The
  // proxy holds what the server sends and hands it over in batches, 100 ms
  // after the first byte of each; every byte the client writes is tagged with
  // the number of batches it had been given. Bytes with the same tag were sent
  // without hearing anything new from the server: one flight, however slowly.
  const HOLD_MS = 100;
  const writes: { batch: number; bytes: number }[] = [];
  let delivered = 0;
  const proxy = createServer((client) => {
    const upstream = connect({ host: sshd.host, port: sshd.port });
    let held: Buffer[] = [];
    client.on('data', (chunk) => {
      writes.push({ batch: delivered, bytes: chunk.length });
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      held.push(chunk);
      if (held.length > 1) return;
      setTimeout(() => {
        const batch = Buffer.concat(held);
        held = [];
        delivered += 1;
        client.write(batch);
      }, HOLD_MS);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => setTimeout(() => client.end(), HOLD_MS * 2));
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
  });
  const { home, login } = await throughProxy(proxy, 'flights');
  try {
    const child = spawn(process.execPath, ['bin/tagflip.js', 'status', ...login, '--deploy-path', newSite()], { stdio: 'ignore', env: { PATH: process.env.PATH, HOME: home } });
    expect(await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))).toBe(0);
  } finally {
    proxy.close();
  }
  const flights: number[] = [];
  writes.forEach(({ batch, bytes }, index) => {
    if (index === 0 || batch !== writes[index - 1].batch) flights.push(0);
    flights[flights.length - 1] += bytes;
  });
  // The first script (the open script) is tens of KB; nothing before it is.
  const script = flights.findIndex((bytes) => bytes > 8 * 1024);
  expect(script).toBe(5);
  // The fifth holds the channel's open and the exec of the remote command (either alone is some 60 bytes).
  expect(flights[4]).toBeGreaterThan(150);
}, 30_000);

test.each([
  ['RSA', ['-t', 'rsa', '-b', '2048'], /Accepted publickey for \S+ from .* RSA SHA256:/],
  ['ECDSA', ['-t', 'ecdsa', '-b', '256'], /Accepted publickey for \S+ from .* ECDSA SHA256:/],
])('an %s client key also logs in with one signed request', async (_type, keygenArgs, accepted) => {
  const dir = mkdtempSync(join(tmpdir(), 'tagflip-keytype-'));
  execFileSync('ssh-keygen', ['-q', '-N', '', '-C', 'tagflip-test', ...keygenArgs, '-f', join(dir, 'key')]);
  const clientKey = { privateKey: readFileSync(join(dir, 'key'), 'utf8'), publicKey: readFileSync(join(dir, 'key.pub'), 'utf8').trim() };
  const other = await startSshd({ user: sshd.user, clientKey });
  try {
    const site = join(deployRootFor(sshd.user), `keytype-${_type}`);
    const { result } = await runTagflip(other, site, repo, { build: 'sh build.sh', release: 'v1' });
    expect(result.status).toBe('deployed');
    expect(other.log()).toMatch(accepted);
    expect(other.log()).not.toMatch(/Postponed publickey/);
  } finally {
    await other.stop();
  }
});

test('the CLI exits when its session has ended, even if the network never delivers the end of the server side of the TCP connection', async () => {
  // A path that forwards everything except the end of the server's side, as a
  // firewall that drops the last FIN would: a graceful close would wait for it.
  const proxy = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: sshd.host, port: sshd.port, allowHalfOpen: true });
    client.pipe(upstream);
    upstream.on('data', (chunk) => client.write(chunk));
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
  });
  const { home, login } = await throughProxy(proxy, 'fin');
  const site = newSite();
  const args = ['deploy', ...login, '--deploy-path', site, '--repository', repo, '--release', 'v1', '--build', 'sh build.sh'];
  try {
    const child = spawn(process.execPath, ['bin/tagflip.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: home } });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Generous: a process still waiting for that FIN would never exit on its own.
    const limit = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(limit);
    expect(code).toBe(0);
    expect(stdout).toContain('status: deployed');
  } finally {
    proxy.close();
  }
  expect(current(site)).toBe('releases/v1');
}, 45_000);

test('a wrong host key is refused before anything happens, naming the offered key', async () => {
  const site = newSite();
  const { result } = await deploy(site, { release: 'v1', 'known-hosts': sshd.otherKnownHosts });
  const error = result.hosts[0].error;

  expect(result.status).toBe('failed');
  expect(error).toContain(`${sshd.host}:${sshd.port}`);
  expect(error).toMatch(/host key verification failed: the server offered ssh-ed25519 SHA256:/);
  expect(error).toContain(sshd.hostKeyFingerprints[0]);
  expect(error).toContain(`ssh-keyscan -p ${sshd.port} ${sshd.host}`);
  expect(existsSync(site)).toBe(false);
});

test('host-fingerprint works instead of known-hosts, and a wrong one is refused', async () => {
  const site = newSite();
  const ok = await deploy(site, { release: 'v1', 'known-hosts': '', 'host-fingerprint': sshd.hostKeyFingerprints[0] });
  expect(ok.result.status).toBe('deployed');

  const wrong = await deploy(site, { release: 'v2', 'known-hosts': '', 'host-fingerprint': `SHA256:${'A'.repeat(43)}` });
  expect(wrong.result.status).toBe('failed');
  expect(wrong.result.hosts[0].error).toMatch(/host key verification failed/);
  expect(current(site)).toBe('releases/v1');
});

test('a wrong client key is refused with a clear message', async () => {
  const site = newSite();
  const { result } = await deploy(site, { release: 'v1', 'private-key': sshd.wrongPrivateKey });
  expect(result.status).toBe('failed');
  expect(result.hosts[0].error).toContain(`the server refused the private key for user '${sshd.user}'`);
  expect(result.hosts[0].error).toContain('authorized_keys');
  expect(existsSync(site)).toBe(false);
});

test('an unreachable port fails with a clear connect error', async () => {
  const settings = parseSettings({
    hosts: `${sshd.user}@127.0.0.1:1`,
    'private-key': sshd.privateKey,
    'insecure-ignore-host-key': 'true',
    'deploy-path': newSite(),
    release: 'v1',
  });
  const result = await runCommand(settings, recordingLogger());
  expect(result.status).toBe('failed');
  expect(result.hosts[0].error).toMatch(/127\.0\.0\.1:1: connect failed: connection refused on port 1/);
});

test('a server that takes the TCP connection but never speaks SSH fails within connect-timeout', async () => {
  const mute = createServer(() => undefined);
  await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
  const { port } = mute.address() as AddressInfo;
  try {
    const settings = parseSettings({
      hosts: `${sshd.user}@127.0.0.1:${port}`,
      'private-key': sshd.privateKey,
      'insecure-ignore-host-key': 'true',
      'deploy-path': newSite(),
      release: 'v1',
      'connect-timeout': '1',
    });
    const result = await runCommand(settings, recordingLogger());
    expect(result.status).toBe('failed');
    expect(result.hosts[0].error).toContain(`127.0.0.1:${port}: connect failed: no SSH handshake within connect-timeout (1 s)`);
  } finally {
    mute.close();
  }
});

test('insecure-ignore-host-key accepts any key, and says so loudly', async () => {
  const site = newSite();
  const { result, log } = await deploy(site, { release: 'v1', 'known-hosts': sshd.otherKnownHosts, 'insecure-ignore-host-key': 'true' });
  expect(result.status).toBe('deployed');
  expect(log).toMatch(/warning: insecure-ignore-host-key is true: the host keys of .* are NOT verified/);
});

test('a known-hosts line of another key type than the server offers is still a mismatch', async () => {
  const site = newSite();
  const dir = mkdtempSync(join(tmpdir(), 'tagflip-ecdsa-'));
  execFileSync('ssh-keygen', ['-q', '-N', '', '-t', 'ecdsa', '-f', join(dir, 'key')]);
  const [type, blob] = readFileSync(join(dir, 'key.pub'), 'utf8').split(' ');
  const { result } = await deploy(site, { release: 'v1', 'known-hosts': `[${sshd.host}]:${sshd.port} ${type} ${blob}` });
  expect(result.status).toBe('failed');
  expect(result.hosts[0].error).toMatch(/the server offered ssh-ed25519 SHA256:\S+, but known-hosts lists only ecdsa-sha2-nistp256 SHA256:/);
  expect(existsSync(site)).toBe(false);
});

test('status with a wrong host key (the CLI): the refusal once, the host named once in it (issue 22)', async () => {
  const home = mkdtempSync(join(tmpdir(), 'tagflip-wrong-key-'));
  writeFileSync(join(home, 'key'), sshd.privateKey, { mode: 0o600 });
  writeFileSync(join(home, 'known_hosts'), sshd.otherKnownHosts);
  const label = `${sshd.user}@${sshd.host}:${sshd.port}`;
  const run = spawnSync(process.execPath, ['bin/tagflip.js', 'status', '--hosts', label, '--private-key', `@${join(home, 'key')}`, '--known-hosts', `@${join(home, 'known_hosts')}`, '--deploy-path', newSite()], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } });
  expect(run.status).toBe(1);
  const printed = `${run.stdout}${run.stderr}`;
  expect(printed.split('host key verification failed').length).toBe(2);
  expect(printed).not.toContain(`${label}: ${label}`);
  expect(run.stdout).toBe(`${label}: no status: connect failed (the error is in the log)\n`);
  expect(run.stderr).toContain(`error: ${label}: connect failed: host key verification failed: the server offered ssh-ed25519 `);
});
