/** How each SSH host's key is to be verified: the known-hosts and host-fingerprint inputs, and the check that every host has a way. */
import { InputError } from './errors.js';
import { type HostFingerprint, type KnownHostEntry, canonicalHost, fingerprintsFor, knownHostsName, matchesHost, parseKnownHosts } from './host-keys.js';
import { type SshHost, parsePort } from './host-targets.js';
import { printable } from './inputs.js';

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export function parseKnownHostsInput(value: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(value);
  } catch (error) {
    throw new InputError('known-hosts', (error as Error).message, "known_hosts lines as 'ssh-keyscan -p PORT HOST' prints them");
  }
}

const FINGERPRINT_FORM =
  "'SHA256:…' for a single host, or 'HOST=SHA256:…' binding each fingerprint to a host of hosts or jump-host (HOST as written there; 'HOST:PORT=' or '[HOST]:PORT=' for one port of it); comma or newline separated";

/**
 * host-fingerprint: each fingerprint is bound to the host whose key it is, so
 * that in a fleet (or through a bastion) one host's key never vouches for
 * another. A bare fingerprint is bound to the one SSH host there is; with
 * several, it would vouch for any of them, so it is refused.
 */
export function parseFingerprints(value: string, sshTargets: readonly SshHost[]): HostFingerprint[] {
  if (!value) return [];
  const bound: HostFingerprint[] = [];
  for (const item of value.split(/[,\s]+/).filter(Boolean)) {
    const eq = item.indexOf('=');
    const fingerprint = eq < 0 ? item : item.slice(eq + 1);
    if (!FINGERPRINT.test(fingerprint)) {
      throw new InputError('host-fingerprint', `'${printable(fingerprint)}' is not an OpenSSH SHA256 fingerprint`, `'SHA256:' and 43 base64 characters, as 'ssh-keygen -lf' prints them; ${FINGERPRINT_FORM}`);
    }
    const hosts = eq < 0 ? bareFingerprintHosts(item, sshTargets) : boundFingerprintHosts(item.slice(0, eq), sshTargets);
    for (const { host, port } of hosts) bound.push({ host: canonicalHost(host), port, fingerprint });
  }
  return bound;
}

/** How host-fingerprint names a host: 'web1', '[2001:db8::1]', '[web1]:2222'. */
function fingerprintName(target: { host: string; port: number }): string {
  if (target.port !== 22) return `[${target.host}]:${target.port}`;
  return target.host.includes(':') ? `[${target.host}]` : target.host;
}

function bareFingerprintHosts(fingerprint: string, sshTargets: readonly SshHost[]): readonly { host: string; port: number }[] {
  if (sshTargets.length <= 1) return sshTargets;
  const labels = sshTargets.map((target) => target.label).join(', ');
  throw new InputError(
    'host-fingerprint',
    `'${fingerprint}' names no host, and this step connects to ${sshTargets.length} SSH hosts (${labels}): it would be accepted from any of them`,
    `one 'HOST=SHA256:…' per host, e.g. '${fingerprintName(sshTargets[0])}=${fingerprint}'; ${FINGERPRINT_FORM}`,
  );
}

function boundFingerprintHosts(name: string, sshTargets: readonly SshHost[]): { host: string; port: number }[] {
  const match = /^\[([^\]]+)\](?::([^:]*))?$/.exec(name) ?? /^([^:[\]]+)(?::([^:]*))?$/.exec(name);
  if (!match) throw new InputError('host-fingerprint', `'${printable(name)}' is not a host name (an IPv6 address goes in brackets)`, FINGERPRINT_FORM);
  const host = canonicalHost(match[1]);
  const port = match[2] === undefined ? null : parsePort('host-fingerprint', match[2]);
  const named = sshTargets.filter((target) => canonicalHost(target.host) === host && (port === null || target.port === port));
  if (named.length === 0) {
    const labels = sshTargets.map((target) => target.label).join(', ') || 'none';
    throw new InputError('host-fingerprint', `'${printable(name)}' names no SSH host of hosts or jump-host (${labels})`, FINGERPRINT_FORM);
  }
  const ports = [...new Set(named.map((target) => target.port))];
  if (ports.length > 1) {
    throw new InputError('host-fingerprint', `'${printable(name)}' names ${ports.length} hosts, on ports ${ports.join(', ')}`, `the port too, e.g. '${name}:${ports[0]}=SHA256:…'`);
  }
  return named;
}

export function checkHostKeyPolicy(target: SshHost, runKnownHosts: KnownHostEntry[], fingerprints: HostFingerprint[], insecure: boolean): void {
  if (insecure || fingerprintsFor(fingerprints, target.host, target.port).length > 0) return;
  const remedy = `known_hosts lines from 'ssh-keyscan -p ${target.port} ${target.host}' (checked against the server), or host-fingerprint`;
  const knownHosts = target.knownHosts?.entries ?? runKnownHosts;
  const listed = knownHosts.some((entry) => !entry.revoked && matchesHost(entry.patterns, target.host, target.port));
  if (listed) return;
  if (target.knownHosts) {
    throw new InputError('ssh-config', `${target.knownHosts.from} has no line for ${knownHostsName(target.host, target.port)} (${target.label})`, `its line from 'ssh-keyscan -p ${target.port} ${target.host}' (checked against the server) in that file, or a known-hosts or host-fingerprint input`);
  }
  if (fingerprints.length > 0) {
    throw new InputError('host-fingerprint', `has no fingerprint for ${target.label}, and known-hosts no line for it`, `'${fingerprintName(target)}=SHA256:…' too, or its known_hosts line`);
  }
  if (knownHosts.length === 0) {
    throw new InputError('known-hosts', `no way to verify the host key of ${target.label}`, remedy);
  }
  throw new InputError('known-hosts', `no line names ${knownHostsName(target.host, target.port)}`, remedy);
}
