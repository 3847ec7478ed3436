import type { NodeSSH } from 'node-ssh';
import { type KeyObject, createPrivateKey } from 'node:crypto';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Algorithms, ClientChannel, ParsedKey } from 'ssh2';
import { DeployError } from '../core/errors.js';
import { parsePrivateKey } from '../core/private-key.js';
import {
  type HostKeyPolicy,
  algorithmsForKeyType,
  fingerprintOf,
  keyTypeOfBlob,
  preferredKeyTypes,
  verifyHostKey,
} from '../core/host-keys.js';
import type { SshAuth } from '../core/ssh-auth.js';
import { leanGcmSender } from './gcm-sender.js';
import { REMOTE_COMMAND, type ShellChannel, type Transport } from './transport.js';

/** One SSH server to log in to: a host, or the bastion in front of it. */
export interface SshEndpoint {
  label: string;
  host: string;
  port: number;
  user: string;
  auth: SshAuth;
  hostKeys: HostKeyPolicy;
}

export interface SshTarget extends SshEndpoint {
  connectTimeout: number;
  /** A bastion to tunnel through, or null. */
  jump: SshEndpoint | null;
}

/** Seconds between keepalives, and how many may go unanswered before we give up. */
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_COUNT_MAX = 3;

/**
 * The session pauses the channel while the log's writer is full (session.ts),
 * and SSH's window then stops the host: ssh2 grants no more window while
 * stdout's buffer is full. But stdout and stderr share the window, and ssh2
 * grants it again whenever stderr takes data (its push says there is room,
 * and Node then reads stderr for more, which opens the window): each watchdog
 * ping let in another second of output, so a reader that stopped for a minute
 * left a minute of a build's output in memory (measured: 41 MB for a build
 * printing 1 MB/s through a 40 s stop, against 4 MB with this). So while the
 * channel is paused, stderr says it is full (its data is still kept) and its
 * reads do not open the window; it opens when reading resumes.
 */
function holdWindowWhilePaused(channel: ClientChannel): void {
  const stderr = channel.stderr as typeof channel.stderr & { _read(size: number): void };
  const push = stderr.push.bind(stderr);
  stderr.push = (chunk: unknown, encoding?: BufferEncoding) => push(chunk, encoding) && !channel.isPaused();
  const read = stderr._read.bind(stderr);
  stderr._read = (size: number) => {
    if (!channel.isPaused()) read(size);
  };
}

/**
 * node-ssh, and ssh2 under it, load with the first connection, not at start-up: they
 * are the largest part of the bundle to compile and run, and without them a run
 * reaches its first log line sooner (and a `local` host never needs them at all).
 * "eager" keeps them inside the one bundle file (no chunk beside it, whose licenses
 * ncc would list in place of the bundle's); only their evaluation waits.
 */
let nodeSsh: Promise<typeof import('node-ssh')> | undefined;
const loadNodeSsh = () => (nodeSsh ??= import(/* webpackMode: "eager" */ 'node-ssh'));

export class SshTransport implements Transport {
  readonly label: string;
  readonly loginUser: string;
  private ssh: NodeSSH | null = null;
  private bastion: NodeSSH | null = null;
  private closed = false;
  /** The TCP connections opened, to destroy on close (one may still be connecting). */
  private readonly sockets: net.Socket[] = [];
  /** When connect-timeout runs out for the connection being opened (TCP, bastion and handshake alike). */
  private deadline = 0;
  private channel: ClientChannel | null = null;
  /** The last connection-level error, kept for the message when the shell dies. */
  private connectionError: Error | null = null;

  constructor(private readonly target: SshTarget) {
    this.label = target.label;
    this.loginUser = target.user;
  }

  async openShell(): Promise<ShellChannel> {
    await this.connect();
    const connection = this.ssh!.connection!;
    execAhead(connection, REMOTE_COMMAND);
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      connection.exec(REMOTE_COMMAND, (error, stream) => (error ? reject(error) : resolve(stream)));
    }).catch((error: Error) => {
      throw new DeployError(this.label, 'connect', `could not start a remote shell: ${error.message}`, 'check that the account has a working login shell');
    });
    this.channel = channel;
    holdWindowWhilePaused(channel);
    const closed = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      let exit: { code: number | null; signal: string | null } = { code: null, signal: null };
      channel.on('exit', (code: number | null, signal?: string) => {
        exit = { code: code ?? null, signal: signal ?? null };
      });
      // A shell that ends at once (a nologin shell) may have said how before
      // this listener was there: its exit status came in the same packets as
      // the channel's confirmation. ssh2 repeats it with close.
      channel.on('close', (code?: number | null, signal?: string) => {
        if (exit.code === null && exit.signal === null) exit = { code: code ?? null, signal: signal ?? null };
        resolve(exit);
      });
      connection.on('close', () => (this.connectionError ? reject(this.connectionError) : resolve(exit)));
    });
    const exited = new Promise<void>((resolve) => {
      channel.once('exit', () => resolve());
      channel.once('close', () => resolve());
    });
    return { stdin: channel, stdout: channel, stderr: channel.stderr, closed, exited };
  }

  async close(): Promise<void> {
    this.channel?.end();
    this.channel = null;
    this.closed = true;
    // The session is over (its shell has exited) or abandoned: drop the
    // connection now. A graceful end would keep the process waiting a round
    // trip for the server's side of the TCP close, after everything is said.
    for (const client of [this.ssh, this.bastion]) {
      client?.connection?.destroy();
      client?.dispose();
    }
    for (const sock of this.sockets) sock.destroy();
  }

  /** Connect to the bastion and open a tunnel to the target's SSH port. */
  private async tunnel(): Promise<Duplex | undefined> {
    const { jump } = this.target;
    if (!jump) return undefined;
    const via = `the jump host ${jump.label}`;
    const sock = await this.tcp(jump, via);
    this.bastion = await this.client();
    await this.open(this.bastion, jump, sock, via);
    const bastion = this.bastion.connection!;
    bastion.on('error', () => undefined); // reported through the target connection
    return new Promise<Duplex>((resolve, reject) => {
      bastion.forwardOut('127.0.0.1', 0, this.target.host, this.target.port, (error, stream) => {
        if (error) {
          reject(new DeployError(this.label, 'connect', `the jump host ${jump.label} could not reach ${this.target.host}:${this.target.port}: ${error.message}`, 'check that the bastion can connect to the host (AllowTcpForwarding on the bastion)'));
        } else {
          resolve(stream);
        }
      });
    });
  }

  private async connect(): Promise<void> {
    this.deadline = Date.now() + this.target.connectTimeout * 1000;
    const sock = (await this.tunnel()) ?? (await this.tcp(this.target, ''));
    this.ssh = await this.client();
    await this.open(this.ssh, this.target, sock, '');
    // An upload's packets, and through a jump host the bastion's that carry them.
    for (const client of [this.ssh, this.bastion]) leanGcmSender(client?.connection);
    // node-ssh drops its error listener once connected; without ours, a late
    // error (a keepalive timeout) would be an unhandled 'error' event.
    this.ssh.connection!.on('error', (error: Error) => {
      this.connectionError = error;
    });
  }

  /**
   * The TCP connection to an SSH server, with Nagle's algorithm off. ssh2 leaves
   * it on, and then each step of the login that follows a small write of ours
   * waits for the server's delayed ACK: about 40 ms, four times per connection.
   */
  private tcp(to: SshEndpoint, via: string): Promise<net.Socket> {
    const timeoutMs = Math.max(1, this.deadline - Date.now());
    return new Promise<net.Socket>((resolve, reject) => {
      const sock = net.connect({ host: to.host, port: to.port, noDelay: true });
      this.sockets.push(sock);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(Object.assign(new Error(`connect ETIMEDOUT ${to.host}:${to.port}`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      const failed = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      const cancelled = () => failed(this.cancelledError());
      sock.once('error', failed);
      sock.once('close', cancelled);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', failed);
        sock.off('close', cancelled);
        corkPerTick(sock);
        resolve(sock);
      });
    }).catch((error: Error & { code?: string }) => {
      throw this.explainConnectError(error, null, to, via);
    });
  }

  private cancelledError(): DeployError {
    return new DeployError(this.label, 'connect', 'the run was cancelled before the connection was opened', '');
  }

  /** A new client; none once close() was called (a cancelled run closes while the library loads). */
  private async client(): Promise<NodeSSH> {
    const { NodeSSH } = await loadNodeSsh();
    if (this.closed) throw this.cancelledError();
    return new NodeSSH();
  }

  /** Connect one SSH client to `to`, verifying its host key; `via` names a bastion in errors. */
  private async open(client: NodeSSH, to: SshEndpoint, sock: Duplex | undefined, via: string): Promise<void> {
    const { host, port, user, auth, hostKeys } = to;
    let offered: Buffer | null = null;
    let attempted = false;
    // Parsed once for every host of the run (ssh2 would parse it again for each).
    const key = auth.kind === 'agent' ? null : parsedPrivateKey(auth.privateKey, auth.passphrase || undefined);
    const preferred = preferredKeyTypes(hostKeys.knownHosts, host, port).flatMap(algorithmsForKeyType);
    try {
      await client.connect({
        sock,
        host,
        port,
        username: user,
        ...(auth.kind === 'agent' ? { agent: auth.socket } : key ? {} : { privateKey: auth.privateKey, passphrase: auth.passphrase || undefined }),
        // Straight to the one method there is. ssh2 would first try "none", which
        // sshd refuses only after a deliberate delay (against user enumeration):
        // a round trip plus about 50 ms on every connection.
        authHandler:
          auth.kind === 'agent'
            ? ['agent']
            : (_methodsLeft, _partial, next) => {
                // ssh2 takes false for "no method left" (its types omit it).
                if (attempted) return (next as unknown as (method: false) => void)(false);
                attempted = true;
                signStraightAway(client.connection);
                if (key) next({ type: 'publickey', username: user, key });
                else next('publickey');
              },
        readyTimeout: Math.max(1, this.deadline - Date.now()),
        keepaliveInterval: KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        // Ask for the key types known-hosts has for this host first, as OpenSSH does;
        // any other type the server offers is still checked, and refused.
        // (ssh2 applies `remove` then `prepend`, in key order; prepend alone skips
        // algorithms already in its default list.)
        algorithms: preferred.length > 0 ? { serverHostKey: { remove: preferred, prepend: preferred, append: [] } as unknown as Algorithms['serverHostKey'] } : undefined,
        hostVerifier: (key: Buffer) => {
          offered = key;
          return verifyHostKey(hostKeys, host, port, key).accepted;
        },
      });
    } catch (error) {
      throw this.explainConnectError(error as Error & { level?: string; code?: string }, offered, to, via);
    }
  }

  private explainConnectError(
    error: Error & { level?: string; code?: string },
    offered: Buffer | null,
    to: SshEndpoint,
    via: string,
  ): DeployError {
    if (error instanceof DeployError) return error;
    const { host, port, user, auth, hostKeys } = to;
    const { label, connectTimeout } = this.target;
    const fail = (problem: string, remedy: string) => new DeployError(label, 'connect', via ? `${via}: ${problem}` : problem, remedy);
    if (offered && !verifyHostKey(hostKeys, host, port, offered).accepted) {
      const verdict = verifyHostKey(hostKeys, host, port, offered);
      const reason = verdict.accepted ? '' : verdict.reason;
      return fail(
        `host key verification failed: the server offered ${keyTypeOfBlob(offered)} ${fingerprintOf(offered)}, but ${reason}`,
        `If the server's key really changed, run 'ssh-keyscan -p ${port} ${host}' from a trusted network, compare the fingerprint ('ssh-keygen -lf -') with the server's own ('ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub' on its console), and update known-hosts`,
      );
    }
    if (error.level === 'client-authentication') {
      if (auth.kind === 'agent') {
        return fail(`the server refused every key of the ssh-agent at ${auth.socket} for user '${user}'`, `add the public key of the deploy key ('ssh-add -L' lists the agent's) to ~${user}/.ssh/authorized_keys on the host, or ssh-add the key it has; and check that 'user' is right`);
      }
      return fail(`the server refused the private key for user '${user}' (${auth.from})`, `add the matching public key to ~${user}/.ssh/authorized_keys on the host, and check that 'user' is right`);
    }
    if (error.level === 'agent') {
      return fail(`could not use the ssh-agent at ${auth.kind === 'agent' ? auth.socket : 'SSH_AUTH_SOCK'}: ${error.message}`, 'check that the agent is running and SSH_AUTH_SOCK names its socket, or give private-key');
    }
    if (error.level === 'client-timeout' || error.code === 'ETIMEDOUT') {
      return fail(`no SSH handshake within connect-timeout (${connectTimeout} s)`, `check that ${host}:${port} is reachable from the runner and that a firewall does not drop the connection`);
    }
    if (error.code === 'ECONNREFUSED') {
      return fail(`connection refused on port ${port}`, 'check that sshd is running on the host and that the port is right');
    }
    if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
      return fail(`the host name '${host}' does not resolve`, 'check the host name in hosts');
    }
    if (/no matching|handshake failed/i.test(error.message)) {
      return fail(`SSH handshake failed: ${error.message}`, 'the server and tagflip share no key exchange, cipher or host key algorithm; check the server\'s sshd_config');
    }
    return fail(error.message, 'check the host, port and network');
  }
}

/** The hash ssh2 signs with for each RSA signature algorithm; other key types have one of their own. */
const HASH_OF_KEY_ALGO: Record<string, string> = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' };

interface Ssh2PrivateKey {
  isPrivateKey(): boolean;
  sign(data: Buffer, hash?: string): Buffer | Error;
}
type AuthPk = (username: string, key: Ssh2PrivateKey, keyAlgo?: string, cbSign?: (data: Buffer, done: (signature: Buffer) => void) => void) => void;

interface Ssh2Protocol {
  session?: (localChannel: number, window: number, packetSize: number) => unknown;
  exec?: (remoteChannel: number, command: string, wantReply: boolean) => unknown;
}

/**
 * Open the session channel and ask for its command in one flight instead of
 * two. The command request names the server's number for the channel, which
 * ssh2 waits to learn from the server's confirmation. OpenSSH's sshd gives a
 * new channel the lowest free number, so the first channel of a connection is
 * its channel 0 (the only one tagflip opens, even through a jump host: that
 * one is the jump host's); and it reads its packets in order, so a request
 * right behind the open finds the channel made. Its two answers leave at
 * once: the second after sshd has turned Nagle's algorithm off for the
 * session, so it does not wait for the client to acknowledge the first. Only
 * for an OpenSSH server; ssh2's own request for the command, once it has the
 * confirmation, is then the one already sent (the server's answer to it is
 * read as the answer to ssh2's), and for a channel the server numbered
 * otherwise (which OpenSSH does not do) it is sent as usual. (The login cannot gain the same way behind
 * the service request: before login, sshd writes each answer on its own with
 * Nagle's algorithm on, so the second waits for the client's acknowledgement
 * of the first, a round trip plus the client's delayed ACK; it was tried, and
 * cost 35 ms on loopback.)
 */
export function execAhead(connection: unknown, command: string): void {
  const client = connection as { _protocol?: Ssh2Protocol; _remoteVer?: string } | null;
  const protocol = client?._protocol;
  if (!protocol || !/^OpenSSH_/.test(client._remoteVer ?? '') || typeof protocol.session !== 'function' || typeof protocol.exec !== 'function') return;
  const { session, exec } = protocol;
  let ahead = false;
  protocol.session = function (this: unknown, localChannel, window, packetSize) {
    protocol.session = session;
    const sent = session.call(this, localChannel, window, packetSize);
    exec.call(this, 0, command, true);
    ahead = true;
    return sent;
  };
  protocol.exec = function (this: unknown, remoteChannel, requested, wantReply) {
    protocol.exec = exec;
    if (ahead && remoteChannel === 0 && requested === command && wantReply) return;
    return exec.call(this, remoteChannel, requested, wantReply);
  };
}

/**
 * Log in with a private key in one round trip instead of two. ssh2 first asks
 * whether the server would take the key (a request without a signature, as
 * for a key in an agent) and signs only after the yes; with the private key
 * at hand, the signed request can go at once, as RFC 4252 §7 allows: a key the
 * server refuses is refused the same way. ssh2 has no option for this, so its
 * protocol object's authPK is wrapped for this one connection; with any other
 * shape of ssh2 the login simply keeps its extra round trip.
 */
function signStraightAway(connection: unknown): void {
  const protocol = (connection as { _protocol?: { authPK?: AuthPk; tagflipSigns?: true } } | null)?._protocol;
  if (!protocol || typeof protocol.authPK !== 'function' || protocol.tagflipSigns) return;
  const authPK = protocol.authPK;
  protocol.tagflipSigns = true;
  protocol.authPK = function (this: unknown, username, key, keyAlgo, cbSign) {
    if (cbSign || typeof key?.sign !== 'function' || !key.isPrivateKey()) return authPK.call(this, username, key, keyAlgo, cbSign);
    return authPK.call(this, username, key, keyAlgo, (data, done) => {
      const signature = key.sign(data, keyAlgo ? HASH_OF_KEY_ALGO[keyAlgo] : undefined);
      if (signature instanceof Error) throw Object.assign(signature, { level: 'client-authentication' });
      done(signature);
    });
  };
}

/**
 * ssh2 writes every packet to the socket on its own: a system call per 32 KiB
 * of an upload. Corked for the rest of the tick, what it writes in one go
 * leaves in one writev (about 0.2 s less of the runner's system time for 211 MB).
 */
export function corkPerTick(sock: net.Socket): void {
  const write = sock.write;
  let corked = false;
  sock.write = function (this: net.Socket, ...args: unknown[]) {
    if (!corked) {
      corked = true;
      this.cork();
      process.nextTick(() => {
        corked = false;
        this.uncork();
      });
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof sock.write;
}

/**
 * The private key as ssh2 uses it, parsed once per run whatever the number of
 * hosts (core/private-key.ts). It signs through a KeyObject made once, where
 * ssh2 would have OpenSSL decode its PEM text for every signature. null when
 * it does not parse (ssh-auth.ts has refused such a key already).
 */
export function parsedPrivateKey(privateKey: string, passphrase: string | undefined): ParsedKey | null {
  const key = parsePrivateKey(privateKey, passphrase);
  if (key instanceof Error) return null;
  signThroughKeyObject(key);
  return key;
}

/** Give ssh2's parsed key a KeyObject in place of its PEM text (the same key; crypto.sign takes either). */
function signThroughKeyObject(key: ParsedKey): void {
  const holder = key as unknown as Record<symbol, string | KeyObject | null>;
  const pem = Object.getOwnPropertySymbols(key).find((symbol) => symbol.description === 'Private key PEM');
  const text = pem ? holder[pem] : null;
  if (!pem || typeof text !== 'string') return;
  try {
    holder[pem] = createPrivateKey(text);
  } catch {
    // Left as it was: ssh2 signs with the PEM text.
  }
}
