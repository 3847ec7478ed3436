/**
 * The job's report and the host's state agree (issue 20): a flip is done (the
 * release reported is what current is), not done (current is what it was), or
 * unknown (sent, and the connection went before its answer: both releases are
 * named). Housekeeping after the flip never fails a flipped deploy. Over a
 * real sshd, with the connection cut from the client's side at the moment
 * that matters (the transport below reads and writes the decrypted stream).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createTransport, runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import type { ShellChannel, Transport } from '../../src/remote/transport.js';
import { deployFleet } from '../../src/commands/deploy.js';
import { flipsInFlightNow } from '../../src/commands/fleet.js';
import { deployRootFor, recordingLogger } from '../support/fixtures.js';
import { tapStdin } from '../support/shell-taps.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

/** Where the connection is cut, as the client sees the shell. */
interface Cut {
  /** Once a line of the shell's output matches: pass it on, then nothing more. */
  afterOutput?: RegExp;
  /** Once tagflip writes a script holding this: pass it on (or not), read nothing more, and cut `ms` later. */
  afterInput?: { holding: string; deliver: boolean; ms: number };
  /**
   * A silent path: the client gives up at the cut, but the connection stays
   * open this long for the host (whose writes still succeed), then closes.
   */
  silentMs?: number;
}

/** A transport whose connection goes at the chosen point: the client hears nothing after it, as with a network cut. */
class CuttingTransport implements Transport {
  readonly label: string;
  cutDone = false;

  constructor(
    private readonly inner: Transport,
    private readonly cut: Cut,
  ) {
    this.label = inner.label;
  }

  async openShell(): Promise<ShellChannel> {
    const channel = await this.inner.openShell();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let deaf = false;
    let settle: (value: { code: number | null; signal: string | null }) => void = () => undefined;
    const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) => (settle = resolve));
    const cutNow = () => {
      if (this.cutDone) return;
      this.cutDone = true;
      deaf = true;
      settle({ code: null, signal: 'SIGPIPE' });
      setTimeout(() => void this.inner.close(), this.cut.silentMs ?? 0);
    };
    // The shell may end by itself before the cut (the closing words go right behind a last flip): unheard too.
    channel.closed.then(
      (value) => (deaf ? cutNow() : settle(value)),
      () => cutNow(),
    );
    channel.stderr.on('data', (chunk: Buffer) => {
      if (!deaf) stderr.write(chunk);
    });
    let pending = '';
    channel.stdout.on('data', (chunk: Buffer) => {
      if (deaf) return;
      const text = pending + chunk.toString('utf8');
      const pattern = this.cut.afterOutput;
      const lines = text.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (deaf) return;
        stdout.write(`${line}\n`);
        if (pattern?.test(line)) cutNow();
      }
    });
    const end = channel.stdin.end.bind(channel.stdin) as (...args: unknown[]) => void;
    channel.stdin.end = ((...args: unknown[]) => {
      if (!(this.cutDone && this.cut.silentMs)) end(...args);
      return channel.stdin;
    }) as typeof channel.stdin.end;
    tapStdin(channel, (chunk) => {
      const input = this.cut.afterInput;
      if (this.cutDone) return false;
      if (input && chunk.includes(input.holding)) {
        deaf = true;
        setTimeout(cutNow, input.ms);
        return input.deliver;
      }
      return true;
    });
    return { stdin: channel.stdin, stdout, stderr, closed, exited: closed.then(() => undefined) };
  }

  close(): Promise<void> {
    // On a silent path the client's goodbye does not reach the host either.
    if (this.cutDone && this.cut.silentMs) return Promise.resolve();
    return this.inner.close();
  }
}

let sshd: TestSshd;
let root: string;
let sites = 0;

beforeAll(async () => {
  sshd = await startSshd();
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

const newSite = () => join(root, `site${++sites}`);
const login = () => ({ hosts: `${sshd.user}@${sshd.host}:${sshd.port}`, 'private-key': sshd.privateKey, 'known-hosts': sshd.knownHosts });

async function deploy(site: string, inputs: Record<string, string>, cut: Cut | null = null) {
  const logger = recordingLogger();
  const settings = parseSettings({ ...login(), 'deploy-path': site, build: 'echo "$TAGFLIP_RELEASE" > built', ...inputs });
  if (!cut) return { result: (await runCommand(settings, logger)).hosts[0], log: logger.text() };
  const transport = new CuttingTransport(createTransport(settings, settings.targets[0]), cut);
  const [result] = await deployFleet(settings, [{ transport, logger }], logger);
  expect(transport.cutDone).toBe(true);
  return { result, log: logger.text() };
}

const current = (site: string) => readlinkSync(join(site, 'current'));
const record = (site: string, release: string) => JSON.parse(readFileSync(join(site, `.tagflip/releases/${release}.json`), 'utf8'));
const history = (site: string) =>
  readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { event: string; status: string; release: string });
/** Wait until the host's shell of the cut session has gone: its lock is free. */
async function lockFree(site: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('flock', ['-n', join(site, '.tagflip/lock'), 'true']);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`the lock of ${site} stayed held`);
}

describe('the connection goes at the flip', () => {
  test('cut right after the host said flipped: reported deployed, with the new release, as the host has it', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1' });
    const { result, log } = await deploy(site, { release: 'v2' }, { afterOutput: / flipped$/ });
    expect(result).toMatchObject({ status: 'deployed', release: 'v2', previousRelease: 'v1' });
    expect(result.warnings?.join('\n')).toMatch(/the connection went after the flip/);
    expect(log).toMatch(/current -> releases\/v2/);
    await lockFree(site);
    expect(current(site)).toBe('releases/v2');
    expect(record(site, 'v2').state).toBe('active');
  });

  test('cut right after flipped, with activate: failed, and the release reported is the one current serves', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1' });
    const { result } = await deploy(site, { release: 'v2', activate: 'touch ../../activated' }, { afterOutput: / flipped$/ });
    // activate could not run, and the flip back could not be sent: current stays on v2, and the report says so.
    expect(result).toMatchObject({ status: 'failed', release: 'v2' });
    expect(result.attention).toMatch(/still runs v2/);
    await lockFree(site);
    expect(current(site)).toBe('releases/v2');
    expect(existsSync(join(site, 'activated'))).toBe(false);
  });

  test('the flip sent and run, its answer never read: unknown, naming both releases', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1' });
    const { result } = await deploy(site, { release: 'v2' }, { afterInput: { holding: 'tf_step flip', deliver: true, ms: 1500 } });
    expect(result).toMatchObject({ status: 'unknown', release: 'v1', unconfirmedRelease: 'v2' });
    expect(result.error).toMatch(/current is either releases\/v1 or releases\/v2.*command: status/);
    await lockFree(site);
    // The host did flip: unknown was the truth the client had.
    expect(current(site)).toBe('releases/v2');
    expect(record(site, 'v2').state).toBe('active');
  });

  test('a run stopped while its flip is on the way can say what the host may run (what a signal prints)', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1' });
    // With a hook to follow, the session stays open after the flip: its answer is simply never heard.
    const running = deploy(site, { release: 'v2', activate: 'true' }, { afterInput: { holding: 'tf_step flip', deliver: true, ms: 1500 } });
    let said: string[] = [];
    for (let i = 0; i < 100 && said.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      said = flipsInFlightNow();
    }
    expect(said).toEqual([expect.stringMatching(/: unknown: the flip to v2 was sent and not answered; current is either releases\/v1 or releases\/v2: run status/)]);
    await running;
    expect(flipsInFlightNow()).toEqual([]);
  });

  test('the flip written but never delivered: unknown too (the client cannot tell); the host stays on v1', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1' });
    const { result } = await deploy(site, { release: 'v2' }, { afterInput: { holding: 'tf_step flip', deliver: false, ms: 0 } });
    expect(result).toMatchObject({ status: 'unknown', release: 'v1', unconfirmedRelease: 'v2' });
    await lockFree(site);
    expect(current(site)).toBe('releases/v1');
    expect(record(site, 'v2').state).toBe('ready');
  });

  test('silent during the build: the host never flips on its own; the job says failed on v1, as the host is', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1' });
    const { result } = await deploy(site, { release: 'v2', build: 'sleep 1; echo done' }, { afterOutput: / step build$/, silentMs: 3000 });
    expect(result).toMatchObject({ status: 'failed', release: 'v1' });
    // The build ends while the host still sees its client.
    await new Promise((resolve) => setTimeout(resolve, 3500));
    await lockFree(site);
    expect(current(site)).toBe('releases/v1');
    expect(['ready', 'failed']).toContain(record(site, 'v2').state);
    expect(history(site).filter((line) => line.status === 'deployed').map((line) => line.release)).toEqual(['v1']);
  });
});

describe('housekeeping after the flip never fails a flipped deploy', () => {
  /** A directory in a release that the deploy user cannot remove: root's, as another user's file would be. */
  function plantForeignDirectory(site: string, release: string): void {
    const dir = join(site, 'releases', release, 'foreign');
    mkdirSync(dir);
    writeFileSync(join(dir, 'file'), 'root\n');
    chownSync(dir, 0, 0);
  }

  test('a read-only directory (as Go leaves its module cache) is made writable and removed', async () => {
    const site = newSite();
    const build = 'mkdir -p cache/pkg && touch cache/pkg/mod && chmod 555 cache/pkg';
    await deploy(site, { release: 'v1', build, 'keep-releases': '1' });
    await deploy(site, { release: 'v2', build, 'keep-releases': '1' });
    const { result } = await deploy(site, { release: 'v3', build, 'keep-releases': '1' });
    expect(result).toMatchObject({ status: 'deployed', release: 'v3', removed: ['v1'] });
    expect(existsSync(join(site, 'releases/v1'))).toBe(false);
  });

  test('without hooks: retention that cannot remove a release is a warning; deployed, current on the new release', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1', 'keep-releases': '1' });
    plantForeignDirectory(site, 'v1');
    await deploy(site, { release: 'v2', 'keep-releases': '1' });
    const { result, log } = await deploy(site, { release: 'v3', 'keep-releases': '1' });
    expect(result).toMatchObject({ status: 'deployed', release: 'v3', error: '' });
    expect(result.warnings?.join('\n')).toMatch(/retention stopped: cannot remove .*releases\/v1/);
    expect(log).toMatch(/warning: .*retention stopped/);
    expect(current(site)).toBe('releases/v3');
    expect(record(site, 'v1').state).toBe('inactive');
  });

  test('with activate and verify: they run, then retention; its failure is a warning', async () => {
    const site = newSite();
    const hooks = { activate: 'echo "$TAGFLIP_RELEASE" >> ../../activated', verify: 'test -f built', 'keep-releases': '1' };
    await deploy(site, { release: 'v1', ...hooks });
    plantForeignDirectory(site, 'v1');
    await deploy(site, { release: 'v2', ...hooks });
    const { result, log } = await deploy(site, { release: 'v3', ...hooks });
    expect(result).toMatchObject({ status: 'deployed', release: 'v3', error: '' });
    expect(readFileSync(join(site, 'activated'), 'utf8')).toBe('v1\nv2\nv3\n');
    expect(result.warnings?.join('\n')).toMatch(/retention stopped/);
    // Retention comes after verify: its group follows verify's.
    expect(log.indexOf('group: prune')).toBeGreaterThan(log.indexOf('group: verify'));
    expect(current(site)).toBe('releases/v3');
  });

  test('a verify that fails: flipped back, and retention removes nothing', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1', 'keep-releases': '1' });
    await deploy(site, { release: 'v2', 'keep-releases': '1' });
    const { result } = await deploy(site, { release: 'v3', 'keep-releases': '1', verify: 'test "$TAGFLIP_RELEASE" != v3' });
    expect(result).toMatchObject({ status: 'rolled-back', release: 'v2' });
    expect(result.removed ?? []).toEqual([]);
    expect(current(site)).toBe('releases/v2');
  });

  test('a history that cannot be written after the flip is a warning, naming what is missing', async () => {
    const site = newSite();
    await deploy(site, { release: 'v1' });
    // Root's now: the deploy user can no longer append to it.
    chownSync(join(site, '.tagflip/history.jsonl'), 0, 0);
    const { result } = await deploy(site, { release: 'v2' });
    expect(result).toMatchObject({ status: 'deployed', release: 'v2', error: '' });
    expect(result.warnings?.join('\n')).toMatch(/current now points to releases\/v2, but its record under .tagflip could not be written/);
    expect(current(site)).toBe('releases/v2');
  });
});
