/**
 * The open script's life across a session, run for real in /bin/sh: its
 * watchdog (pings on stderr, the run directory, hooks stopped once the client
 * is gone), and the open script through RemoteSession on a local shell (the
 * lock held in session scope, pings kept out of every phase, the clean-up when
 * the connection goes mid-build).
 */
import { describe, expect, test } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLOSE_WORDS, renderBuildScript, renderOpenScript } from '../../src/remote/scripts.js';
import { RemoteSession } from '../../src/remote/session.js';
import type { ShellChannel, Transport } from '../../src/remote/transport.js';
import { manifest } from './host-facts.js';
import { TAG } from './script-runner.js';
import { HOLDER, context, deployPath, lockIsFree, openScript, root, runShell, shellTemp } from './script-shell.js';

describe('open script: the watchdog', () => {
  test('the watchdog pings on stderr about once a second, never on stdout', async () => {
    const path = deployPath();
    const run = await runShell(`${openScript(path, 'yes')}\nsleep 2.5\n${CLOSE_WORDS}\n`);
    expect(run.texts).toEqual(['step preflight', 'fact deploy-path exists', 'locked', 'step facts']);
    expect(run.output).toEqual([]);
    expect(run.errors).toEqual([]);
    expect(run.pings).toBeGreaterThanOrEqual(2);
    expect(run.pings).toBeLessThanOrEqual(5);
  });

  test('when the session shell ends without the last words, the watchdog ends too and removes its run directory', async () => {
    const path = deployPath();
    const temp = mkdtempSync(join(root, 'tmp-'));
    // stderr is /dev/null, where pings never fail: only the session's end can stop the watchdog.
    await runShell(openScript(path, 'yes'), { TMPDIR: temp }, { stderr: 'ignore' });
    for (let i = 0; i < 40 && readdirSync(temp).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(readdirSync(temp)).toEqual([]);
  });

  test('a session ended with CLOSE_WORDS leaves no run directory behind in $TMPDIR, at once', async () => {
    const path = deployPath();
    const temp = mkdtempSync(join(root, 'tmp-'));
    const run = await runShell(`${openScript(path, 'yes')}\n${CLOSE_WORDS}\n`, { TMPDIR: temp }, { stderr: 'ignore' });
    expect(run.code).toBe(0);
    expect(readdirSync(temp)).toEqual([]);
  });

  test('the run directory is made in $TMPDIR while the session lives', async () => {
    const path = deployPath();
    const temp = mkdtempSync(join(root, 'tmp-'));
    const run = await runShell(`${openScript(path, 'yes')}\nls -- "$TMPDIR" | wc -l | tr -d ' '\n${CLOSE_WORDS}\n`, { TMPDIR: temp });
    expect(run.output).toEqual(['1']);
    expect(readdirSync(temp)).toEqual([]);
  });

  test('once the watchdog has found the client gone, no hook starts: the build is removed and recorded as interrupted', async () => {
    const path = deployPath();
    const runDir = mkdtempSync(join(root, 'run-'));
    writeFileSync(join(runDir, 'lost'), '');
    const ctx = context(path, { release: 'v1', build: 'touch "$TAGFLIP_DEPLOY_PATH/built"' });
    const run = await runShell(`tf_run_dir='${runDir}'\n${renderBuildScript(ctx, manifest('v1', 'building')).text}`);
    expect(run.texts.at(-1)).toBe('error build 1 interrupted: connection lost');
    expect(existsSync(join(path, 'built'))).toBe(false);
    expect(existsSync(join(path, 'releases/v1'))).toBe(false);
    expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v1.json'), 'utf8'))).toMatchObject({ state: 'failed', failedStep: 'build', reason: 'interrupted: connection lost' });
  });

  test('when the connection goes (the shell’s output is closed), the running hook’s process group is stopped', async () => {
    const path = deployPath();
    const ctx = context(path, { release: 'v1', build: 'echo started; sleep 3; touch "$TAGFLIP_DEPLOY_PATH/not-stopped"' });
    const building = manifest('v1', 'building');
    const wrap = (open: string, text: string, close: string) => `${open}\n${text}\n${close}\nprintf '\\n%s end %s\\n' '${TAG}' "$?"\n`;
    const child = spawn('/bin/sh', ['-s'], { env: { ...process.env, TMPDIR: shellTemp }, stdio: ['pipe', 'pipe', 'pipe'] });
    const closed = new Promise((resolve) => child.on('close', resolve));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (chunk.includes('started')) {
        child.stdout.destroy();
        child.stderr.destroy();
      }
    });
    child.stderr.resume();
    // As RemoteSession wraps them: the open script in session scope (its stderr is the channel's), the build in a subshell.
    child.stdin.write(wrap('{', openScript(path, 'yes', 1, { release: 'v1' }), '} </dev/null'));
    child.stdin.write(wrap('(', renderBuildScript(ctx, building).text, ') </dev/null 2>&1 9>&-'));
    child.stdin.end(`${CLOSE_WORDS}\n`);
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(existsSync(join(path, 'not-stopped'))).toBe(false);
    expect(lockIsFree(path)).toBe(true);
  });
});

describe('open script through RemoteSession on a local shell', () => {
  /** Like LocalTransport (`sh -s` on this machine), with $TMPDIR set for the shell. */
  class TestTransport implements Transport {
    readonly label = 'local';
    private child: ChildProcess | null = null;

    async openShell(): Promise<ShellChannel> {
      const child = spawn('/bin/sh', ['-s'], { env: { ...process.env, TMPDIR: shellTemp }, stdio: ['pipe', 'pipe', 'pipe'] });
      this.child = child;
      const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      return { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, closed, exited };
    }

    /** Wait for the shell to exit; not for its stderr to close (a watchdog not yet stopped may hold it). */
    async close(): Promise<void> {
      const child = this.child;
      if (child && child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    }

    /** The client goes away: our ends of the shell's stdout and stderr close, as when the connection drops. */
    hangUp(): void {
      this.child?.stdout?.destroy();
      this.child?.stderr?.destroy();
    }

    /** Wait until stdout and stderr are closed too: once CLOSE_WORDS stopped the watchdog, at once. */
    async drained(): Promise<void> {
      const child = this.child;
      if (child && child.stdout?.closed === false) await new Promise((resolve) => child.once('close', resolve));
      if (child && child.stderr?.closed === false) await new Promise((resolve) => child.stderr?.once('close', resolve));
    }
  }

  async function session(): Promise<{ session: RemoteSession; transport: TestTransport; stderr: string[] }> {
    const transport = new TestTransport();
    const stderr: string[] = [];
    return { session: await RemoteSession.open(transport, TAG, (line) => stderr.push(line)), transport, stderr };
  }

  test('the lock taken in session scope outlives the phase; later phases cannot free it; ending the session frees it', async () => {
    const path = deployPath();
    const { session: shell, transport } = await session();
    try {
      const open = await shell.run(openScript(path, 'yes'), {}, { scope: 'session' });
      expect(open.control.map((line) => line.kind)).toContain('locked');
      const output: string[] = [];
      await shell.run(`if flock -n '${path}/.tagflip/lock' true; then echo free; else echo held; fi`, { onOutput: (line) => output.push(line) });
      expect(output).toEqual(['held']);
      expect(lockIsFree(path)).toBe(false);
    } finally {
      shell.end(CLOSE_WORDS);
      await transport.close();
    }
    expect(lockIsFree(path)).toBe(true);
  });

  // The watchdog pings on stderr (the session-scope group `{ … } </dev/null` keeps it), where
  // RemoteSession drops lines that start with the run tag: no ping joins a phase's output, its
  // control lines, or a line the build has not ended yet.
  test('the watchdog’s pings never reach a phase’s output, its control lines or onStderr', async () => {
    const path = deployPath();
    const { session: shell, transport, stderr } = await session();
    try {
      const open = await shell.run(openScript(path, 'yes'), {}, { scope: 'session' });
      expect(open.control.map((line) => line.kind)).toEqual(['step', 'fact', 'locked', 'step']);
      const output: string[] = [];
      const phase = await shell.run("printf 'progress'; sleep 2.5; echo ' done'; echo oops >&2", { onOutput: (line) => output.push(line) });
      expect(phase.control).toEqual([]);
      expect(output).toEqual(['progress done', 'oops']);
    } finally {
      shell.end(CLOSE_WORDS);
      await transport.close();
      await transport.drained();
    }
    expect(stderr).toEqual([]);
  });

  test('when the connection goes mid-build, the host removes the release and records why, all before its shell exits and frees the lock', async () => {
    const path = deployPath();
    const ctx = context(path, { release: 'v1', build: 'echo started; sleep 20' });
    const { session: shell, transport } = await session();
    const open = await shell.run(renderOpenScript(ctx, { lock: 'yes', lockTimeout: 1, holder: HOLDER }).text, {}, { scope: 'session' });
    expect(open.control.map((line) => line.kind)).toContain('locked');
    const build = shell.run(renderBuildScript(ctx, manifest('v1', 'building')).text, { onOutput: (line) => line === 'started' && transport.hangUp() });
    expect(await build.then(() => 'answered', () => 'connection gone')).toBe('connection gone');
    await transport.close();
    // Nothing waited for the cleanup but the shell's exit: it was done by then.
    expect(lockIsFree(path)).toBe(true);
    expect(existsSync(join(path, 'releases/v1'))).toBe(false);
    const interrupted = { state: 'failed', failedStep: 'build', exitCode: 143, reason: 'interrupted: connection lost' };
    expect(JSON.parse(readFileSync(join(path, '.tagflip/releases/v1.json'), 'utf8'))).toMatchObject(interrupted);
    const lines = readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((line) => JSON.parse(line))).toEqual([expect.objectContaining({ event: 'deploy', status: 'failed', release: 'v1', failedStep: 'build', reason: 'interrupted: connection lost' })]);
  });

  test('hooks run with SIGPIPE and SIGHUP at their defaults: the shells trap them, never ignore them', async () => {
    const path = deployPath();
    const ctx = context(path, { release: 'v1', build: "grep '^SigIgn:' /proc/self/status" });
    const { session: shell, transport } = await session();
    const output: string[] = [];
    try {
      await shell.run(renderOpenScript(ctx, { lock: 'yes', lockTimeout: 1, holder: HOLDER }).text, {}, { scope: 'session' });
      await shell.run(renderBuildScript(ctx, manifest('v1', 'building')).text, { onOutput: (line) => output.push(line) });
    } finally {
      shell.end(CLOSE_WORDS);
      await transport.close();
    }
    const ignored = BigInt(`0x${output.find((line) => line.startsWith('SigIgn:'))!.split(/\s+/)[1]}`);
    const bit = (signal: number) => (ignored >> BigInt(signal - 1)) & 1n;
    expect([bit(1), bit(13)]).toEqual([0n, 0n]);
  });

  test('stderr of the open script’s own shell commands reaches onStderr (the lock file cannot be opened)', async () => {
    const path = deployPath();
    mkdirSync(join(path, '.tagflip/lock'), { recursive: true });
    const { session: shell, transport, stderr } = await session();
    try {
      const open = await shell.run(openScript(path, 'yes'), {}, { scope: 'session' });
      expect(open.control.map((line) => line.rest)).toEqual(['preflight', 'deploy-path exists', `cannot open ${path}/.tagflip/lock`]);
    } finally {
      shell.end(CLOSE_WORDS);
      await transport.close();
      await transport.drained();
    }
    expect(stderr.join('\n')).toContain(`${path}/.tagflip/lock`);
    expect(stderr.filter((line) => line.includes('ping'))).toEqual([]);
  });
});
