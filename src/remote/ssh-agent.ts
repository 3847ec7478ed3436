import { statSync } from 'node:fs';
import { InputError } from '../core/errors.js';

/**
 * How many keys the ssh-agent at `socket` holds. An agent that is not there
 * (a stale SSH_AUTH_SOCK) or holds none is refused before any host is
 * connected to, naming both ways to log in; otherwise every host would only
 * say that it refused the login.
 */
export async function countAgentKeys(socket: string): Promise<number> {
  const expected = 'a running ssh-agent holding the deploy key (ssh-add it), its socket in SSH_AUTH_SOCK; or the private-key input';
  let isSocket: boolean;
  try {
    isSocket = statSync(socket).isSocket();
  } catch (error) {
    throw new InputError('private-key', `not given, and the ssh-agent socket SSH_AUTH_SOCK names (${socket}) is not there (${(error as NodeJS.ErrnoException).code ?? 'error'})`, expected);
  }
  if (!isSocket) throw new InputError('private-key', `not given, and SSH_AUTH_SOCK (${socket}) is not a socket`, expected);
  // ssh2 loads with the first connection (see ssh-transport.ts); this is just before it.
  const { OpenSSHAgent } = await import(/* webpackMode: "eager" */ 'ssh2');
  const keys = await new Promise<number>((resolve, reject) => {
    new OpenSSHAgent(socket).getIdentities((error, identities) => (error ? reject(error) : resolve(identities?.length ?? 0)));
  }).catch((error: Error) => {
    throw new InputError('private-key', `not given, and the ssh-agent at ${socket} does not answer (${error.message})`, expected);
  });
  if (keys === 0) throw new InputError('private-key', `not given, and the ssh-agent at ${socket} holds no keys`, expected);
  return keys;
}
