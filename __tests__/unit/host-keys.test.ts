import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  type HostFingerprint,
  type HostKeyPolicy,
  type KnownHostEntry,
  algorithmsForKeyType,
  fingerprintOf,
  keyTypeOfBlob,
  knownHostsName,
  matchesHost,
  parseKnownHosts,
  preferredKeyTypes,
  verifyHostKey,
} from '../../src/core/host-keys.js';
import { type GeneratedKey, KeyDir } from './keygen.js';

const keys = new KeyDir();
let ed: GeneratedKey;
let other: GeneratedKey;
let rsa: GeneratedKey;
let ecdsa: GeneratedKey;
/** Hashed patterns from `ssh-keygen -H`: [web1.example.com on 22, 127.0.0.1 on 2222]. */
let hashed: string[];

const blobOf = (key: GeneratedKey) => Buffer.from(key.blob, 'base64');

beforeAll(() => {
  ed = keys.generate('ed');
  other = keys.generate('other');
  rsa = keys.generate('rsa', { type: 'rsa' });
  ecdsa = keys.generate('ecdsa', { type: 'ecdsa' });
  const file = keys.file('known_hosts');
  writeFileSync(file, `web1.example.com ssh-ed25519 ${ed.blob}\n[127.0.0.1]:2222 ssh-ed25519 ${ed.blob}\n`);
  execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
  hashed = readFileSync(file, 'utf8').trim().split('\n').map((line) => line.split(' ')[0]);
});
afterAll(() => keys.cleanup());

describe('parseKnownHosts', () => {
  test('reads plain lines, skips comments and blank lines, keeps line numbers', () => {
    const text = [`# scanned 2024-06-01`, '', `web1,10.0.0.1 ssh-ed25519 ${ed.blob} a comment`, '   ', `  [web2]:2222   ssh-rsa   ${rsa.blob}  `, '# end'].join('\n');
    expect(parseKnownHosts(text)).toEqual([
      { patterns: ['web1', '10.0.0.1'], keyType: 'ssh-ed25519', key: ed.blob, revoked: false, line: 3 },
      { patterns: ['[web2]:2222'], keyType: 'ssh-rsa', key: rsa.blob, revoked: false, line: 5 },
    ]);
  });

  test('the empty text has no entries', () => {
    expect(parseKnownHosts('')).toEqual([]);
    expect(parseKnownHosts('\n\n# only a comment\n')).toEqual([]);
  });

  test('CRLF line endings are accepted', () => {
    expect(parseKnownHosts(`web1 ssh-ed25519 ${ed.blob}\r\nweb2 ${ecdsa.keyType} ${ecdsa.blob}\r\n`)).toEqual([
      { patterns: ['web1'], keyType: 'ssh-ed25519', key: ed.blob, revoked: false, line: 1 },
      { patterns: ['web2'], keyType: 'ecdsa-sha2-nistp256', key: ecdsa.blob, revoked: false, line: 2 },
    ]);
  });

  test('@revoked marks the entry; @cert-authority lines are skipped', () => {
    const text = [`@revoked web1 ssh-ed25519 ${other.blob}`, `@cert-authority *.example.com ssh-ed25519 ${ed.blob}`, `web1 ssh-ed25519 ${ed.blob}`].join('\n');
    expect(parseKnownHosts(text)).toEqual([
      { patterns: ['web1'], keyType: 'ssh-ed25519', key: other.blob, revoked: true, line: 1 },
      { patterns: ['web1'], keyType: 'ssh-ed25519', key: ed.blob, revoked: false, line: 3 },
    ]);
  });

  test('hashed lines from ssh-keygen -H are read', () => {
    expect(hashed[0]).toMatch(/^\|1\|[A-Za-z0-9+/]+=*\|[A-Za-z0-9+/]+=*$/);
    expect(parseKnownHosts(`${hashed[0]} ssh-ed25519 ${ed.blob}`)).toEqual([
      { patterns: [hashed[0]], keyType: 'ssh-ed25519', key: ed.blob, revoked: false, line: 1 },
    ]);
  });

  test.each([
    ['a host only', 'web1', "line 2 is not 'hosts key-type base64-key'"],
    ['no key', 'web1 ssh-ed25519', "line 2 is not 'hosts key-type base64-key'"],
    ['a marker and nothing else', '@revoked', "line 2 is not 'hosts key-type base64-key'"],
    ['an unknown marker', '@trusted web1 ssh-ed25519 AAAA', 'line 2 has an unknown marker @trusted'],
    ['an unknown key type', 'web1 ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIPQRfx682WmG1idnAgtfKLsTOmd/TpeRXHIZOpEQTZLG', "line 2 has an unknown key type 'ssh-foo'"],
    ['a long unknown key type is cut', `web1 ${'x'.repeat(100)} AAAA`, `line 2 has an unknown key type '${'x'.repeat(40)}'`],
    ['a short key', 'web1 ssh-ed25519 AAAA', 'line 2 has a key that is not valid base64 of a ssh-ed25519 key'],
    ['a key that is not base64', 'web1 ssh-ed25519 AAAAC3Nza!!C1lZDI1NTE5AAAAIPQRfx682WmG1idnAgtfKLsTOmd', 'line 2 has a key that is not valid base64 of a ssh-ed25519 key'],
  ])('refuses %s, naming the line', (_what, line, message) => {
    expect(() => parseKnownHosts(`# header\n${line}\nweb3 ssh-ed25519 AAAA`)).toThrow(message);
  });

  test('refuses a key whose blob names another type', () => {
    expect(() => parseKnownHosts(`web1 ssh-rsa ${ed.blob}`)).toThrow('line 1 has a key that is not valid base64 of a ssh-rsa key');
  });

  test('refuses a key without its base64 padding', () => {
    // An ecdsa-sha2-nistp256 blob is 104 bytes, so its base64 ends in '='.
    expect(ecdsa.blob.endsWith('=')).toBe(true);
    const unpadded = ecdsa.blob.replace(/=+$/, '');
    expect(() => parseKnownHosts(`web1 ${ecdsa.keyType} ${unpadded}`)).toThrow('line 1 has a key that is not valid base64 of a ecdsa-sha2-nistp256 key');
  });
});

describe('knownHostsName', () => {
  test.each([
    ['web1', 22, 'web1'],
    ['web1', 2222, '[web1]:2222'],
    ['::1', 22, '::1'],
    ['::1', 2200, '[::1]:2200'],
  ])('%s on port %d is %s', (host, port, name) => {
    expect(knownHostsName(host, port)).toBe(name);
  });
});

describe('matchesHost', () => {
  test.each([
    ['a plain name', ['web1'], 'web1', 22, true],
    ['a plain name, another host', ['web1'], 'web2', 22, false],
    ['a plain name does not cover another port', ['web1'], 'web1', 2222, false],
    ['[host]:port', ['[web1]:2222'], 'web1', 2222, true],
    ['[host]:port on another port', ['[web1]:2222'], 'web1', 2200, false],
    ['[host]:port does not cover port 22', ['[web1]:2222'], 'web1', 22, false],
    ['port 22 is written without brackets', ['[web1]:22'], 'web1', 22, false],
    ['an IPv4 address', ['[127.0.0.1]:2222'], '127.0.0.1', 2222, true],
    ['an IPv6 address', ['[::1]:2200'], '::1', 2200, true],
    ['an IPv6 address on 22', ['::1'], '::1', 22, true],
    ['one of a list', ['web0', '10.0.0.1', 'web1'], 'web1', 22, true],
    ['case-insensitive', ['WEB1.Example.COM'], 'web1.example.com', 22, true],
    ['a dot is not a wildcard', ['web1.example.com'], 'web1xexample.com', 22, false],
    ['a + is literal', ['web+1'], 'webb1', 22, false],
    ['a prefix is not a match', ['web1'], 'web10', 22, false],
    ['a suffix is not a match', ['eb1'], 'web1', 22, false],
    ['* matches a subdomain', ['*.example.com'], 'web1.example.com', 22, true],
    ['* needs the dot', ['*.example.com'], 'example.com', 22, false],
    ['* does not cover another port', ['*.example.com'], 'web1.example.com', 2222, false],
    ['* inside brackets covers the port form', ['[*.example.com]:2222'], 'web1.example.com', 2222, true],
    ['a lone * matches everything', ['*'], '[anything]:2222', 2222, true],
    ['? is one character', ['web?'], 'web1', 22, true],
    ['? is exactly one character', ['web?'], 'web10', 22, false],
    ['negation excludes', ['*.example.com', '!bad.example.com'], 'bad.example.com', 22, false],
    ['negation first still excludes', ['!bad.example.com', '*.example.com'], 'bad.example.com', 22, false],
    ['negation leaves the others', ['*.example.com', '!bad.example.com'], 'good.example.com', 22, true],
    ['a negation alone matches nothing', ['!bad.example.com'], 'good.example.com', 22, false],
    ['negated port form', ['*', '![web1]:2222'], 'web1', 2222, false],
    ['no patterns', [], 'web1', 22, false],
  ] as [string, string[], string, number, boolean][])('%s', (_what, patterns, host, port, expected) => {
    expect(matchesHost(patterns, host, port)).toBe(expected);
  });

  test('a hashed entry matches the name it was made from, on its port', () => {
    expect(matchesHost([hashed[0]], 'web1.example.com', 22)).toBe(true);
    expect(matchesHost([hashed[0]], 'web1.example.com', 2222)).toBe(false);
    expect(matchesHost([hashed[0]], 'web2.example.com', 22)).toBe(false);
    expect(matchesHost([hashed[1]], '127.0.0.1', 2222)).toBe(true);
    expect(matchesHost([hashed[1]], '127.0.0.1', 22)).toBe(false);
  });

  test('a negated hashed entry excludes', () => {
    expect(matchesHost(['*', `!${hashed[0]}`], 'web1.example.com', 22)).toBe(false);
    expect(matchesHost(['*', `!${hashed[0]}`], 'web2.example.com', 22)).toBe(true);
  });

  test('a malformed hashed entry matches nothing', () => {
    expect(matchesHost(['|1|'], 'web1', 22)).toBe(false);
    expect(matchesHost(['|1|c2FsdA=='], 'web1', 22)).toBe(false);
    expect(matchesHost(['|1||'], 'web1', 22)).toBe(false);
  });

  // ssh lowercases the host name before it looks it up (`ssh -G WEB1.Example.com`
  // prints `hostname web1.example.com`), so hashed lines match whatever the case.
  // Plain patterns here are compared case-insensitively, hashed ones are not.
  test('a hashed entry matches the host name in any case, like a plain one', () => {
    expect(matchesHost(['web1.example.com'], 'WEB1.Example.com', 22)).toBe(true);
    expect(matchesHost([hashed[0]], 'WEB1.Example.com', 22)).toBe(true);
  });
});

describe('keyTypeOfBlob and fingerprintOf', () => {
  test.each(['ed', 'rsa', 'ecdsa'] as const)('the %s key type is read from its blob', (name) => {
    const key = { ed: () => ed, rsa: () => rsa, ecdsa: () => ecdsa }[name]();
    expect(keyTypeOfBlob(blobOf(key))).toBe(key.keyType);
  });

  test('the key types are the ones ssh-keygen writes', () => {
    expect([ed.keyType, rsa.keyType, ecdsa.keyType]).toEqual(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256']);
  });

  test('short or truncated blobs', () => {
    expect(keyTypeOfBlob(Buffer.alloc(0))).toBe('');
    expect(keyTypeOfBlob(Buffer.from([0, 0, 0]))).toBe('');
    expect(keyTypeOfBlob(Buffer.from([0, 0, 0, 0]))).toBe('');
    expect(keyTypeOfBlob(Buffer.from([0, 0, 0, 11, ...Buffer.from('ssh-ed')]))).toBe('ssh-ed');
  });

  test.each(['ed', 'rsa', 'ecdsa'] as const)('the %s fingerprint equals what ssh-keygen -lf prints', (name) => {
    const key = { ed: () => ed, rsa: () => rsa, ecdsa: () => ecdsa }[name]();
    const printed = execFileSync('ssh-keygen', ['-lf', `${key.path}.pub`]).toString().split(' ')[1];
    expect(printed).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(fingerprintOf(blobOf(key))).toBe(printed);
  });
});

/** A host-fingerprint entry as settings binds it. */
const bound = (fingerprint: string, host = 'web1', port = 22): HostFingerprint => ({ host, port, fingerprint });

describe('verifyHostKey', () => {
  const policy = (knownHosts: string, fingerprints: HostFingerprint[] = [], insecure = false): HostKeyPolicy => ({
    knownHosts: parseKnownHosts(knownHosts),
    fingerprints,
    insecure,
  });

  test('accepts the key known-hosts lists for the host', () => {
    expect(verifyHostKey(policy(`[127.0.0.1]:2222 ssh-ed25519 ${ed.blob}`), '127.0.0.1', 2222, blobOf(ed))).toEqual({ accepted: true });
  });

  test('accepts through a hashed line', () => {
    expect(verifyHostKey(policy(`${hashed[1]} ssh-ed25519 ${ed.blob}`), '127.0.0.1', 2222, blobOf(ed))).toEqual({ accepted: true });
  });

  test('accepts any of several keys listed for the host', () => {
    const known = `[127.0.0.1]:2222 ssh-rsa ${rsa.blob}\n[127.0.0.1]:2222 ssh-ed25519 ${ed.blob}`;
    expect(verifyHostKey(policy(known), '127.0.0.1', 2222, blobOf(ed))).toEqual({ accepted: true });
    expect(verifyHostKey(policy(known), '127.0.0.1', 2222, blobOf(rsa))).toEqual({ accepted: true });
  });

  test('rejects another key, listing the fingerprints it knows', () => {
    const known = `[127.0.0.1]:2222 ssh-ed25519 ${ed.blob}\n[127.0.0.1]:2222 ssh-rsa ${rsa.blob}\n[10.0.0.9]:2222 ssh-ed25519 ${other.blob}`;
    expect(verifyHostKey(policy(known), '127.0.0.1', 2222, blobOf(other))).toEqual({
      accepted: false,
      reason: `known-hosts lists only ssh-ed25519 ${fingerprintOf(blobOf(ed))}, ssh-rsa ${fingerprintOf(blobOf(rsa))} for [127.0.0.1]:2222`,
    });
  });

  test('a key listed for another host is not accepted', () => {
    expect(verifyHostKey(policy(`[10.0.0.9]:2222 ssh-ed25519 ${ed.blob}`), '127.0.0.1', 2222, blobOf(ed))).toEqual({
      accepted: false,
      reason: 'known-hosts has no line for [127.0.0.1]:2222',
    });
  });

  test('a key listed for port 22 is not accepted on another port', () => {
    expect(verifyHostKey(policy(`127.0.0.1 ssh-ed25519 ${ed.blob}`), '127.0.0.1', 2222, blobOf(ed))).toEqual({
      accepted: false,
      reason: 'known-hosts has no line for [127.0.0.1]:2222',
    });
  });

  test('rejects a revoked key, even when it is also listed and fingerprinted', () => {
    const known = `@revoked [127.0.0.1]:2222 ssh-ed25519 ${ed.blob}\n[127.0.0.1]:2222 ssh-ed25519 ${ed.blob}`;
    expect(verifyHostKey(policy(known, [bound(fingerprintOf(blobOf(ed)), '127.0.0.1', 2222)]), '127.0.0.1', 2222, blobOf(ed))).toEqual({
      accepted: false,
      reason: 'that key is marked @revoked in known-hosts',
    });
  });

  test('a revoked line lists nothing as known', () => {
    const known = `@revoked [127.0.0.1]:2222 ssh-ed25519 ${other.blob}`;
    expect(verifyHostKey(policy(known), '127.0.0.1', 2222, blobOf(ed))).toEqual({
      accepted: false,
      reason: 'known-hosts has no line for [127.0.0.1]:2222',
    });
  });

  test('accepts a key by its fingerprint', () => {
    expect(verifyHostKey(policy('', [bound(fingerprintOf(blobOf(rsa))), bound(fingerprintOf(blobOf(ed)))]), 'web1', 22, blobOf(ed))).toEqual({ accepted: true });
  });

  test('a fingerprint is accepted even when known-hosts lists another key', () => {
    expect(verifyHostKey(policy(`web1 ssh-rsa ${rsa.blob}`, [bound(fingerprintOf(blobOf(ed)))]), 'web1', 22, blobOf(ed))).toEqual({ accepted: true });
  });

  test('rejects a key whose fingerprint is not listed', () => {
    const fingerprint = fingerprintOf(blobOf(rsa));
    expect(verifyHostKey(policy('', [bound(fingerprint)]), 'web1', 22, blobOf(ed))).toEqual({
      accepted: false,
      reason: `host-fingerprint lists only ${fingerprint} for web1`,
    });
  });

  test('a fingerprint bound to another host, or to another port of the same host, vouches for nothing here', () => {
    const fingerprint = fingerprintOf(blobOf(ed));
    const fleet = policy('', [bound(fingerprint, 'web1', 22), bound(fingerprintOf(blobOf(rsa)), 'web2', 22)]);
    expect(verifyHostKey(fleet, 'web1', 22, blobOf(ed))).toEqual({ accepted: true });
    expect(verifyHostKey(fleet, 'web2', 22, blobOf(ed))).toEqual({ accepted: false, reason: `host-fingerprint lists only ${fingerprintOf(blobOf(rsa))} for web2` });
    expect(verifyHostKey(fleet, 'web1', 2222, blobOf(ed))).toEqual({ accepted: false, reason: 'neither host-fingerprint nor known-hosts names [web1]:2222' });
  });

  test('the host is matched in one spelling: any case, IPv6 compressed', () => {
    const fingerprint = fingerprintOf(blobOf(ed));
    expect(verifyHostKey(policy('', [bound(fingerprint, 'web1.example.com')]), 'WEB1.Example.com', 22, blobOf(ed))).toEqual({ accepted: true });
    expect(verifyHostKey(policy('', [bound(fingerprint, '2001:db8::1')]), '2001:0db8:0:0:0:0:0:1', 22, blobOf(ed))).toEqual({ accepted: true });
  });

  test('rejects when nothing is known', () => {
    expect(verifyHostKey(policy(''), 'web1', 22, blobOf(ed))).toEqual({ accepted: false, reason: 'known-hosts has no line for web1' });
  });

  test('insecure accepts any key, even a revoked one', () => {
    expect(verifyHostKey(policy('', [], true), 'web1', 22, blobOf(other))).toEqual({ accepted: true });
    expect(verifyHostKey(policy(`@revoked web1 ssh-ed25519 ${other.blob}`, [], true), 'web1', 22, blobOf(other))).toEqual({ accepted: true });
  });
});

describe('preferredKeyTypes', () => {
  test('the key types listed for the host, in order, once each, revoked ones left out', () => {
    const entries: KnownHostEntry[] = parseKnownHosts(
      [
        `@revoked [web1]:2222 ssh-rsa ${rsa.blob}`,
        `[web1]:2222 ${ecdsa.keyType} ${ecdsa.blob}`,
        `web1 ssh-rsa ${rsa.blob}`,
        `[web1]:2222,[web2]:2222 ssh-ed25519 ${ed.blob}`,
        `[web1]:2222 ssh-ed25519 ${other.blob}`,
      ].join('\n'),
    );
    expect(preferredKeyTypes(entries, 'web1', 2222)).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519']);
    expect(preferredKeyTypes(entries, 'web1', 22)).toEqual(['ssh-rsa']);
    expect(preferredKeyTypes(entries, 'web3', 22)).toEqual([]);
  });
});

describe('algorithmsForKeyType', () => {
  test.each([
    ['ssh-ed25519', ['ssh-ed25519']],
    ['ecdsa-sha2-nistp256', ['ecdsa-sha2-nistp256']],
    ['ecdsa-sha2-nistp521', ['ecdsa-sha2-nistp521']],
    ['ssh-rsa', ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']],
    ['ssh-dss', []],
    ['sk-ssh-ed25519@openssh.com', []],
    ['nonsense', []],
  ])('%s → %j', (keyType, algorithms) => {
    expect(algorithmsForKeyType(keyType)).toEqual(algorithms);
  });
});
