import { afterEach, expect, test } from '@jest/globals';
import { LocalTransport } from '../../src/remote/local-transport.js';

// `hosts: local` runs the session shell as a child of this process. A daemon a
// hook starts inherits that shell's stdout and stderr; the transport must still
// learn at once that the shell has exited, and let go of the pipes, without
// stopping the daemon.
const daemons: number[] = [];

afterEach(() => {
  // The daemons are the user's to keep; the tests stop theirs, by pid.
  for (const pid of daemons.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Run `script` in the transport's shell; resolve with its output, exit and the time until `closed`. */
async function runShell(script: string) {
  const transport = new LocalTransport();
  const channel = await transport.openShell();
  let stdout = '';
  let stderr = '';
  channel.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  channel.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const started = Date.now();
  channel.stdin.end(script);
  const exit = await channel.closed;
  const seconds = (Date.now() - started) / 1000;
  await transport.close();
  return { stdout, stderr, exit, seconds, channel };
}

test.each([
  ['holding stdout and stderr', 'sleep 30 &'],
  ['holding stdout only', 'sleep 30 2>/dev/null &'],
  ['with its output redirected (nohup)', 'nohup sleep 30 >/dev/null 2>&1 &'],
])('a daemon %s: closed resolves as soon as the shell exits, with its status and all its output; the daemon lives on', async (_what, start) => {
  const run = await runShell(`${start}\necho "daemon $!"\necho 'to stderr' >&2\nprintf 'last words'\nexit 3\n`);
  const pid = Number(/^daemon (\d+)$/m.exec(run.stdout)?.[1]);
  daemons.push(pid);
  expect(run.seconds).toBeLessThan(3);
  expect(run.exit).toEqual({ code: 3, signal: null });
  expect(run.stdout).toBe(`daemon ${pid}\nlast words`);
  expect(run.stderr).toBe('to stderr\n');
  expect(alive(pid)).toBe(true);
  // Our ends of the pipes are closed: nothing keeps this process waiting for the daemon.
  expect([run.channel.stdout.destroyed, run.channel.stderr.destroyed]).toEqual([true, true]);
}, 20_000);

test('a daemon that keeps writing does not keep the pipes open for ever', async () => {
  const run = await runShell('while :; do echo tick; sleep 0.05; done &\necho "daemon $!"\nexit 0\n');
  daemons.push(Number(/^daemon (\d+)$/m.exec(run.stdout)?.[1]));
  expect(run.seconds).toBeLessThan(3);
  expect(run.exit).toEqual({ code: 0, signal: null });
}, 20_000);

test('close() ends a shell that is still running, then lets go of a daemon it started', async () => {
  const transport = new LocalTransport();
  const channel = await transport.openShell();
  let stdout = '';
  channel.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  channel.stdin.write('sleep 30 &\necho "daemon $!"\n');
  while (!/daemon \d+\n/.test(stdout)) await new Promise((resolve) => setTimeout(resolve, 20));
  const pid = Number(/daemon (\d+)/.exec(stdout)![1]);
  daemons.push(pid);
  const started = Date.now();
  await transport.close();
  expect((Date.now() - started) / 1000).toBeLessThan(3);
  expect(await channel.closed).toEqual({ code: 0, signal: null });
  expect(alive(pid)).toBe(true);
}, 20_000);
