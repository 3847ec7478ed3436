/**
 * The command sent right behind the channel's open (ssh-transport.ts,
 * execAhead): what is sent, and to which servers, on ssh2's protocol object
 * as it calls it. Real sshd shows the round trip saved (deploy-ssh.test.ts).
 */
import { expect, test } from '@jest/globals';
import { execAhead } from '../../src/remote/ssh-transport.js';

const COMMAND = 'exec sh -s';

/**
 * What reaches the wire, in order, when ssh2 opens a channel, learns the
 * server's number for it ('confirmed'), then asks for the command on each of
 * `execs` (remote channel numbers).
 */
function sentFor(version: string | undefined, execs: number[]): unknown[][] {
  const sent: unknown[][] = [];
  const protocol = {
    session: (local: number) => sent.push(['session', local]),
    exec: (remote: number, command: string, wantReply: boolean) => sent.push(['exec', remote, command, wantReply]),
  };
  execAhead({ _protocol: protocol, _remoteVer: version }, COMMAND);
  protocol.session(3);
  sent.push(['confirmed']);
  for (const remote of execs) protocol.exec(remote, COMMAND, true);
  return sent;
}

test('OpenSSH: the command goes right behind the channel, for its channel 0, and is not sent again', () => {
  // ssh2, once the server confirmed channel 0: its own exec is the one already on its way; anything later is ssh2's as it is.
  expect(sentFor('OpenSSH_9.2p1', [0, 0])).toEqual([['session', 3], ['exec', 0, COMMAND, true], ['confirmed'], ['exec', 0, COMMAND, true]]);
});

test('a channel the server numbered otherwise gets its command as ssh2 sends it', () => {
  expect(sentFor('OpenSSH_9.2p1', [4])).toEqual([['session', 3], ['exec', 0, COMMAND, true], ['confirmed'], ['exec', 4, COMMAND, true]]);
});

test.each([['dropbear_2022.83'], ['libssh_0.10.4'], [undefined]])('a server that does not say OpenSSH (%s): nothing goes ahead', (version) => {
  expect(sentFor(version, [0])).toEqual([['session', 3], ['confirmed'], ['exec', 0, COMMAND, true]]);
});
