/** How tagflip logs in: the private-key input, the ssh-agent or a key file, each key checked before any connection. */
import { InputError } from './errors.js';
import type { FrontEnd } from './front-end.js';
import type { RunContext } from './inputs.js';
// Only ssh2's key parser: the whole of ssh2 (client, protocol, SFTP) loads when a
// host is connected to, not before the first log line (see ssh-transport.ts).
import { parsePrivateKey } from './private-key.js';

/** How tagflip logs in over SSH; `from` says where the key came from, for the log. */
export type SshAuth =
  | { kind: 'key'; privateKey: string; passphrase: string; from: string }
  | { kind: 'agent'; socket: string };

/**
 * How hosts without an IdentityFile of their own log in: the private-key
 * input, else the ssh-agent, else (the CLI) the first default key file.
 */
export function parseAuth(privateKey: string, passphrase: string, context: RunContext): SshAuth {
  if (privateKey.trim()) {
    checkPrivateKey(privateKey, passphrase);
    return { kind: 'key', privateKey, passphrase, from: 'the private-key input' };
  }
  if (context.sshAgent) return { kind: 'agent', socket: context.sshAgent };
  if (context.defaultKey) {
    const { file, text } = context.defaultKey;
    checkPrivateKey(text, passphrase, 'private-key', file, { file, frontEnd: context.frontEnd });
    return { kind: 'key', privateKey: text, passphrase, from: `the key ${file}` };
  }
  throw new InputError(
    'private-key',
    'not given, and there is no ssh-agent (SSH_AUTH_SOCK is not set)',
    'the text of an OpenSSH or PEM private key (usually from a secret), or an ssh-agent holding the key with its socket in SSH_AUTH_SOCK (as an ssh-agent step before this one sets it)',
  );
}

export function keyIsEncrypted(privateKey: string): boolean {
  const parsed = parsePrivateKey(privateKey);
  return parsed instanceof Error && ENCRYPTED_KEY.test(parsed.message);
}

const ENCRYPTED_KEY = /encrypted|passphrase|decrypt/i;

/**
 * `name` is the key's name in messages: the input, or the file it came from
 * (with where that file was named). A key read from a file (an IdentityFile,
 * the CLI's ~/.ssh/id_*) may be given to an ssh-agent instead of a passphrase,
 * as ssh users do: the refusal says how.
 */
export function checkPrivateKey(privateKey: string, passphrase: string, input = 'private-key', name = 'private-key', from: { file?: string; frontEnd?: FrontEnd } = {}): void {
  const subject = name === input ? '' : `${name} `;
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(privateKey)) {
    // Never echo any of it: it may be a secret pasted into the wrong input.
    throw new InputError(input, `${subject}does not look like a private key (no BEGIN … PRIVATE KEY line)`, 'the text of an OpenSSH or PEM private key, BEGIN and END lines included');
  }
  const parsed = parsePrivateKey(privateKey, passphrase || undefined);
  if (parsed instanceof Error) {
    if (!ENCRYPTED_KEY.test(parsed.message)) {
      throw new InputError(input, `${subject}could not be read as a private key`, 'an unencrypted or passphrase-protected OpenSSH/PEM key (ed25519, ecdsa or rsa)');
    }
    const frontEnd = from.frontEnd ?? 'action';
    const passphraseInput = frontEnd === 'cli' ? '--passphrase @FILE (or TAGFLIP_PASSPHRASE)' : 'the passphrase input';
    if (passphrase) throw new InputError('passphrase', `does not decrypt ${name}`, `the passphrase of ${from.file ?? name}`);
    const agent = from.file
      ? `, or the key in a running ssh-agent instead: eval "$(ssh-agent)"; ssh-add ${from.file} (then run again in that shell, with SSH_AUTH_SOCK set)`
      : '';
    throw new InputError('passphrase', `not given, but ${name} is encrypted`, `its passphrase in ${passphraseInput}${agent}`);
  }
}
