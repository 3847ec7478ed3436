import { type ChildProcess, spawn } from 'node:child_process';
import { REMOTE_COMMAND, type ShellChannel, type Transport } from './transport.js';

/** `hosts: local`: the same shell protocol, run on this machine without SSH. */
export class LocalTransport implements Transport {
  readonly label = 'local';
  private child: ChildProcess | null = null;

  async openShell(): Promise<ShellChannel> {
    const child = spawn('/bin/sh', ['-c', REMOTE_COMMAND], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    const closed = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    // Surface a failed spawn now rather than at the first phase.
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return { stdin: child.stdin!, stdout: child.stdout!, stderr: child.stderr!, closed, exited };
  }

  async close(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.stdin?.end();
    const exited = new Promise((resolve) => child.once('close', resolve));
    const timer = setTimeout(() => child.kill('SIGTERM'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
