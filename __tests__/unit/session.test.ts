import { describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CUT_MARK, MAX_LINE } from '../../src/remote/line-splitter.js';
import { LocalTransport } from '../../src/remote/local-transport.js';
import { type ControlLine, LoginShellError, type PhaseResult, RemoteSession, SessionClosedError, newRunTag } from '../../src/remote/session.js';
import { FakeChannel, fakeTransport, tick } from './fake-channel.js';

const TAG = 'tagflip-0123456789abcdef01234567';
const OTHER_TAG = 'tagflip-ffffffffffffffffffffffff';

interface Recorded {
  events: string[];
  output: string[];
  control: ControlLine[];
}

/** Open a session on a fake channel and start one phase that records what it sees. */
async function startPhase(script = 'true'): Promise<{ channel: FakeChannel; session: RemoteSession; phase: Promise<PhaseResult>; seen: Recorded; stderr: string[] }> {
  const channel = new FakeChannel();
  const stderr: string[] = [];
  const session = await RemoteSession.open(fakeTransport(channel), TAG, (line) => stderr.push(line));
  const seen: Recorded = { events: [], output: [], control: [] };
  const phase = session.run(script, {
    onOutput: (line) => {
      seen.output.push(line);
      seen.events.push(`out:${line}`);
    },
    onControl: (line) => {
      seen.control.push(line);
      seen.events.push(`ctl:${line.kind}`);
    },
  });
  return { channel, session, phase, seen, stderr };
}

const end = (status = 0, tag = TAG) => `\n${tag} end ${status}\n`;

describe('RemoteSession: what is sent', () => {
  test('each phase is wrapped in a subshell reading /dev/null, followed by the end marker', async () => {
    const { channel, phase } = await startPhase('echo one\necho two');
    await tick();
    expect(channel.written).toBe(`(\necho one\necho two\n) </dev/null 2>&1 9>&-; printf '\\n%s end %s\\n' '${TAG}' "$?" || exit 1\n`);
    await channel.send(end());
    await phase;
  });

  test("scope 'session' wraps the phase in a group of the session shell, keeping fd 9 and stderr", async () => {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    const phase = session.run('exec 9>>lock', {}, { scope: 'session' });
    await tick();
    expect(channel.written).toBe(`{\nexec 9>>lock\n} </dev/null; printf '\\n%s end %s\\n' '${TAG}' "$?" || exit 1\n`);
    await channel.send(end(0));
    expect(await phase).toEqual({ status: 0, control: [] });
  });

  test("scope 'subshell' is the same as no scope", async () => {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    const phase = session.run('x', {}, { scope: 'subshell' });
    await tick();
    expect(channel.written.startsWith('(\nx\n) </dev/null 2>&1 9>&-; printf')).toBe(true);
    await channel.send(end(0));
    await phase;
  });

  test('end(lastWords) sends the last words, then closes stdin', async () => {
    const { channel, session, phase } = await startPhase();
    await channel.send(end());
    await phase;
    const before = channel.written;
    session.end('kill "$tf_watchdog" 2>/dev/null; exit 0');
    await tick();
    expect(channel.written.slice(before.length)).toBe('kill "$tf_watchdog" 2>/dev/null; exit 0\n');
    expect(channel.stdinEnded).toBe(true);
  });

  test('end() without last words sends nothing more', async () => {
    const { channel, session, phase } = await startPhase();
    await channel.send(end());
    await phase;
    const before = channel.written;
    session.end();
    await tick();
    expect(channel.written).toBe(before);
    expect(channel.stdinEnded).toBe(true);
  });

  test('end(lastWords) after the shell has ended sends nothing', async () => {
    const { channel, session, phase } = await startPhase();
    channel.exit({ code: 0, signal: null });
    await expect(phase).rejects.toBeInstanceOf(SessionClosedError);
    const before = channel.written;
    session.end('exit 0');
    await tick();
    expect(channel.written).toBe(before);
    expect(channel.stdinEnded).toBe(true);
  });

  test('end() closes the shell’s stdin', async () => {
    const { channel, session, phase } = await startPhase();
    await channel.send(end());
    await phase;
    session.end();
    await tick();
    expect(channel.stdinEnded).toBe(true);
  });

  test('newRunTag makes a fresh tag of 24 hex digits each time', () => {
    const tags = new Set(Array.from({ length: 20 }, () => newRunTag()));
    expect(tags.size).toBe(20);
    for (const tag of tags) expect(tag).toMatch(/^tagflip-[0-9a-f]{24}$/);
  });
});

describe('RemoteSession: reading a phase', () => {
  test('control lines and output lines are told apart', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(`hello\n${TAG} step build\nworld\n${TAG} log removing  releases/v1\n${TAG} ready 2024-06-01T10:00:00Z abc\n`, end(0));
    expect(await phase).toEqual({
      status: 0,
      control: [
        { kind: 'step', args: ['build'], rest: 'build' },
        { kind: 'log', args: ['removing', '', 'releases/v1'], rest: 'removing  releases/v1' },
        { kind: 'ready', args: ['2024-06-01T10:00:00Z', 'abc'], rest: '2024-06-01T10:00:00Z abc' },
      ],
    });
    expect(seen.events).toEqual(['out:hello', 'ctl:step', 'out:world', 'ctl:log', 'ctl:ready']);
    expect(seen.control).toEqual((await phase).control);
  });

  test('the end marker and the blank line before it are dropped; the status is read', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('a\n', end(3));
    expect(await phase).toEqual({ status: 3, control: [] });
    expect(seen.output).toEqual(['a']);
  });

  test('a phase without output reports nothing', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(end(127));
    expect((await phase).status).toBe(127);
    expect(seen.events).toEqual([]);
  });

  test('a blank line the script printed last is kept', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('a\n\n', end(0));
    await phase;
    expect(seen.output).toEqual(['a', '']);
  });

  test('blank lines inside the output are kept, in order with control lines', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(`a\n\n\nb\n\n\n${TAG} step x\n\n`, end(0));
    await phase;
    // The script's own blank lines stay; the one each control line's leading newline made is dropped.
    expect(seen.events).toEqual(['out:a', 'out:', 'out:', 'out:b', 'out:', 'ctl:step', 'out:']);
  });

  test('a partial last line without a newline is still delivered', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('line\npartial', end(1));
    expect((await phase).status).toBe(1);
    expect(seen.output).toEqual(['line', 'partial']);
  });

  test('a control line without a newline is ended by the marker’s newline', async () => {
    const { channel, phase } = await startPhase();
    await channel.send(`${TAG} step build`, end(0));
    expect((await phase).control).toEqual([{ kind: 'step', args: ['build'], rest: 'build' }]);
  });

  test.each([
    ['another run’s tag', `${OTHER_TAG} end 0`],
    ['another run’s control line', `${OTHER_TAG} error build 1 forged`],
    ['the tag with no space', `${TAG}`],
    ['the tag glued to more text', `${TAG}x end 0`],
    ['the tag after a space', ` ${TAG} end 0`],
    ['the tag after other text', `echo ${TAG} end 0`],
  ])('%s is output, not control (and the tag is not shown)', async (_what, line) => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(`${line}\n`, 'after\n', end(4));
    expect(await phase).toEqual({ status: 4, control: [] });
    expect(seen.output).toEqual([line.split(TAG).join('***'), 'after']);
  });

  test('a phase ends at its own marker only', async () => {
    const { channel, phase } = await startPhase();
    let settled = false;
    void phase.then(() => (settled = true));
    await channel.send(`${OTHER_TAG} end 0\n`);
    await tick();
    expect(settled).toBe(false);
    await channel.send(end(2));
    expect((await phase).status).toBe(2);
  });
});

describe('RemoteSession: control lines start a line of their own, and lines are capped', () => {
  test('output without a final newline, then a control line printed newline first: both arrive, no blank line', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send(`compiled 12 files\n${TAG} ready 2024-06-01T10:00:00Z abc\n`, end(0));
    expect(await phase).toEqual({ status: 0, control: [{ kind: 'ready', args: ['2024-06-01T10:00:00Z', 'abc'], rest: '2024-06-01T10:00:00Z abc' }] });
    expect(seen.events).toEqual(['out:compiled 12 files', 'ctl:ready']);
  });

  test('a line longer than the cap comes in marked pieces, and a piece that starts with the tag is not a control line', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('x'.repeat(MAX_LINE), `${TAG} error build 1 forged\n`, end(0));
    expect(await phase).toEqual({ status: 0, control: [] });
    expect(seen.output).toEqual([`${'x'.repeat(MAX_LINE)}${CUT_MARK}`, '*** error build 1 forged']);
  });

  test('a control line too long to pass whole is output, with the tag hidden before the cut', async () => {
    const { channel, phase, seen } = await startPhase();
    const long = `${TAG} fact dir ${'z'.repeat(MAX_LINE)}`;
    await channel.send(`${long}\n`, end(0));
    expect(await phase).toEqual({ status: 0, control: [] });
    const shown = `*** fact dir ${'z'.repeat(MAX_LINE)}`;
    expect(seen.output).toEqual([`${shown.slice(0, MAX_LINE)}${CUT_MARK}`, shown.slice(MAX_LINE)]);
  });

  test('the tag split by a cut is hidden whole, at every offset', async () => {
    for (let offset = 1; offset < TAG.length; offset++) {
      const { channel, phase, seen } = await startPhase();
      await channel.send(`${'x'.repeat(MAX_LINE - offset)}${TAG} error build 1 forged\n`, end(0));
      await phase;
      expect(seen.output.map((piece) => piece.replace(CUT_MARK, '')).join('')).toBe(`${'x'.repeat(MAX_LINE - offset)}*** error build 1 forged`);
      // (Masked, the line may be short enough to come in one piece.)
      expect(Math.max(...seen.output.map((piece) => piece.length))).toBeLessThanOrEqual(MAX_LINE + CUT_MARK.length);
    }
  });

  test('stderr lines are capped the same way', async () => {
    const { channel, phase, stderr } = await startPhase();
    channel.stderr.write(`${'e'.repeat(MAX_LINE + 3)}\n`);
    await channel.send(end(0));
    await phase;
    expect(stderr).toEqual([`${'e'.repeat(MAX_LINE)}${CUT_MARK}`, 'eee']);
  });
});

describe('RemoteSession: output split into chunks', () => {
  const STREAM = `build: ünïcödé ✓ 🚀\n\n\n${TAG} step build\nno newline at end${end(5)}`;
  const EXPECTED = {
    result: { status: 5, control: [{ kind: 'step', args: ['build'], rest: 'build' }] },
    events: ['out:build: ünïcödé ✓ 🚀', 'out:', 'ctl:step', 'out:no newline at end'],
  };

  async function feed(chunks: (string | Buffer)[]): Promise<{ result: PhaseResult; events: string[] }> {
    const { channel, phase, seen } = await startPhase();
    await channel.send(...chunks);
    return { result: await phase, events: seen.events };
  }

  test('in one piece', async () => {
    expect(await feed([STREAM])).toEqual(EXPECTED);
  });

  // Characters, not UTF-16 units: half a surrogate pair is not text a stream can carry.
  const CHARACTERS = Array.from(STREAM);

  test('split into two at every character', async () => {
    for (let i = 1; i < CHARACTERS.length; i++) {
      expect(await feed([CHARACTERS.slice(0, i).join(''), CHARACTERS.slice(i).join('')])).toEqual(EXPECTED);
    }
  });

  test('split into two at every byte, even inside a UTF-8 character', async () => {
    const bytes = Buffer.from(STREAM, 'utf8');
    for (let i = 1; i < bytes.length; i++) {
      expect(await feed([bytes.subarray(0, i), bytes.subarray(i)])).toEqual(EXPECTED);
    }
  });

  test('one byte at a time', async () => {
    const bytes = Buffer.from(STREAM, 'utf8');
    expect(await feed(Array.from(bytes, (byte) => Buffer.from([byte])))).toEqual(EXPECTED);
  });

  test('in pseudo-random pieces', async () => {
    let seed = 7;
    for (let round = 0; round < 50; round++) {
      const chunks: string[] = [];
      let rest = CHARACTERS;
      while (rest.length > 0) {
        seed = (seed * 48271) % 2147483647;
        const size = 1 + (seed % 9);
        chunks.push(rest.slice(0, size).join(''));
        rest = rest.slice(size);
      }
      expect(await feed(chunks)).toEqual(EXPECTED);
    }
  });
});

describe('RemoteSession: several phases and the end of the shell', () => {
  test('phases run one after another on one channel', async () => {
    const { channel, session, phase, seen } = await startPhase('first');
    await channel.send(`${TAG} step one\n`, end(0));
    expect(await phase).toEqual({ status: 0, control: [{ kind: 'step', args: ['one'], rest: 'one' }] });

    const second: string[] = [];
    const next = session.run('second', { onOutput: (line) => second.push(line) });
    await tick();
    expect(channel.written).toContain('(\nsecond\n)');
    await channel.send('two\n', `${TAG} step two\n`, end(1));
    expect(await next).toEqual({ status: 1, control: [{ kind: 'step', args: ['two'], rest: 'two' }] });
    expect(second).toEqual(['two']);
    expect(seen.output).toEqual([]);
  });

  test('a shell that cannot write a phase’s end marker (nobody listening) exits instead of running the next phase', async () => {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    void session.run(': > one').catch(() => undefined);
    void session.run(': > two').catch(() => undefined);
    await tick();
    const dir = mkdtempSync(join(tmpdir(), 'tagflip-session-'));
    try {
      // /dev/full fails every write, as a pipe to a vanished client does for a
      // shell that survives SIGPIPE (the open script traps it).
      const run = spawnSync('/bin/sh', ['-c', 'trap : PIPE; exec sh -s > /dev/full 2>/dev/null'], { cwd: dir, input: channel.written });
      expect(run.status).toBe(1);
      expect(readdirSync(dir)).toEqual(['one']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('phases may be sent before earlier ones end (pipelined): all are written at once, results come in order', async () => {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    const outputs: string[][] = [[], [], []];
    const phases = ['one', 'two', 'three'].map((script, index) =>
      session.run(script, { onOutput: (line) => outputs[index].push(line) }, index === 0 ? { scope: 'session' } : {}),
    );
    await tick();
    const wrapper = (open: string, script: string, close: string) => `${open}\n${script}\n${close}; printf '\\n%s end %s\\n' '${TAG}' "$?" || exit 1\n`;
    expect(channel.written).toBe(
      wrapper('{', 'one', '} </dev/null') + wrapper('(', 'two', ') </dev/null 2>&1 9>&-') + wrapper('(', 'three', ') </dev/null 2>&1 9>&-'),
    );
    const settled: number[] = [];
    phases.forEach((phase, index) => void phase.then(() => settled.push(index)));
    await channel.send(`first\n${TAG} locked\n`, end(0), `second\n${TAG} step build\n`);
    expect(settled).toEqual([0]);
    await channel.send(end(3), `${TAG} removed v1\nthird\n`, end(0));
    expect(await Promise.all(phases)).toEqual([
      { status: 0, control: [{ kind: 'locked', args: [], rest: '' }] },
      { status: 3, control: [{ kind: 'step', args: ['build'], rest: 'build' }] },
      { status: 0, control: [{ kind: 'removed', args: ['v1'], rest: 'v1' }] },
    ]);
    expect(settled).toEqual([0, 1, 2]);
    expect(outputs).toEqual([['first'], ['second'], ['third']]);
  });

  test('when the shell ends, every queued phase is rejected with the same error', async () => {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    const first = session.run('one');
    const second = session.run('two');
    await channel.send(end(0));
    expect((await first).status).toBe(0);
    const third = session.run('three');
    channel.exit({ code: null, signal: 'SIGHUP' });
    const errors = await Promise.all([second, third].map((phase) => phase.catch((error: unknown) => error)));
    expect(errors[0]).toBeInstanceOf(SessionClosedError);
    expect(errors[1]).toBe(errors[0]);
    expect((errors[0] as Error).message).toBe('the remote shell ended before the phase finished (signal SIGHUP)');
  });

  test('run without handlers still collects control lines', async () => {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    const phase = session.run('x');
    await channel.send(`out\n${TAG} fact deploy-path exists\n`, end(0));
    expect(await phase).toEqual({ status: 0, control: [{ kind: 'fact', args: ['deploy-path', 'exists'], rest: 'deploy-path exists' }] });
  });

  test('the channel closing mid-phase rejects with SessionClosedError', async () => {
    const { channel, phase, seen } = await startPhase();
    await channel.send('building…\n', `${TAG} step build\n`);
    channel.exit({ code: 255, signal: null });
    const error = await phase.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionClosedError);
    expect((error as SessionClosedError).message).toBe('the remote shell ended before the phase finished (exit status 255)');
    expect((error as SessionClosedError).detail).toBe('exit status 255');
    expect(seen.events).toEqual(['out:building…', 'ctl:step']);
  });

  test('a signal is named in the error', async () => {
    const { channel, phase } = await startPhase();
    channel.exit({ code: null, signal: 'SIGKILL' });
    await expect(phase).rejects.toThrow('the remote shell ended before the phase finished (signal SIGKILL)');
  });

  test('a channel error rejects the phase with that error', async () => {
    const { channel, phase } = await startPhase();
    const failure = new Error('connection reset');
    channel.crash(failure);
    await expect(phase).rejects.toBe(failure);
  });

  test('after the shell ended, every run is refused with the same error', async () => {
    const { channel, session, phase } = await startPhase();
    await channel.send(end(0));
    await phase;
    channel.exit({ code: 0, signal: null });
    await tick();
    const first = await session.run('again').catch((e: unknown) => e);
    expect(first).toBeInstanceOf(SessionClosedError);
    expect((first as Error).message).toBe('the remote shell ended before the phase finished (exit status 0)');
    await expect(session.run('and again')).rejects.toBe(first);
  });

  test('stderr lines go to onStderr, split at newlines across chunks', async () => {
    const { channel, phase, stderr } = await startPhase();
    channel.stderr.write('warn');
    channel.stderr.write('ing: one\nwarning: two\n\npart');
    await tick();
    // The blank line waits: a control line right after it would drop it.
    expect(stderr).toEqual(['warning: one', 'warning: two']);
    channel.stderr.write('ial\n');
    await tick();
    expect(stderr).toEqual(['warning: one', 'warning: two', '', 'partial']);
    await channel.send(end(0));
    await phase;
  });

  test('stderr lines that start with the run tag (the watchdog’s pings) are dropped', async () => {
    const { channel, phase, stderr } = await startPhase();
    channel.stderr.write(`\n${TAG} ping\nreal warning\nhalf a line\n${TAG} ping\n${TAG} pi`);
    channel.stderr.write(`ng\n${OTHER_TAG} ping\n${TAG}\n ${TAG} ping\n${TAG}x ping\n`);
    await tick();
    expect(stderr).toEqual(['real warning', 'half a line', `${OTHER_TAG} ping`, '***', ' *** ping', '***x ping']);
    await channel.send(end(0));
    expect(await phase).toEqual({ status: 0, control: [] });
  });
});

describe('RemoteSession: a login shell that does not run the script', () => {
  /** A session whose shell is a login shell of `loginUser` (SSH; none: local), with its first phase sent. */
  async function loginPhase(loginUser: string | undefined) {
    const channel = new FakeChannel();
    const session = await RemoteSession.open({ ...fakeTransport(channel), loginUser }, TAG, () => undefined);
    return { channel, phase: session.run('first').catch((error: unknown) => error) };
  }

  test('an exit status before any line with the tag: LoginShellError, with what it printed on stdout and stderr', async () => {
    const { channel, phase } = await loginPhase('deploy');
    channel.stderr.write('nologin: one\n\n');
    await channel.send('This account is currently not available.\n', 'two\nthree\nfour\n');
    channel.exit({ code: 1, signal: null });
    const error = await phase;
    expect(error).toBeInstanceOf(LoginShellError);
    expect(error).toBeInstanceOf(SessionClosedError);
    expect(error).toMatchObject({ user: 'deploy', code: 1, said: ['nologin: one', 'This account is currently not available.', 'two'] });
  });

  test('once the script has spoken (a ping on stderr, a control line), an exit is a plain SessionClosedError', async () => {
    for (const [stream, line] of [['stderr', `\n${TAG} ping\n`], ['stdout', `\n${TAG} step preflight\n`]] as const) {
      const { channel, phase } = await loginPhase('deploy');
      channel[stream].write(line);
      await tick();
      channel.exit({ code: 1, signal: null });
      const error = await phase;
      expect(error).toBeInstanceOf(SessionClosedError);
      expect(error).not.toBeInstanceOf(LoginShellError);
    }
  });

  test('no exit status (the connection dropped), a signal, or no login shell (local): a plain SessionClosedError', async () => {
    for (const [loginUser, exit] of [
      ['deploy', { code: null, signal: null }],
      ['deploy', { code: null, signal: 'SIGKILL' }],
      [undefined, { code: 1, signal: null }],
    ] as const) {
      const { channel, phase } = await loginPhase(loginUser);
      channel.exit(exit);
      const error = await phase;
      expect(error).toBeInstanceOf(SessionClosedError);
      expect(error).not.toBeInstanceOf(LoginShellError);
    }
  });
});

describe('RemoteSession: the wrapper in a real sh', () => {
  /** Run the phase: what the session writes goes to a real `sh -s`, its stdout comes back. */
  async function runInSh(script: string): Promise<{ result: PhaseResult; output: string[] }> {
    const { channel, phase, seen } = await startPhase(script);
    await tick();
    const stdout = execFileSync('/bin/sh', ['-s'], { input: channel.written });
    await channel.send(stdout);
    return { result: await phase, output: seen.output };
  }

  test('output, control lines and the status', async () => {
    expect(await runInSh(`echo hello\nprintf '%s step build\\n' '${TAG}'\necho world\nexit 7`)).toEqual({
      result: { status: 7, control: [{ kind: 'step', args: ['build'], rest: 'build' }] },
      output: ['hello', 'world'],
    });
  });

  test('output without a final newline', async () => {
    expect(await runInSh("printf 'no newline'")).toEqual({ result: { status: 0, control: [] }, output: ['no newline'] });
  });

  test('a final blank line is kept', async () => {
    expect(await runInSh('echo a; echo')).toEqual({ result: { status: 0, control: [] }, output: ['a', ''] });
  });

  test('stderr of the phase is merged into its output', async () => {
    expect(await runInSh('echo err >&2; false')).toEqual({ result: { status: 1, control: [] }, output: ['err'] });
  });

  test('the phase cannot read the next phase from stdin', async () => {
    expect(await runInSh('cat; echo "read: $(cat | wc -c)"')).toEqual({ result: { status: 0, control: [] }, output: ['read: 0'] });
  });

  /** Several phases written before any output is read, all run by one real `sh -s`. */
  async function runPhasesInSh(phases: { script: string; scope?: 'session' | 'subshell' }[]): Promise<{ results: PhaseResult[]; outputs: string[][] }> {
    const channel = new FakeChannel();
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined);
    const outputs: string[][] = phases.map(() => []);
    const running = phases.map(({ script, scope }, index) => session.run(script, { onOutput: (line) => outputs[index].push(line) }, { scope }));
    await tick();
    await channel.send(execFileSync('/bin/sh', ['-s'], { input: channel.written }));
    return { results: await Promise.all(running), outputs };
  }

  test('session scope: variables outlive the phase; subshell scope: they do not', async () => {
    const { results, outputs } = await runPhasesInSh([
      { script: 'kept=yes', scope: 'session' },
      { script: 'lost=yes' },
      { script: 'echo "kept=${kept:-} lost=${lost:-}"' },
    ]);
    expect(results.map((result) => result.status)).toEqual([0, 0, 0]);
    expect(outputs).toEqual([[], [], ['kept=yes lost=']]);
  });

  test('fd 9 opened in session scope stays open for the session, and is closed inside subshell phases', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagflip-session-'));
    try {
      const probe = "if { true >&9; } 2>/dev/null; then echo open; else echo closed; fi";
      const { outputs } = await runPhasesInSh([
        { script: `exec 9>>'${dir}/lock'`, scope: 'session' },
        { script: probe, scope: 'session' },
        { script: probe },
        { script: `sh -c '${probe.replace(/'/g, '')}'` },
      ]);
      expect(outputs).toEqual([[], ['open'], ['closed'], ['closed']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('session scope: stderr is the channel’s stderr, not merged into the output; the run tag’s lines on it are dropped', async () => {
    const channel = new FakeChannel();
    const stderr: string[] = [];
    const session = await RemoteSession.open(fakeTransport(channel), TAG, (line) => stderr.push(line));
    const outputs: string[][] = [[], []];
    const running = [
      session.run(`echo out; echo err >&2; printf '\\n%s ping\\n' '${TAG}' >&2`, { onOutput: (line) => outputs[0].push(line) }, { scope: 'session' }),
      session.run('echo out2; echo err2 >&2', { onOutput: (line) => outputs[1].push(line) }),
    ];
    await tick();
    const shell = spawnSync('/bin/sh', ['-s'], { input: channel.written });
    channel.stderr.write(shell.stderr);
    await channel.send(shell.stdout);
    expect((await Promise.all(running)).map((result) => result.status)).toEqual([0, 0]);
    expect(outputs).toEqual([['out'], ['out2', 'err2']]);
    expect(stderr).toEqual(['err']);
  });

  test('a phase ending with exit ends only its subshell; the next phase still runs', async () => {
    const { results, outputs } = await runPhasesInSh([{ script: 'echo a; exit 4; echo never' }, { script: 'echo b' }]);
    expect(results.map((result) => result.status)).toEqual([4, 0]);
    expect(outputs).toEqual([['a'], ['b']]);
  });

  test('output without a final newline does not hide the control line after it (tf_say prints newline first)', async () => {
    const say = `printf '\\n%s %s\\n' '${TAG}'`;
    expect(await runInSh(`printf 'compiled 12 files'; ${say} 'ready t c'; printf 'fatal: x'; ${say} 'error build 3 failed'; exit 3`)).toEqual({
      result: {
        status: 3,
        control: [
          { kind: 'ready', args: ['t', 'c'], rest: 't c' },
          { kind: 'error', args: ['build', '3', 'failed'], rest: 'build 3 failed' },
        ],
      },
      output: ['compiled 12 files', 'fatal: x'],
    });
  });

  test('a forged marker with another tag does not end the phase', async () => {
    expect(await runInSh(`echo '${OTHER_TAG} end 0'; exit 3`)).toEqual({ result: { status: 3, control: [] }, output: [`${OTHER_TAG} end 0`] });
  });
});

describe('sendData: bytes after a script, only once the host asks', () => {
  const bytes = Buffer.alloc(3 * 1024 * 1024, 'x');
  const asked = (session: RemoteSession, data: () => NodeJS.ReadableStream, sent: Promise<unknown>[]) => ({
    onControl: (line: ControlLine) => {
      if (line.kind === 'receive') sent.push(session.sendData(Number(line.args[0]), data()).catch((error: Error) => error));
    },
  });

  test('the phase reads exactly n bytes; the session then runs the next phase as usual', async () => {
    const transport = new LocalTransport();
    const session = await RemoteSession.open(transport, TAG, () => undefined);
    const sent: Promise<unknown>[] = [];
    const script = `printf '%s receive %s\\n' '${TAG}' ${bytes.length}; printf '%s got %s\\n' '${TAG}' "$(head -c ${bytes.length} <&8 | sha256sum | cut -c1-64)"`;
    const result = await session.run(script, asked(session, () => Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), sent), { input: true });
    expect(await Promise.all(sent)).toEqual([bytes.length]);
    expect(result.control.find((line) => line.kind === 'got')?.args[0]).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect((await session.run('echo after')).status).toBe(0);
    session.end();
    await transport.close();
  });

  // sh reads its input in blocks (dash: 8 KiB). A script whose closing line
  // ends just short of a block boundary leaves the rest of the block, the tail
  // of the wrapper, in the pipe unless it shares that closing line.
  test.each([10, 40, 60])('nothing of the wrapper is read as data when the script ends %i bytes before an 8 KiB block', async (short) => {
    const transport = new LocalTransport();
    const session = await RemoteSession.open(transport, TAG, () => undefined);
    const sent: Promise<unknown>[] = [];
    const body = `printf '%s receive %s\\n' '${TAG}' 100; printf '%s got %s\\n' '${TAG}' "$(head -c 100 <&8 | sha256sum | cut -c1-64)"`;
    const close = ') 8<&0 </dev/null 2>&1 9>&-';
    const padding = 8192 - short - `(\n${body}\n#\n${close}`.length;
    const script = `${body}\n#${'-'.repeat(padding)}`;
    const data = Buffer.alloc(100, 'd');
    const result = await session.run(script, asked(session, () => Readable.from([data]), sent), { input: true });
    await Promise.all(sent);
    expect(result.control.find((line) => line.kind === 'got')?.args[0]).toBe(createHash('sha256').update(data).digest('hex'));
    session.end();
    await transport.close();
  });

  test('data shorter than announced: rejected, stdin closed, so the phase sees its input end early', async () => {
    const transport = new LocalTransport();
    const session = await RemoteSession.open(transport, TAG, () => undefined);
    const sent: Promise<unknown>[] = [];
    const script = `printf '%s receive 100\\n' '${TAG}'; printf '%s got %s\\n' '${TAG}' "$(head -c 100 <&8 | wc -c)"`;
    const result = await session.run(script, asked(session, () => Readable.from([Buffer.alloc(40)]), sent), { input: true });
    expect(String(await sent[0])).toContain('ended after 40 of the 100 bytes');
    expect(result.control.find((line) => line.kind === 'got')?.args[0]).toBe('40');
    await transport.close();
  });
});

describe('RemoteSession: it reads no faster than its output is written', () => {
  test('while the writer is full, both streams are paused; once it drains, reading goes on where it stopped', async () => {
    const channel = new FakeChannel();
    let full = false;
    let drain: () => void = () => undefined;
    const backlog = () => (full ? new Promise<void>((resolve) => (drain = resolve)) : undefined);
    const output: string[] = [];
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined, { backlog });
    const phase = session.run('x', { onOutput: (line) => output.push(line) });
    await channel.send('one\n');
    expect(channel.stdout.isPaused()).toBe(false);
    full = true;
    await channel.send('two\n');
    expect(output).toEqual(['one', 'two']);
    expect(channel.stdout.isPaused()).toBe(true);
    expect(channel.stderr.isPaused()).toBe(true);
    // What the host prints meanwhile waits in the channel (the host's writes block once it is full).
    await channel.send('three\n', end(0));
    expect(output).toEqual(['one', 'two']);
    full = false;
    drain();
    expect(await phase).toEqual({ status: 0, control: [] });
    expect(output).toEqual(['one', 'two', 'three']);
    expect(channel.stdout.isPaused()).toBe(false);
  });

  test('secrets given to the session are masked in a cut line before the cut', async () => {
    const channel = new FakeChannel();
    const output: string[] = [];
    const session = await RemoteSession.open(fakeTransport(channel), TAG, () => undefined, { secrets: ['S3CRETVALUE'] });
    const phase = session.run('x', { onOutput: (line) => output.push(line) });
    await channel.send(`${'x'.repeat(MAX_LINE - 1)}S3CRETVALUE\nS3CRETVALUE\n`, end(0));
    await phase;
    // The cut line masked; the whole line as it came (the logger masks it, or the runner).
    expect(output).toEqual([`${'x'.repeat(MAX_LINE - 1)}${CUT_MARK}`, '***', 'S3CRETVALUE']);
  });
});
