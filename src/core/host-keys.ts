import { createHash, createHmac } from 'node:crypto';

/** One usable line of known_hosts. */
export interface KnownHostEntry {
  patterns: string[];
  keyType: string;
  /** The public key blob, base64 as in the file. */
  key: string;
  revoked: boolean;
  line: number;
}

const KEY_TYPE = /^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)$/;

/** Parse known_hosts text; throws with the line number on a malformed line. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    let fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0].startsWith('@')) {
      if (fields[0] === '@cert-authority') return; // certificates are not supported; such lines never match
      if (fields[0] !== '@revoked') throw new Error(`line ${index + 1} has an unknown marker ${fields[0]}`);
      revoked = true;
      fields = fields.slice(1);
    }
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key) throw new Error(`line ${index + 1} is not 'hosts key-type base64-key'`);
    if (!KEY_TYPE.test(keyType)) throw new Error(`line ${index + 1} has an unknown key type '${keyType.slice(0, 40)}'`);
    const blob = Buffer.from(key, 'base64');
    if (blob.length < 16 || blob.toString('base64') !== key || keyTypeOfBlob(blob) !== keyType) {
      throw new Error(`line ${index + 1} has a key that is not valid base64 of a ${keyType} key`);
    }
    entries.push({ patterns: hosts.split(','), keyType, key, revoked, line: index + 1 });
  });
  return entries;
}

/** A host name or address in one spelling: lower case, IPv6 compressed (no brackets). */
export function canonicalHost(host: string): string {
  if (!host.includes(':')) return host.toLowerCase();
  try {
    return new URL(`http://[${host}]/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return host.toLowerCase();
  }
}

/** The name known_hosts uses for a host: 'host' on port 22, '[host]:port' elsewhere. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Whether one known_hosts pattern list names this host (hashed entries, wildcards, negation). */
export function matchesHost(patterns: readonly string[], host: string, port: number): boolean {
  // OpenSSH lowercases the host name before matching (and before hashing it).
  const name = knownHostsName(host.toLowerCase(), port);
  let matched = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const body = negated ? pattern.slice(1) : pattern;
    if (patternMatches(body, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return regex.test(name);
}

/** The key type named inside a public key blob (its first SSH string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return '';
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** OpenSSH's fingerprint: SHA256: and the unpadded base64 of the blob's SHA-256. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Host key algorithms the SSH library can verify, by the key type that produces them. */
const ALGORITHMS_BY_KEY_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** Server host key algorithms that produce keys of this type ([] when unsupported). */
export function algorithmsForKeyType(keyType: string): string[] {
  return ALGORITHMS_BY_KEY_TYPE[keyType] ?? [];
}

/** A host key fingerprint (host-fingerprint), bound to the host and port whose key it is. */
export interface HostFingerprint {
  /** As canonicalHost spells it. */
  host: string;
  port: number;
  fingerprint: string;
}

export interface HostKeyPolicy {
  knownHosts: readonly KnownHostEntry[];
  /** Each is accepted only from its own host and port: with a fleet or a bastion, one host's key never vouches for another. */
  fingerprints: readonly HostFingerprint[];
  insecure: boolean;
}

export type HostKeyVerdict = { accepted: true } | { accepted: false; reason: string };

/** The fingerprints host-fingerprint binds to this host and port. */
export function fingerprintsFor(fingerprints: readonly HostFingerprint[], host: string, port: number): string[] {
  const name = canonicalHost(host);
  return fingerprints.filter((bound) => bound.host === name && bound.port === port).map((bound) => bound.fingerprint);
}

/** Decide whether the key a server offered may be trusted. */
export function verifyHostKey(policy: HostKeyPolicy, host: string, port: number, blob: Buffer): HostKeyVerdict {
  if (policy.insecure) return { accepted: true };
  const offered = blob.toString('base64');
  const forHost = policy.knownHosts.filter((entry) => matchesHost(entry.patterns, host, port));
  if (forHost.some((entry) => entry.revoked && entry.key === offered)) {
    return { accepted: false, reason: 'that key is marked @revoked in known-hosts' };
  }
  if (forHost.some((entry) => !entry.revoked && entry.key === offered)) return { accepted: true };
  const fingerprints = fingerprintsFor(policy.fingerprints, host, port);
  if (fingerprints.includes(fingerprintOf(blob))) return { accepted: true };
  const known = forHost.filter((entry) => !entry.revoked);
  if (known.length > 0) {
    const listed = known.map((entry) => `${entry.keyType} ${fingerprintOf(Buffer.from(entry.key, 'base64'))}`).join(', ');
    return { accepted: false, reason: `known-hosts lists only ${listed} for ${knownHostsName(host, port)}` };
  }
  if (fingerprints.length > 0) {
    return { accepted: false, reason: `host-fingerprint lists only ${fingerprints.join(', ')} for ${knownHostsName(host, port)}` };
  }
  if (policy.fingerprints.length > 0) {
    return { accepted: false, reason: `neither host-fingerprint nor known-hosts names ${knownHostsName(host, port)}` };
  }
  return { accepted: false, reason: `known-hosts has no line for ${knownHostsName(host, port)}` };
}

/** Key types known-hosts lists for a host, so the server is asked for one of those first. */
export function preferredKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const types = entries.filter((entry) => !entry.revoked && matchesHost(entry.patterns, host, port)).map((entry) => entry.keyType);
  return [...new Set(types)];
}
