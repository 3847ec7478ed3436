import keyParser from 'ssh2/lib/protocol/keyParser.js';

/** A key as ssh2's key parser gives it (the parser, not the SSH client: the core opens no connection). */
export type ParsedKey = Exclude<ReturnType<typeof keyParser.parseKey>, Error | readonly unknown[]>;

/**
 * A private key as ssh2 reads it, parsed once per run: by the settings'
 * check, then for every host's connection. A key with a passphrase costs its
 * key derivation (bcrypt, meant to be slow) at every parse. An Error when the
 * text or passphrase does not make a key.
 */
const parsed = new Map<string, ParsedKey | Error>();

export function parsePrivateKey(privateKey: string, passphrase?: string): ParsedKey | Error {
  const id = `${passphrase ?? ''}\0${privateKey}`;
  const known = parsed.get(id);
  if (known) return known;
  const result = keyParser.parseKey(privateKey, passphrase);
  const key = (Array.isArray(result) ? result[0] : result) ?? new Error('no key in the text');
  parsed.set(id, key);
  return key;
}
