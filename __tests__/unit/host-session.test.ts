/**
 * HostSession.run with `last`: nothing follows the phase, so the shell's
 * closing words go right behind its script, before its answer is awaited.
 */
import { expect, test } from '@jest/globals';
import { parseSettings } from '../../src/core/settings.js';
import { HostSession, explainFailure } from '../../src/remote/host-session.js';
import { LoginShellError, SessionClosedError } from '../../src/remote/session.js';
import { CLOSE_WORDS } from '../../src/remote/scripts.js';
import { recordingLogger } from '../support/fixtures.js';
import { FakeChannel, fakeTransport, tick } from './fake-channel.js';

async function start(): Promise<{ channel: FakeChannel; host: HostSession }> {
  const channel = new FakeChannel();
  const settings = parseSettings({ hosts: 'local', 'deploy-path': '/srv/app', release: 'v1' });
  const host = await HostSession.start(fakeTransport(channel), recordingLogger(), settings);
  return { channel, host };
}

const script = { text: 'echo flipping', display: 'echo flipping' };

test('the last phase: its script, then the closing words and the end of stdin, before the phase answers', async () => {
  const { channel, host } = await start();
  const flipping = host.run('flip', script, 60, { last: true });
  await tick();
  expect(channel.written.indexOf('echo flipping')).toBeGreaterThanOrEqual(0);
  expect(channel.written.indexOf(CLOSE_WORDS)).toBeGreaterThan(channel.written.indexOf('echo flipping'));
  expect(channel.stdinEnded).toBe(true);
  // The phase still answers as ever; close() then has nothing more to send.
  await channel.send(`\n${host.tag} end 0\n`);
  await expect(flipping).resolves.toEqual([]);
  const written = channel.written;
  channel.exit({ code: 0, signal: null });
  await host.close();
  expect(channel.written).toBe(written);
});

test('any other phase leaves the session open for the next', async () => {
  const { channel, host } = await start();
  const building = host.run('build', script, 60);
  await tick();
  expect(channel.written).not.toContain(CLOSE_WORDS);
  expect(channel.stdinEnded).toBe(false);
  await channel.send(`\n${host.tag} end 0\n`);
  await building;
  channel.exit({ code: 0, signal: null });
  await host.close();
  await tick();
  expect(channel.written).toContain(CLOSE_WORDS);
  expect(channel.stdinEnded).toBe(true);
});

test('a login shell that cannot run scripts: named, with its exit status, its words (at most 200 characters) and the remedy', () => {
  const remedy = 'give deploy a POSIX shell (chsh -s /bin/sh deploy) and remove any ForceCommand for it in sshd_config';
  const shell = "deploy@web1: connect failed: the login shell of deploy, or a ForceCommand for it, cannot run tagflip's scripts";
  expect(explainFailure('deploy@web1', new LoginShellError('deploy', 1, [])).message).toBe(`${shell} (it ended at once with exit status 1, printing nothing). ${remedy}`);
  expect(explainFailure('deploy@web1', new LoginShellError('deploy', 11, ['one', 'two'])).message).toBe(`${shell} (it ended at once with exit status 11: "one two"). ${remedy}`);
  expect(explainFailure('deploy@web1', new LoginShellError('deploy', 1, ['x'.repeat(300)])).message).toContain(`: "${'x'.repeat(200)}")`);
  // Without an exit status the connection went: the old message.
  expect(explainFailure('deploy@web1', new SessionClosedError('exit status null')).message).toContain('the host or the network dropped the session');
});
