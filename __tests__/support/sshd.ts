/**
 * Test harness that runs a real OpenSSH `sshd` on 127.0.0.1 for integration tests.
 *
 * Each call to `startSshd()` gets its own temp dir with a fresh config, host keys
 * and client keys, and its own free port, so several Jest workers can run servers
 * side by side. Nothing is written to the login user's home: the authorized key
 * lives in the temp dir and is referenced by an absolute `AuthorizedKeysFile`.
 *
 * Linux only for `sessionPids()` (reads /proc) and `bindMount` (mount namespaces, root
 * only); the rest works anywhere sshd does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { descendantPids, freePort, processTable, tryKill } from './processes.js';
import { resolveUser, userIds } from './login-user.js';
import { run, runOk, sleep } from './run.js';

const SSHD = '/usr/sbin/sshd';
const UNSHARE = 'unshare';
const HOST = '127.0.0.1';

export interface StartSshdOptions {
  /** Login user. Only honoured when running as root; otherwise it must be the current user. */
  user?: string;
  /**
   * Give this "host" its own files: sshd runs in a mount namespace of its own in which
   * `source` is bind-mounted onto `target`, so several sshd can each see their own
   * directory at the same path (as a fleet of real hosts has one deploy-path). Only the
   * processes of this sshd (its sessions and what they run) see the mount; the test
   * process must read this host's files through `source`. Both directories are created
   * if missing and given to the login user; `target`'s parents must be traversable by
   * that user. Root only.
   */
  bindMount?: { source: string; target: string };
  /**
   * The client key pair to authorize, instead of a fresh one: lets one private key log
   * in to several sshd (tagflip takes one private-key for all hosts). `publicKey` is the
   * `.pub` line; `privateKey` the OpenSSH private key text, returned as `privateKey`.
   */
  clientKey?: { privateKey: string; publicKey: string };
  /**
   * RLIMIT_FSIZE in bytes for sshd and everything its sessions run (as `ulimit -f`
   * would set it): a host that is out of space for files larger than this.
   */
  fileSizeLimit?: number;
  /** sshd's LogLevel (VERBOSE unless given): DEBUG1 logs every authentication request, "none" included. */
  logLevel?: 'VERBOSE' | 'DEBUG1';
  /** sshd_config lines added at the end (e.g. `ForceCommand internal-sftp`), for every user. */
  extraConfig?: readonly string[];
}

export interface TestSshd {
  /** Always '127.0.0.1'. */
  host: string;
  /** Free port picked at runtime. */
  port: number;
  /** Login user. */
  user: string;
  /** OpenSSH private key text (ed25519) authorized for `user`. */
  privateKey: string;
  /** The matching public key line (`ssh-ed25519 <base64> <comment>`), for `clientKey` of another sshd. */
  publicKey: string;
  /** Another ed25519 private key that is NOT authorized. */
  wrongPrivateKey: string;
  /** known_hosts lines (`[127.0.0.1]:PORT <type> <base64>`) for both host keys, newline-terminated. */
  knownHosts: string;
  /** 'SHA256:...' fingerprints of the host keys (ed25519 first, then rsa). */
  hostKeyFingerprints: string[];
  /** known_hosts line for the same host/port but a different ed25519 key (host-key mismatch tests). */
  otherKnownHosts: string;
  /** Temp dir holding config and keys; removed by stop(). */
  dir: string;
  /**
   * PIDs of the per-connection sshd processes (direct children of the listener).
   * Includes connections that are still authenticating or have just closed and are
   * winding down, so wait for the expected state before killing anything.
   *
   * Each pid is the privileged monitor of its connection. SIGTERM to it is forwarded
   * to the session and drops the connection at once (the remote command is left
   * running, orphaned, until it exits by itself); SIGKILL to it alone does NOT:
   * the unprivileged child that owns the socket keeps the connection alive until the
   * remote command ends. Use killSessions() for an abrupt drop.
   */
  sessionPids(): number[];
  /**
   * Send `signal` (default SIGKILL) to every session's whole process tree (monitor,
   * user child and remote commands), dropping all live connections abruptly without
   * an SSH disconnect message. Returns the session pids that were targeted.
   */
  killSessions(signal?: NodeJS.Signals): number[];
  /** Everything sshd has written to stderr so far (LogLevel VERBOSE). */
  log(): string;
  /** Kill the listener and all its sessions, wait for the listener to exit, remove `dir`. Idempotent. */
  stop(): Promise<void>;
}

export function sshdAvailable(): boolean {
  return fs.existsSync(SSHD);
}

export async function startSshd(options: StartSshdOptions = {}): Promise<TestSshd> {
  if (!sshdAvailable()) throw new Error(`${SSHD} not found; install openssh-server`);

  const isRoot = process.getuid?.() === 0;
  const user = await resolveUser(isRoot, options.user);
  if (isRoot) {
    // Privilege separation dir; sshd refuses to start (even with -t) without it.
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  }

  const { bindMount, clientKey } = options;
  if (bindMount) {
    if (!isRoot) throw new Error('startSshd: bindMount needs root (mount namespaces)');
    if (!path.isAbsolute(bindMount.source) || !path.isAbsolute(bindMount.target)) {
      throw new Error(`startSshd: bindMount paths must be absolute: ${JSON.stringify(bindMount)}`);
    }
    const { uid, gid } = await userIds(user);
    for (const dirPath of [bindMount.source, bindMount.target]) {
      fs.mkdirSync(dirPath, { recursive: true, mode: 0o755 });
      fs.chownSync(dirPath, uid, gid);
    }
    fs.chmodSync(bindMount.target, 0o755);
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tagflip-sshd-'));
  try {
    // When root, sshd reads the AuthorizedKeysFile with the login user's uid, so the dir
    // must be traversable and that file world-readable. Secrets inside stay 0600.
    fs.chmodSync(dir, 0o755);

    const key = (name: string) => path.join(dir, name);
    await Promise.all([
      keygen(key('host_ed25519'), ['-t', 'ed25519']),
      keygen(key('host_rsa'), ['-t', 'rsa', '-b', '2048']),
      clientKey ? writeKeyPair(key('client_ed25519'), clientKey) : keygen(key('client_ed25519'), ['-t', 'ed25519']),
      keygen(key('wrong_ed25519'), ['-t', 'ed25519']),
      keygen(key('other_host_ed25519'), ['-t', 'ed25519']),
    ]);

    const authorizedKeys = key('authorized_keys');
    fs.copyFileSync(key('client_ed25519.pub'), authorizedKeys);
    fs.chmodSync(authorizedKeys, 0o644);

    const hostKeyFiles = [key('host_ed25519'), key('host_rsa')];
    const hostKeyFingerprints = await Promise.all(hostKeyFiles.map((f) => fingerprint(`${f}.pub`)));

    const configPath = key('sshd_config');
    const server = await launch(dir, configPath, hostKeyFiles, authorizedKeys, bindMount, options.fileSizeLimit, options.logLevel, options.extraConfig);
    const { port, child } = server;

    const knownHostsLine = (pubFile: string) => {
      // A .pub file is "<type> <base64> <comment>"; known_hosts wants "<host> <type> <base64>".
      const [type, blob] = fs.readFileSync(pubFile, 'utf8').trim().split(/\s+/);
      return `[${HOST}]:${port} ${type} ${blob}\n`;
    };

    const sessionPids = () => childPids(child.pid!);
    const killSessions = (signal: NodeJS.Signals = 'SIGKILL') => {
      const sessions = sessionPids();
      // Snapshot every tree before signalling anything, so nothing gets re-parented
      // out of reach half-way through.
      const targets = sessions.flatMap((pid) => [pid, ...descendantPids(pid)]);
      for (const pid of targets) tryKill(pid, signal);
      return sessions;
    };

    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= (async () => {
        // Snapshot the session tree first: once the listener is gone its children are
        // re-parented and can no longer be found through it. The listener does not kill
        // its sessions on exit, and a lingering session would keep a client connected.
        const sessions = descendantPids(child.pid!);
        await killAndWait(child);
        for (const pid of sessions) tryKill(pid, 'SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    };

    return {
      host: HOST,
      port,
      user,
      privateKey: fs.readFileSync(key('client_ed25519'), 'utf8'),
      publicKey: fs.readFileSync(key('client_ed25519.pub'), 'utf8').trim(),
      wrongPrivateKey: fs.readFileSync(key('wrong_ed25519'), 'utf8'),
      knownHosts: hostKeyFiles.map((f) => knownHostsLine(`${f}.pub`)).join(''),
      hostKeyFingerprints,
      otherKnownHosts: knownHostsLine(key('other_host_ed25519.pub')),
      dir,
      sessionPids,
      killSessions,
      log: server.log,
      stop,
    };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------
// sshd process
// ---------------------------------------------------------------------------

interface Launched {
  port: number;
  child: ChildProcess;
  log: () => string;
}

/**
 * Write the config, validate it, start sshd and wait until it accepts connections.
 * The free port is found by binding :0 and closing again, so another process can grab
 * it before sshd binds; in that case sshd exits with "Address already in use" and we
 * retry with a new port.
 *
 * With `bindMount`, sshd is started through `unshare -m` (no --fork, so unshare execs in
 * place, then sh execs sshd): the child's pid is sshd's, as without it.
 */
async function launch(
  dir: string,
  configPath: string,
  hostKeyFiles: string[],
  authorizedKeys: string,
  bindMount: StartSshdOptions['bindMount'],
  fileSizeLimit?: number,
  logLevel: StartSshdOptions['logLevel'] = 'VERBOSE',
  extraConfig: readonly string[] = [],
): Promise<Launched> {
  const maxAttempts = 3;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    fs.writeFileSync(configPath, sshdConfig({ dir, port, hostKeyFiles, authorizedKeys, logLevel, extraConfig }), { mode: 0o644 });

    const check = await run(SSHD, ['-t', '-f', configPath]);
    if (check.code !== 0) {
      throw new Error(`sshd config is invalid (exit ${check.code}):\n${check.stdout}${check.stderr}`);
    }

    let stderr = '';
    const [command, args] = bindMount
      ? [
          UNSHARE,
          [
            '-m',
            '--propagation',
            'private',
            'sh',
            '-c',
            `mount --bind "$1" "$2" && exec ${SSHD} -D -e -f "$3"`,
            'sh',
            bindMount.source,
            bindMount.target,
            configPath,
          ],
        ]
      : [SSHD, ['-D', '-e', '-f', configPath]];
    const limited: [string, string[]] = fileSizeLimit === undefined ? [command as string, args as string[]] : ['prlimit', [`--fsize=${fileSizeLimit}`, command as string, ...(args as string[])]];
    const child = spawn(limited[0], limited[1], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const log = () => stderr;

    try {
      await waitForPort(port, child, log);
      // The readiness probe itself spawned a session process; let it go away so it does
      // not show up in sessionPids() of a test that runs right after start.
      await waitUntil(() => childPids(child.pid!).length === 0, 2000);
      return { port, child, log };
    } catch (err) {
      await killAndWait(child);
      if (attempt < maxAttempts && /Address already in use/i.test(stderr)) continue;
      throw err;
    }
  }
}

function sshdConfig(c: { dir: string; port: number; hostKeyFiles: string[]; authorizedKeys: string; logLevel: string; extraConfig: readonly string[] }): string {
  return [
    `ListenAddress ${HOST}`,
    `Port ${c.port}`,
    ...c.hostKeyFiles.map((f) => `HostKey ${f}`),
    `PidFile ${path.join(c.dir, 'sshd.pid')}`,
    // Absolute path: keys come from the temp dir, never from ~/.ssh of the login user.
    `AuthorizedKeysFile ${c.authorizedKeys}`,
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    // Temp dir / file ownership would otherwise fail sshd's permission checks.
    'StrictModes no',
    `LogLevel ${c.logLevel}`,
    // Tests open many parallel connections; the defaults (10:30:100, 10) would drop some.
    'MaxStartups 100',
    'MaxSessions 50',
    'Subsystem sftp internal-sftp',
    // Last: a Match block among them applies to the end of the file.
    ...c.extraConfig,
    '',
  ].join('\n');
}

/** Poll until 127.0.0.1:port accepts TCP connections; fail fast if sshd exits. */
async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  let exit: string | undefined;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => (exit = `code=${code} signal=${signal}`);
  const onError = (err: Error) => (exit = `spawn error: ${err.message}`);
  child.once('exit', onExit);
  child.once('error', onError);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exit !== undefined || child.exitCode !== null) {
        // Give the stderr pipe a moment to drain so the error contains sshd's message.
        await sleep(50);
        throw new Error(`sshd exited before accepting connections (${exit ?? `code=${child.exitCode}`}):\n${log()}`);
      }
      if (await canConnect(port)) return;
      await sleep(50);
    }
    throw new Error(`sshd did not accept connections on ${HOST}:${port} within ${timeoutMs} ms:\n${log()}`);
  } finally {
    child.off('exit', onExit);
    child.off('error', onError);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
async function killAndWait(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// Process tree (Linux /proc)
// ---------------------------------------------------------------------------

function childPids(parent: number): number[] {
  const out: number[] = [];
  for (const [pid, ppid] of processTable()) if (ppid === parent) out.push(pid);
  return out.sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** Generate a passphrase-less key pair at `file` / `file.pub` (private key mode 0600). */
async function keygen(file: string, typeArgs: string[]): Promise<void> {
  await runOk('ssh-keygen', ['-q', '-N', '', ...typeArgs, '-C', 'tagflip-test', '-f', file]);
  fs.chmodSync(file, 0o600);
}

/** Write a given key pair to `file` / `file.pub`, as keygen() would have. */
async function writeKeyPair(file: string, pair: { privateKey: string; publicKey: string }): Promise<void> {
  const privateKey = pair.privateKey.endsWith('\n') ? pair.privateKey : `${pair.privateKey}\n`;
  fs.writeFileSync(file, privateKey, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  fs.writeFileSync(`${file}.pub`, `${pair.publicKey.trim()}\n`, { mode: 0o644 });
}

/** 'SHA256:...' fingerprint of a public key file, from `ssh-keygen -lf`. */
async function fingerprint(pubFile: string): Promise<string> {
  // Output: "<bits> SHA256:<hash> <comment> (<TYPE>)"
  const out = await runOk('ssh-keygen', ['-E', 'sha256', '-lf', pubFile]);
  const fp = out.trim().split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${out}`);
  return fp;
}


async function waitUntil(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}
