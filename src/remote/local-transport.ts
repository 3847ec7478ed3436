import { type ChildProcess, spawn } from 'node:child_process';
import { REMOTE_COMMAND, type ShellChannel, type Transport } from './transport.js';

/**
 * Once the shell has exited, how long its pipes may stay quiet before they are
 * closed, and how long they are read at most (a daemon may write for ever).
 */
const DRAIN_QUIET_MS = 100;
const DRAIN_MAX_MS = 1000;
/** How long a shell that was asked to end may take before it is sent SIGTERM. */
const END_GRACE_MS = 5000;

type Exit = { code: number | null; signal: string | null };

/**
 * `hosts: local`: the same shell protocol, run on this machine without SSH.
 *
 * A daemon that a hook starts (`server &`) inherits the shell's stdout and
 * stderr, and holds them open as long as it runs. Node's 'close' waits for
 * those pipes, so it is not how we learn that the shell is gone: its 'exit' is.
 * After 'exit' we read what the pipes still hold, then close our ends, as sshd
 * does when the remote shell exits. The daemon keeps running.
 */
export class LocalTransport implements Transport {
  readonly label = 'local';
  private child: ChildProcess | null = null;
  private finished: Promise<Exit> | null = null;

  async openShell(): Promise<ShellChannel> {
    const child = spawn('/bin/sh', ['-c', REMOTE_COMMAND], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    const failed = new Promise<never>((_resolve, reject) => child.once('error', reject));
    const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const drained = exited.then(async (exit) => {
      await drain(child);
      return exit;
    });
    const finished = Promise.race([failed, drained]);
    finished.catch(() => undefined); // a failed spawn is reported below, or through `closed`
    this.finished = finished;
    // Surface a failed spawn now rather than at the first phase.
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return {
      stdin: child.stdin!,
      stdout: child.stdout!,
      stderr: child.stderr!,
      closed: finished,
      exited: exited.then(() => undefined),
    };
  }

  async close(): Promise<void> {
    const { child, finished } = this;
    this.child = null;
    this.finished = null;
    if (!child || !finished) return;
    if (child.exitCode === null && child.signalCode === null) child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGTERM'), END_GRACE_MS);
    await finished.catch(() => undefined);
    clearTimeout(timer);
  }
}

/**
 * Read what the exited shell's pipes still hold until they are quiet (or at
 * most DRAIN_MAX_MS), then close our ends of them. Pipes that no process holds
 * any more end by themselves, at once.
 */
async function drain(child: ChildProcess): Promise<void> {
  const outputs = [child.stdout, child.stderr].filter((stream) => stream !== null);
  const open = () => outputs.some((stream) => !stream.readableEnded && !stream.destroyed);
  await new Promise<void>((resolve) => {
    let quiet: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(quiet);
      clearTimeout(limit);
      outputs.forEach((stream) => {
        stream.off('data', wait);
        stream.off('end', check);
        stream.off('close', check);
      });
      resolve();
    };
    const wait = () => {
      clearTimeout(quiet);
      quiet = setTimeout(done, DRAIN_QUIET_MS);
    };
    const check = () => {
      if (!open()) done();
    };
    const limit = setTimeout(done, DRAIN_MAX_MS);
    outputs.forEach((stream) => {
      stream.on('data', wait);
      stream.on('end', check);
      stream.on('close', check);
    });
    wait();
    check();
  });
  child.stdin?.destroy();
  outputs.forEach((stream) => stream.destroy());
}
