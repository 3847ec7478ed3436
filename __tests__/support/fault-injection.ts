/** Starting a fault at its point and ending it: signals to the client, the path (proxy), a stopped sshd; and the watcher that sees the phase. */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ShellChannel, Transport } from '../../src/remote/transport.js';
import { FaultProxy } from './fault-proxy.js';
import { descendantPids, tryKill } from './processes.js';
import type { TestSshd } from './sshd.js';
import type { Fault, Phase } from './fault-scenarios.js';

/** Faults that need the client in a process of its own. */
export const CLIENT_SIGNALS: Partial<Record<Fault, NodeJS.Signals>> = { sigkill: 'SIGKILL', sigterm: 'SIGTERM' };

export interface MatrixOptions {
  /** How long a path fault or a stopped sshd lasts before it ends in resets. */
  holdMs: number;
  /** Hold path faults until the client gives up by itself (its keepalive), not holdMs. */
  patient: boolean;
}

/** One fault, started once at its point and ended (resets, SIGCONT) once. */
export class InjectedFault {
  started = false;
  client: ChildProcess | null = null;
  private ended = false;
  private stoppedPids: number[] = [];
  private holdTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly fault: Fault,
    private readonly proxy: FaultProxy,
    private readonly sshd: TestSshd,
    private readonly options: MatrixOptions,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    const signal = CLIENT_SIGNALS[this.fault];
    if (signal) {
      this.client?.kill(signal);
      return;
    }
    if (this.fault === 'cut-up') this.proxy.stop('up');
    else if (this.fault === 'cut-down') this.proxy.stop('down');
    else if (this.fault === 'freeze') this.proxy.freeze();
    else this.stopSshd(this.fault === 'stop-session');
    if (!this.options.patient) this.holdTimer = setTimeout(() => void this.end(), this.options.holdMs);
  }

  /** The client answered: a fault held until then (patient) ends now. */
  clientAnswered(): void {
    if (this.started && this.options.patient) void this.end();
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    if (!this.started || CLIENT_SIGNALS[this.fault]) return;
    // The path gives up first, then a stopped sshd wakes to a connection that is gone.
    this.proxy.reset();
    for (const pid of this.stoppedPids) tryKill(pid, 'SIGCONT');
  }

  /** SIGSTOP the sessions of the host: sshd's own processes only, or with everything they run (the shell, the build). */
  private stopSshd(wholeSession: boolean): void {
    const monitors = this.sshd.sessionPids();
    const tree = monitors.flatMap((pid) => [pid, ...descendantPids(pid)]);
    this.stoppedPids = wholeSession ? tree : tree.filter((pid) => commandName(pid).startsWith('sshd'));
    for (const pid of this.stoppedPids) tryKill(pid, 'SIGSTOP');
  }
}

/** Sees the shell of one host as tagflip does, and calls `reached` at the phase. */
export class PhaseWatcher implements Transport {
  readonly label: string;
  private seenFlipped = false;
  private tail = '';

  constructor(
    private readonly inner: Transport,
    private readonly phase: Phase,
    private readonly reached: () => void,
  ) {
    this.label = inner.label;
  }

  async openShell(): Promise<ShellChannel> {
    const channel = await this.inner.openShell();
    const write = channel.stdin.write.bind(channel.stdin) as (chunk: unknown, ...rest: unknown[]) => boolean;
    channel.stdin.write = ((chunk: unknown, ...rest: unknown[]) => {
      // Before the bytes go: a fault at the flip script's leaving stops it on the way.
      if (this.phase === 'sent:flip' && String(chunk).includes('tf_step flip')) this.reached();
      return write(chunk, ...rest);
    }) as typeof channel.stdin.write;
    // Registered before tagflip's own listener: the fault starts as the client reads the line.
    channel.stdout.on('data', (chunk: Buffer | string) => this.read(String(chunk)));
    return channel;
  }

  private read(chunk: string): void {
    const text = this.tail + chunk;
    // A control line may come split over chunks: look at what is new, with the line before it.
    this.tail = text.slice(-200);
    for (const match of text.matchAll(/\ntagflip-[0-9a-f]{24} ([a-z-]+)(?: (\S+))?/g)) {
      const [, kind, first] = match;
      if (match.index! + match[0].length <= text.length - chunk.length) continue;
      if (kind === 'flipped') this.seenFlipped = true;
      const name = kind === 'step' ? `line:step ${first}` : kind === 'end' && this.seenFlipped ? 'line:end after flipped' : `line:${kind}`;
      if (name === this.phase) this.reached();
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
