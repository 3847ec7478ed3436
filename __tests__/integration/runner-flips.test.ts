/**
 * Only the runner decides a flip, once it has read the build's success:
 * nothing is sent behind a build before the build's answer, so nothing on a
 * host flips on its own. With no hook to follow, the session's closing words
 * go right behind the flip. Seen from the shell's side: what tagflip had
 * written to it by the time the build said ready. Over a real sshd, and with
 * hosts: local.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { deployToHost } from '../../src/commands/deploy.js';
import { createTransport } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { CLOSE_WORDS } from '../../src/remote/scripts.js';
import type { ShellChannel } from '../../src/remote/transport.js';
import { deployRootFor, openTempDir, recordingLogger } from '../support/fixtures.js';
import { RecordingTransport } from '../support/shell-taps.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

/** A transport, noting what had been written to the shell when it said ready, and when it said flipped. */
class WatchedTransport extends RecordingTransport {
  atReady: string | null = null;
  atFlipped: string | null = null;

  async openShell(): Promise<ShellChannel> {
    const channel = await super.openShell();
    channel.stdout.on('data', (chunk: Buffer | string) => {
      if (this.atReady === null && / ready \d{4}-/.test(String(chunk))) this.atReady = this.written;
      // Once tagflip has read this chunk too (its listener runs after this one), should ready be in it as well.
      if (this.atFlipped === null && / flipped\n/.test(String(chunk))) setImmediate(() => (this.atFlipped ??= this.written));
    });
    return channel;
  }
}

let sshd: TestSshd;

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  await sshd?.stop();
});

// A line of the flip's script, and of no other.
const FLIP = 'tf_step flip';

describe.each([
  ['over sshd', () => ({ hosts: `${sshd.user}@${sshd.host}:${sshd.port}`, 'private-key': sshd.privateKey, 'known-hosts': sshd.knownHosts }), () => deployRootFor(sshd.user)],
  ['hosts: local', () => ({ hosts: 'local' }), () => openTempDir('tagflip-flips-')],
])('%s', (_how, hostInputs, root) => {
  async function deploy(inputs: Record<string, string>) {
    const site = join(root(), `site-${Math.random().toString(36).slice(2)}`);
    const settings = parseSettings({ ...hostInputs(), 'deploy-path': site, release: 'v1', ...inputs });
    const transport = new WatchedTransport(createTransport(settings, settings.targets[0]));
    const result = await deployToHost(settings, { transport, logger: recordingLogger() });
    // The deploy can end in the same turn that read the flipped line (the session's end came with it):
    // let the turn that notes what had been written by then come first.
    await new Promise((resolve) => setImmediate(resolve));
    return { site, result, transport };
  }

  test('without hooks: the flip was sent only once the build said ready, the closing words right behind it', async () => {
    const { site, result, transport } = await deploy({ build: 'echo built > out.txt' });
    expect(result).toMatchObject({ status: 'deployed', error: '' });
    expect(transport.atReady).not.toBeNull();
    expect(transport.atReady).not.toContain(FLIP);
    expect(transport.atReady).not.toContain(CLOSE_WORDS);
    // Behind the flip, before its answer: nothing follows it.
    expect(transport.atFlipped).toContain(FLIP);
    expect(transport.atFlipped).toContain(CLOSE_WORDS);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
    // The record the flip wrote has the time and commit the build reported (none: no repository).
    const record = JSON.parse(readFileSync(join(site, '.tagflip/releases/v1.json'), 'utf8'));
    expect(record).toMatchObject({ state: 'active', commit: '' });
    expect(record.finished).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test('with activate: the flip was sent after the build answered, the session stays open for the hook', async () => {
    const { site, result, transport } = await deploy({ build: 'true', activate: 'echo activated > ../../activated' });
    expect(result).toMatchObject({ status: 'deployed', error: '' });
    expect(transport.atReady).not.toContain(FLIP);
    expect(transport.atFlipped).not.toContain(CLOSE_WORDS);
    expect(existsSync(join(site, 'activated'))).toBe(true);
  });

  test('a failed build: no flip is ever sent', async () => {
    const { site, result, transport } = await deploy({ build: 'exit 3' });
    expect(result).toMatchObject({ status: 'failed' });
    expect(result.error).toMatch(/build exited with status 3/);
    expect(transport.written).not.toContain(FLIP);
    expect(existsSync(join(site, 'current'))).toBe(false);
    expect(existsSync(join(site, 'releases/v1'))).toBe(false);
    expect(JSON.parse(readFileSync(join(site, '.tagflip/releases/v1.json'), 'utf8'))).toMatchObject({ state: 'failed', exitCode: 3 });
    // Only the failure is in the history: no flip was recorded.
    const history = readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8').trim().split('\n');
    expect(history.map((line) => JSON.parse(line).status)).toEqual(['failed']);
  });
});
