/** The hosts and the jump host: how each entry becomes a host to connect to, through the user and port inputs and ssh-config. */
import { InputError } from './errors.js';
import type { FrontEnd } from './front-end.js';
import { type KnownHostEntry, canonicalHost, parseKnownHosts } from './host-keys.js';
import { type SshConfigSource, printable } from './inputs.js';
import { type SshAuth, checkPrivateKey, keyIsEncrypted } from './ssh-auth.js';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;
export const USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

export interface SshHost {
  kind: 'ssh';
  /** The host as written (an ssh-config alias stays the alias), with the user and a port other than 22. */
  label: string;
  /** What is connected to: the name written, or its HostName in ssh-config. */
  host: string;
  port: number;
  user: string;
  /** This host's IdentityFile from ssh-config, when no private-key input replaces it. */
  auth?: SshAuth;
  /** This host's UserKnownHostsFile from ssh-config, when no known-hosts input replaces it. */
  knownHosts?: { from: string; entries: KnownHostEntry[] };
  /** This host's ProxyJump from ssh-config, when no jump-host input replaces it. */
  jump?: SshHost;
}

export type HostTarget = { kind: 'local'; label: string } | SshHost;

/**
 * How a host name becomes a host: its own `user@` and `:port` first, then the
 * user and port inputs, then what ssh-config says for the name, then the
 * fallbacks (the login name, port 22).
 */
export interface HostResolution {
  sshConfig?: SshConfigSource;
  localUser?: string;
  /** To check an IdentityFile with. */
  passphrase?: string;
  /** Whether an ssh-agent is there to use instead of an encrypted IdentityFile. */
  agent?: boolean;
  /** Whom the advice is for (flags or inputs). */
  frontEnd?: FrontEnd;
  /** Which per-host parts of ssh-config apply: an input that is given replaces each one for every host. */
  identity?: boolean;
  knownHosts?: boolean;
  proxyJump?: boolean;
}

export function parseHosts(value: string, user: string, port: number | null, resolution: HostResolution = {}): HostTarget[] {
  const entries = value.split(/[,\n]/).map((entry) => entry.trim()).filter(Boolean);
  if (entries.length === 0) {
    throw new InputError('hosts', 'no host given', "one or more '[user@]host[:port]' entries, comma or newline separated, or 'local' for this machine");
  }
  if (entries.length > 256) throw new InputError('hosts', `${entries.length} entries given`, 'at most 256 hosts per step (use a matrix)');
  const targets = entries.map((entry) => parseHostEntry(entry, user, port, 'hosts', resolution));
  if (targets.length > 1 && targets.some((target) => target.kind === 'local')) {
    throw new InputError('hosts', "'local' is given together with other hosts", "'local' alone, or SSH hosts only");
  }
  const seen = new Set<string>();
  for (const target of targets) {
    const key = target.kind === 'ssh' ? `${canonicalHost(target.host)}:${target.port}` : 'local';
    if (seen.has(key)) throw new InputError('hosts', `'${printable(target.label)}' is given twice`, 'each host once');
    seen.add(key);
  }
  return targets;
}

export function parseJumpHost(value: string, user: string, port: number | null, resolution: HostResolution): SshHost | null {
  if (!value) return null;
  const target = parseHostEntry(value, user, port, 'jump-host', resolution);
  if (target.kind !== 'ssh') throw new InputError('jump-host', "'local' is not a bastion", "'[user@]host[:port]' of an SSH server that can reach the hosts");
  return target;
}

export function parseHostEntry(entry: string, defaultUser: string, defaultPort: number | null, input = 'hosts', resolution: HostResolution = {}): HostTarget {
  if (entry === 'local') return { kind: 'local', label: 'local' };
  const expected = "'[user@]host[:port]', e.g. 'deploy@web1.example.com:2222' or 'local'";
  const match = /^(?:([^@]*)@)?(\[[^\]]*\]|[^:]*)(?::([^:]*))?$/.exec(entry);
  if (!match) throw new InputError(input, `'${printable(entry)}' is not a host entry`, expected);
  const [, entryUser, rawHost, rawPort] = match;
  if (entryUser !== undefined && !USER.test(entryUser)) {
    throw new InputError(input, `'${printable(entry)}' has an invalid user '${printable(entryUser)}'`, expected);
  }
  const bracketed = rawHost.startsWith('[');
  const host = bracketed ? rawHost.slice(1, -1) : rawHost;
  if (!validHost(host, bracketed)) {
    throw new InputError(input, `'${printable(entry)}' has an invalid host name '${printable(host)}'`, `${expected}; IPv6 addresses in brackets`);
  }
  const { sshConfig } = resolution;
  const config = sshConfig?.lookup(host, entryUser ?? (defaultUser || undefined));
  const where = `${host} in ${sshConfig?.file}`;
  const hostName = config?.hostName ?? host;
  if (!validHost(hostName, hostName.includes(':'))) {
    throw new InputError('ssh-config', `the HostName '${printable(hostName)}' of ${where} is not a host name`, 'a DNS name or an IP address');
  }
  const port = rawPort !== undefined ? parsePort(input, rawPort) : (defaultPort ?? (config?.port === undefined ? 22 : parsePort('ssh-config', config.port)));
  if (config?.user !== undefined && !USER.test(config.user)) {
    throw new InputError('ssh-config', `the User '${printable(config.user)}' of ${where} is not a valid login name`, 'letters, digits, _ . - (at most 32, not starting with - or a digit)');
  }
  const user = entryUser ?? (defaultUser || config?.user || resolution.localUser || '');
  if (!user) {
    throw new InputError(input, `'${printable(entry)}' names no user and the 'user' input is empty`, `'user@${host}' or a 'user' input`);
  }
  const label = `${user}@${bracketed ? `[${host}]` : host}${port === 22 ? '' : `:${port}`}`;
  const target: SshHost = { kind: 'ssh', label, host: hostName, port, user };
  if (!config) return target;
  if (config.identity && resolution.identity) {
    const auth = identityAuth(config.identity, where, resolution);
    if (auth) target.auth = auth;
  }
  if (config.knownHosts && resolution.knownHosts) {
    const from = `the UserKnownHostsFile of ${where} (${config.knownHosts.files.join(', ')})`;
    target.knownHosts = { from, entries: parseKnownHostsOf(config.knownHosts.text, from) };
  }
  const proxyJump = config.proxyJump ?? 'none';
  if (proxyJump.toLowerCase() !== 'none') {
    // A bastion's own ProxyJump would be a second hop; tagflip tunnels through one.
    if (input === 'ssh-config') throw new InputError('ssh-config', `the jump host ${where} has a ProxyJump of its own (${printable(proxyJump)})`, 'one jump host: tagflip tunnels through one bastion');
    if (resolution.proxyJump) target.jump = parseProxyJump(proxyJump, where, resolution);
  }
  return target;
}

function validHost(host: string, bracketed: boolean): boolean {
  return bracketed ? IPV6.test(host) && host.includes(':') : HOSTNAME.test(host);
}

/** ProxyJump: one `[user@]host[:port]` (or `ssh://` URI), resolved through the config like any host. */
function parseProxyJump(value: string, where: string, resolution: HostResolution): SshHost {
  if (value.includes(',')) {
    throw new InputError('ssh-config', `the ProxyJump of ${where} names several jump hosts (${printable(value)})`, 'one jump host: tagflip tunnels through one bastion');
  }
  const entry = value.replace(/^ssh:\/\//, '');
  // The jump host's user and port are its own (from its entry or its config), not the hosts' inputs.
  const target = parseHostEntry(entry, '', null, 'ssh-config', resolution);
  if (target.kind !== 'ssh') throw new InputError('ssh-config', `the ProxyJump of ${where} is 'local'`, "'[user@]host[:port]' of an SSH server");
  return target;
}

/**
 * An IdentityFile as this host's key. An encrypted one without a passphrase
 * is left to the ssh-agent when there is one (as ssh signs with the agent's
 * copy of it); without an agent, it is an error.
 */
function identityAuth(identity: { file: string; text: string }, where: string, resolution: HostResolution): SshAuth | null {
  const passphrase = resolution.passphrase ?? '';
  const name = `${identity.file} (the IdentityFile of ${where})`;
  if (!passphrase && resolution.agent && keyIsEncrypted(identity.text)) return null;
  checkPrivateKey(identity.text, passphrase, 'ssh-config', name, { file: identity.file, frontEnd: resolution.frontEnd });
  return { kind: 'key', privateKey: identity.text, passphrase, from: `the key ${name}` };
}

export function parsePort(input: string, value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new InputError(input, `'${printable(value)}' is not a port`, 'a whole number from 1 to 65535');
  }
  return Number(value);
}

function parseKnownHostsOf(text: string, from: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(text);
  } catch (error) {
    throw new InputError('ssh-config', `${from}: ${(error as Error).message}`, 'known_hosts lines');
  }
}
