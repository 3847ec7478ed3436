import { describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoginShellError, type PhaseResult, RemoteSession, SessionClosedError } from '../../src/remote/session.js';
import { FakeChannel, fakeTransport, tick } from './fake-channel.js';
import { TAG, OTHER_TAG, startPhase, end } from './session-fixtures.js';

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
