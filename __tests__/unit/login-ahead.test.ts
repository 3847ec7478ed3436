/**
 * What tagflip sends ahead of ssh2's own schedule (ssh-transport.ts): the
 * signed login behind the service request, the command behind the channel's
 * open. Real sshd shows the round trips saved (deploy-ssh.test.ts); this is
 * what is sent, and to which servers, on ssh2's protocol object as it calls it.
 */
import { afterAll, expect, test } from '@jest/globals';
import { execAhead, loginFaster, parsedPrivateKey } from '../../src/remote/ssh-transport.js';
import { KeyDir } from './keygen.js';

const keys = new KeyDir();
afterAll(() => keys.cleanup());
let made = 0;
const parsed = (type: string) => parsedPrivateKey(keys.generate(`${type}-${(made += 1)}`, { type }).privateKey, undefined)!;

function fakeProtocol() {
  const sent: unknown[][] = [];
  return {
    sent,
    protocol: {
      service: (name: string) => sent.push(['service', name]),
      authPK: (user: string, _key: unknown, keyAlgo?: string, sign?: (data: Buffer, done: (signature: Buffer) => void) => void) => {
        let signature: Buffer | null = null;
        sign?.(Buffer.from('session id and request'), (made) => (signature = made));
        sent.push(['authPK', user, keyAlgo, signature ? 'signed' : 'unsigned']);
      },
      session: (local: number) => sent.push(['session', local]),
      exec: (remote: number, command: string, wantReply: boolean) => sent.push(['exec', remote, command, wantReply]),
    },
  };
}

const OPENSSH = 'OpenSSH_9.2p1';

test('OpenSSH: the command goes right behind the channel, for its channel 0, and is not sent again', () => {
  const { sent, protocol } = fakeProtocol();
  execAhead({ _protocol: protocol, _remoteVer: OPENSSH }, 'exec sh -s');
  protocol.session(3);
  // ssh2, once the server confirmed channel 0: its own exec is the one already on its way.
  protocol.exec(0, 'exec sh -s', true);
  // Anything later is ssh2's as it is.
  protocol.exec(0, 'exec sh -s', true);
  expect(sent).toEqual([['session', 3], ['exec', 0, 'exec sh -s', true], ['exec', 0, 'exec sh -s', true]]);
});

test('a channel the server numbered otherwise gets its command as ssh2 sends it', () => {
  const { sent, protocol } = fakeProtocol();
  execAhead({ _protocol: protocol, _remoteVer: OPENSSH }, 'exec sh -s');
  protocol.session(0);
  protocol.exec(4, 'exec sh -s', true);
  expect(sent).toEqual([['session', 0], ['exec', 0, 'exec sh -s', true], ['exec', 4, 'exec sh -s', true]]);
});

test.each([['dropbear_2022.83'], ['libssh_0.10.4'], [undefined]])('a server that does not say OpenSSH (%s): nothing goes ahead', (version) => {
  const key = parsed('ed25519');
  const { sent, protocol } = fakeProtocol();
  execAhead({ _protocol: protocol, _remoteVer: version }, 'exec sh -s');
  loginFaster({ _protocol: protocol, _remoteVer: version }, 'deploy', key);
  protocol.service('ssh-userauth');
  protocol.authPK('deploy', key);
  protocol.session(0);
  protocol.exec(0, 'exec sh -s', true);
  // The login is still signed at once (any server takes that), but only after ssh2 asks for it.
  expect(sent).toEqual([['service', 'ssh-userauth'], ['authPK', 'deploy', undefined, 'signed'], ['session', 0], ['exec', 0, 'exec sh -s', true]]);
});

test.each([['ed25519'], ['ecdsa']])('OpenSSH and an %s key: the signed login goes right behind the service request, once', (type) => {
  const key = parsed(type);
  const { sent, protocol } = fakeProtocol();
  loginFaster({ _protocol: protocol, _remoteVer: OPENSSH }, 'deploy', key);
  protocol.service('ssh-userauth');
  // ssh2, once the service is accepted: its request for the key is the one already sent.
  protocol.authPK('deploy', key);
  expect(sent).toEqual([['service', 'ssh-userauth'], ['authPK', 'deploy', undefined, 'signed']]);
});

test('an RSA key logs in after the service is accepted (its algorithm depends on what the server announces then), signed at once', () => {
  const key = parsed('rsa');
  const { sent, protocol } = fakeProtocol();
  loginFaster({ _protocol: protocol, _remoteVer: OPENSSH }, 'deploy', key);
  protocol.service('ssh-userauth');
  protocol.authPK('deploy', key, 'rsa-sha2-256');
  expect(sent).toEqual([['service', 'ssh-userauth'], ['authPK', 'deploy', 'rsa-sha2-256', 'signed']]);
});
