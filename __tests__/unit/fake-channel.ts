/**
 * A shell channel made of PassThrough streams, for tests of the session
 * protocol where the test plays the remote shell.
 */
import { PassThrough } from 'node:stream';
import type { ShellChannel, Transport } from '../../src/remote/transport.js';

type Exit = { code: number | null; signal: string | null };

/** A shell channel made of PassThrough streams; the test plays the remote shell. */
export class FakeChannel implements ShellChannel {
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly closed: Promise<Exit>;
  readonly exited: Promise<void>;
  /** Everything the session wrote to the shell's stdin. */
  written = '';
  stdinEnded = false;
  exit!: (result: Exit) => void;
  crash!: (error: Error) => void;

  constructor() {
    this.closed = new Promise<Exit>((resolve, reject) => {
      this.exit = resolve;
      this.crash = reject;
    });
    this.exited = this.closed.then(
      () => undefined,
      () => undefined,
    );
    this.stdin.setEncoding('utf8');
    this.stdin.on('data', (chunk: string) => (this.written += chunk));
    this.stdin.on('end', () => (this.stdinEnded = true));
  }

  /** Send stdout in the given pieces, letting the session read each one. */
  async send(...chunks: (string | Buffer)[]): Promise<void> {
    for (const chunk of chunks) {
      this.stdout.write(chunk);
      await tick();
    }
  }
}

export function fakeTransport(channel: ShellChannel): Transport {
  return { label: 'fake', openShell: async () => channel, close: async () => undefined };
}

export const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
