import type { ShellChannel, Transport } from '../../src/remote/transport.js';

/**
 * Put `tap` in front of every write tagflip makes to the remote shell's stdin
 * (the scripts, in the clear, before SSH encrypts them). The tap returns true
 * to pass the chunk on, false to drop it (as a lost packet would be).
 */
export function tapStdin(channel: ShellChannel, tap: (chunk: string) => boolean): void {
  const write = channel.stdin.write.bind(channel.stdin) as (chunk: unknown, ...rest: unknown[]) => boolean;
  channel.stdin.write = ((chunk: unknown, ...rest: unknown[]) => (tap(String(chunk)) ? write(chunk, ...rest) : true)) as typeof channel.stdin.write;
}

/** A transport that keeps everything tagflip writes to the shell (where, for one, the run's tag is assigned). */
export class RecordingTransport implements Transport {
  readonly label: string;
  written = '';

  constructor(private readonly inner: Transport) {
    this.label = inner.label;
  }

  async openShell(): Promise<ShellChannel> {
    const channel = await this.inner.openShell();
    tapStdin(channel, (chunk) => {
      this.written += chunk;
      return true;
    });
    return channel;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
