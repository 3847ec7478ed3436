/**
 * The private key is parsed once per run, whatever the number of hosts, and
 * signs through a KeyObject: signatures still verify with the public key, for
 * every key type, with or without a passphrase.
 */
import { afterAll, expect, test } from '@jest/globals';
import { utils } from 'ssh2';
import { parsePrivateKey } from '../../src/core/private-key.js';
import { parseSettings } from '../../src/core/settings.js';
import { parsedPrivateKey } from '../../src/remote/ssh-transport.js';
import { KeyDir } from './keygen.js';

const keys = new KeyDir();
afterAll(() => keys.cleanup());

test.each([
  ['ed25519', {}],
  ['rsa', {}],
  ['ecdsa', {}],
  ['ed25519 with a passphrase', { passphrase: 'correct horse' }],
  ['rsa, PEM with a passphrase', { type: 'rsa', pem: true, passphrase: 'correct horse' }],
])('%s: parsed once, its signatures verify', (name, options: { type?: string; passphrase?: string; pem?: boolean }) => {
  const type = options.type ?? name.split(' ')[0];
  const generated = keys.generate(name.replace(/\W+/g, '-'), { ...options, type });
  // The settings' check parses it (before any connection)…
  parseSettings({ hosts: 'deploy@web1', 'private-key': generated.privateKey, passphrase: options.passphrase ?? '', 'known-hosts': '', 'insecure-ignore-host-key': 'true', 'deploy-path': '/srv/app', release: 'v1' });
  const checked = parsePrivateKey(generated.privateKey, options.passphrase);
  // …and the connections use that very parse.
  const key = parsedPrivateKey(generated.privateKey, options.passphrase);
  expect(key).not.toBeNull();
  expect(key).toBe(checked);
  // The same object for the next host: no second parse (nor key derivation).
  expect(parsedPrivateKey(generated.privateKey, options.passphrase)).toBe(key);
  const data = Buffer.from('session id and request');
  const hash = type === 'rsa' ? 'sha512' : undefined;
  const signature = key!.sign(data, hash);
  expect(signature).toBeInstanceOf(Buffer);
  const publicKey = utils.parseKey(generated.publicLine);
  if (publicKey instanceof Error) throw publicKey;
  expect((Array.isArray(publicKey) ? publicKey[0] : publicKey).verify(data, signature as Buffer, hash)).toBe(true);
});

test('a key that does not parse (wrong passphrase) gives null: the connection then takes the text as before', () => {
  const generated = keys.generate('locked', { passphrase: 'right' });
  expect(parsedPrivateKey(generated.privateKey, 'wrong')).toBeNull();
});
