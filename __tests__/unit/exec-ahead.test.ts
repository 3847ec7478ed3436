/**
 * The command sent right behind the channel's open (ssh-transport.ts,
 * execAhead): what is sent, and to which servers, on ssh2's protocol object
 * as it calls it. Real sshd shows the round trip saved (deploy-ssh.test.ts).
 */
import { expect, test } from '@jest/globals';
import { execAhead } from '../../src/remote/ssh-transport.js';

function fakeProtocol() {
  const sent: unknown[][] = [];
  return {
    sent,
    protocol: {
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
  expect(sent).toEqual([
    ['session', 3],
    ['exec', 0, 'exec sh -s', true],
    ['exec', 0, 'exec sh -s', true],
  ]);
});

test('a channel the server numbered otherwise gets its command as ssh2 sends it', () => {
  const { sent, protocol } = fakeProtocol();
  execAhead({ _protocol: protocol, _remoteVer: OPENSSH }, 'exec sh -s');
  protocol.session(0);
  protocol.exec(4, 'exec sh -s', true);
  expect(sent).toEqual([
    ['session', 0],
    ['exec', 0, 'exec sh -s', true],
    ['exec', 4, 'exec sh -s', true],
  ]);
});

test.each([['dropbear_2022.83'], ['libssh_0.10.4'], [undefined]])('a server that does not say OpenSSH (%s): nothing goes ahead', (version) => {
  const { sent, protocol } = fakeProtocol();
  execAhead({ _protocol: protocol, _remoteVer: version }, 'exec sh -s');
  protocol.session(0);
  protocol.exec(0, 'exec sh -s', true);
  expect(sent).toEqual([
    ['session', 0],
    ['exec', 0, 'exec sh -s', true],
  ]);
});
