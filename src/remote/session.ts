import { randomBytes } from 'node:crypto';
import { LineSplitter, MAX_LINE } from './line-splitter.js';
import type { ControlLine } from '../core/control-line.js';
import type { ShellChannel, Transport } from './transport.js';

export type { ControlLine } from '../core/control-line.js';

export interface PhaseResult {
  /** Exit status of the phase script. */
  status: number;
  control: ControlLine[];
}

export interface PhaseHandlers {
  /** A line of ordinary output (build logs), streamed as it arrives; a piece of a line longer than MAX_LINE. */
  onOutput?: (line: string) => void;
  /** A control line, as it arrives (e.g. a new step starting). */
  onControl?: (line: ControlLine) => void;
}

/** Where the session's output goes, as far as reading it goes. */
export interface OutputFlow {
  /** Values no line passed on may show (the tag is one anyway): a line that is cut is masked before the cut (line-splitter.ts). */
  secrets?: readonly string[];
  /**
   * Whether the writer that output lines end up in (the runner's or the
   * terminal's pipe) is full: a promise that resolves once it has drained, or
   * undefined. The session then reads nothing more until it resolves.
   */
  backlog?: () => Promise<void> | undefined;
}

/** The per-run tag: control lines start with it, so a build cannot forge them. Never logged. */
export function newRunTag(): string {
  return `tagflip-${randomBytes(12).toString('hex')}`;
}

export class SessionClosedError extends Error {
  constructor(readonly detail: string) {
    super(`the remote shell ended before the phase finished (${detail})`);
    this.name = 'SessionClosedError';
  }
}

/**
 * The login shell ended by itself (an exit status, so the connection was
 * fine) before anything of tagflip's had run: not one line with the tag came,
 * not even the watchdog's first ping. A shell that runs `sh -s` cannot do
 * that; nologin, false, or a ForceCommand (internal-sftp) in its place do.
 * A network drop gives no exit status, so it is never this.
 */
export class LoginShellError extends SessionClosedError {
  constructor(
    readonly user: string,
    readonly code: number,
    /** What it printed, stdout and stderr, as a few lines at most. */
    readonly said: readonly string[],
  ) {
    super(`exit status ${code}`);
    this.name = 'LoginShellError';
  }
}

/** How many lines of a refusing login shell's words are kept for its message. */
const LOGIN_SHELL_LINES = 3;

/** How a phase runs in the session's shell. */
export interface RunOptions {
  /**
   * 'subshell' (the default) isolates the phase: its variables, `exit` and
   * redirections end with it. 'session' runs it in the session shell itself,
   * for what must outlive the phase: the deploy lock's file descriptor and the
   * watchdog.
   */
  scope?: 'subshell' | 'session';
  /**
   * The phase reads data that follows it on the session's stdin (sendData): it
   * gets that stdin as fd 8. Every other phase has none, so nothing it runs can
   * swallow the next phase.
   */
  input?: boolean;
}

interface Waiter {
  resolve: (status: number) => void;
  reject: (error: Error) => void;
  handlers: PhaseHandlers;
  control: ControlLine[];
}

/**
 * One remote shell kept open for the whole run. Each phase script is sent on
 * stdin wrapped in a subshell; the wrapper then prints `<tag> end <status>`,
 * which tells us the phase is over without opening another channel. Phases may
 * be sent before earlier ones end (pipelined); results arrive in order.
 *
 * The protocol, on stdout (and on stderr, where the watchdog pings):
 * - A control line is `<tag> <kind> <args…>`, printed by tagflip's own script
 *   text only, always as `\n<tag> …\n` by one printf. Its leading newline ends
 *   whatever a hook left unterminated, so a control line always starts a line
 *   of its own and is never hidden behind output; the blank line that newline
 *   makes after terminated output is dropped (one blank line directly before a
 *   control line is never output).
 * - Hooks do not know the tag, so they cannot forge a control line; the tag is
 *   never passed on as output (a line that holds it shows *** instead).
 * - Every other line is output. A line longer than MAX_LINE is cut into pieces
 *   (each marked), and no piece of a cut line is ever read as a control line
 *   (tagflip's own are far shorter); so the client holds at most one line's
 *   cap per stream, whatever a hook prints.
 * - The session reads no faster than its output is written (OutputFlow): when
 *   the writer is full, both streams are paused until it drains. The host then
 *   blocks in its next write (SSH's window, or the pipe, fills), which is no
 *   failure: control lines and watchdog pings wait in the same queue and come,
 *   in order, once reading goes on; SSH keepalives are not channel data and
 *   are answered all along.
 * Data (an upload) travels on the same stdin, but only when the host asks for
 * it: sh reads ahead on its input, so bytes sent along with a script could be
 * swallowed by the shell, or run as commands. A phase run with `input` reads
 * fd 8 (the session's stdin); it prints `<tag> receive <n>` once the shell is
 * busy running it, and only then does the client send exactly n bytes
 * (sendData), which the phase reads with `head -c n` (GNU head reads no more
 * than it is asked for). The phase must read all n bytes whatever happens
 * (it drains what it cannot use), and nothing may be pipelined behind it. If
 * the client cannot send all n, it closes stdin: the phase sees the input end
 * short and fails, and the shell exits.
 */
export class RemoteSession {
  private readonly waiters: Waiter[] = [];
  private ended: Error | null = null;
  private readonly stdout: TaggedLines;
  private readonly drainWaiters = new Set<(error: Error) => void>();
  private stdinEnded = false;
  /** A line with the tag has come (on either stream): tagflip's script runs. */
  private heard = false;
  /** Until then, the first lines the shell printed (LoginShellError). */
  private readonly before: string[] = [];
  /** Reading is paused until the output's writer drains. */
  private waitingForWriter = false;

  private constructor(
    private readonly channel: ShellChannel,
    readonly tag: string,
    onStderr: (line: string) => void,
    loginUser: string | undefined,
    private readonly flow: OutputFlow,
  ) {
    const secrets = [tag, ...(flow.secrets ?? [])];
    const note = (line: string) => {
      if (!this.heard && this.before.length < LOGIN_SHELL_LINES && line.trim() !== '') this.before.push(line.trim());
    };
    this.stdout = new TaggedLines(
      tag,
      (line) => {
        note(line);
        this.waiter?.handlers.onOutput?.(line);
      },
      (rest) => {
        this.heard = true;
        this.control(rest);
      },
      secrets,
    );
    channel.stdout.setEncoding('utf8');
    channel.stdout.on('data', (chunk: string) => {
      this.stdout.push(chunk);
      this.keepPace();
    });
    // The remote watchdog pings on stderr (a control line); only other lines are news.
    const stderr = new TaggedLines(
      tag,
      (line) => {
        note(line);
        onStderr(line);
      },
      () => (this.heard = true),
      secrets,
    );
    channel.stderr.setEncoding('utf8');
    channel.stderr.on('data', (chunk: string) => {
      stderr.push(chunk);
      this.keepPace();
    });
    channel.stdin.on('error', () => undefined); // reported through `closed`
    channel.closed.then(
      ({ code, signal }) =>
        this.fail(loginUser && code !== null && !signal && !this.heard ? new LoginShellError(loginUser, code, this.before) : new SessionClosedError(signal ? `signal ${signal}` : `exit status ${code}`)),
      (error: Error) => this.fail(error),
    );
  }

  static async open(transport: Transport, tag: string, onStderr: (line: string) => void, flow: OutputFlow = {}): Promise<RemoteSession> {
    return new RemoteSession(await transport.openShell(), tag, onStderr, transport.loginUser, flow);
  }

  /**
   * After a chunk's lines were passed on: if the writer is full, read nothing
   * more until it drains. Without this a slow reader of the log (a runner
   * behind, a terminal scrolled back, `| less`) made the client hold all the
   * host printed meanwhile: 1.5 GB for one 256 MB line.
   */
  private keepPace(): void {
    if (this.waitingForWriter) return;
    const backlog = this.flow.backlog?.();
    if (!backlog) return;
    this.waitingForWriter = true;
    this.channel.stdout.pause();
    this.channel.stderr.pause();
    void backlog.then(() => {
      this.waitingForWriter = false;
      this.channel.stdout.resume();
      this.channel.stderr.resume();
    });
  }

  /** Run one phase script; resolves with its status once its end marker arrives. */
  run(script: string, handlers: PhaseHandlers = {}, options: RunOptions = {}): Promise<PhaseResult> {
    if (this.ended) return Promise.reject(this.ended);
    const control: ControlLine[] = [];
    const done = new Promise<number>((resolve, reject) => {
      this.waiters.push({ resolve, reject, handlers, control });
    });
    // stdin of the phase is /dev/null, so no hook can read the next phase; fd 9
    // (the lock) is closed, so no process a phase leaves behind holds the lock.
    // A session-scope group keeps fd 9 (a redirection on the group would be undone
    // after it) and stderr, where the watchdog it starts must ping.
    // A marker that cannot be written means nobody is listening any more: the
    // shell then exits (releasing the lock) instead of running what it was sent next.
    // fd 8 is set up before stdin is replaced: redirections apply left to right.
    const input = options.input ? '8<&0 ' : '';
    const [open, close] = options.scope === 'session' ? ['{', '} </dev/null'] : ['(', `) ${input}</dev/null 2>&1 9>&-`];
    // The end marker shares the closing line: sh parses a whole line before it
    // runs any of it, so once a phase runs, nothing of its wrapper is left
    // unread on stdin, where a phase with `input` reads its data.
    this.channel.stdin.write(`${open}\n${script}\n${close}; printf '\\n%s end %s\\n' '${this.tag}' "$?" || exit 1\n`);
    return done.then((status) => ({ status, control }));
  }

  /**
   * Send exactly `size` bytes of `data` on stdin, for a phase (run with `input`)
   * that asked for them with `receive <size>`. Respects backpressure, so
   * memory stays flat however large the data. Resolves with the bytes sent;
   * rejects if the session ends first, or the data is not `size` bytes long
   * (stdin is then closed, so the host sees its input end and fails the phase).
   * `onTaken` hears of each chunk once stdin has taken it (its write
   * callback): its buffer may then be filled again.
   */
  async sendData(
    size: number,
    data: Iterable<Buffer> | AsyncIterable<Buffer> | NodeJS.ReadableStream,
    onProgress?: (sent: number) => void,
    onTaken?: (chunk: Buffer) => void,
  ): Promise<number> {
    if (this.ended) throw this.ended;
    const stdin = this.channel.stdin;
    let sent = 0;
    try {
      for await (const chunk of data) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        if (this.ended) throw this.ended;
        if (sent + bytes.length > size) throw new Error(`the data is longer than the ${size} bytes announced`);
        sent += bytes.length;
        const taken = onTaken && ((error?: Error | null) => (error ? undefined : onTaken(bytes)));
        if (!stdin.write(bytes, taken)) await this.drained();
        onProgress?.(sent);
      }
      if (sent !== size) throw new Error(`the data ended after ${sent} of the ${size} bytes announced`);
      return sent;
    } catch (error) {
      if (!this.ended) stdin.end();
      (data as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      throw error;
    }
  }

  /** Resolves when stdin can take more; rejects if the session ends first. */
  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const stdin = this.channel.stdin;
      const done = (error?: Error) => {
        stdin.off('drain', onDrain);
        this.drainWaiters.delete(done);
        if (error) reject(error);
        else resolve();
      };
      const onDrain = () => done();
      stdin.once('drain', onDrain);
      this.drainWaiters.add(done);
    });
  }

  /** Whether a phase sent now can still reach the shell: the session has not ended, and its input is not closed. */
  get open(): boolean {
    return !this.ended && !this.stdinEnded;
  }

  /**
   * Send a last script (no answer awaited) and close stdin: the remote shell
   * exits once it has run what it was sent. Once only: later calls do nothing.
   */
  end(lastWords = ''): void {
    if (this.stdinEnded) return;
    this.stdinEnded = true;
    if (!this.ended && lastWords) this.channel.stdin.write(`${lastWords}\n`);
    this.channel.stdin.end();
  }

  /** Resolves once the remote shell has exited (and with it, the lock is free), or after `ms`. */
  async exited(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    await Promise.race([this.channel.exited, late]);
    clearTimeout(timer);
  }

  private get waiter(): Waiter | undefined {
    return this.waiters[0];
  }

  private control(rest: string): void {
    const waiter = this.waiter;
    const [kind, ...args] = rest.split(' ');
    if (kind === 'end') {
      this.waiters.shift();
      waiter?.resolve(Number(args[0]));
      return;
    }
    const control = { kind, args, rest: args.join(' ') };
    waiter?.control.push(control);
    waiter?.handlers.onControl?.(control);
  }

  private fail(error: Error): void {
    if (this.ended) return;
    this.ended = error;
    [...this.drainWaiters].forEach((done) => done(error));
    this.waiters.splice(0).forEach((waiter) => waiter.reject(error));
  }
}

/**
 * One stream of the shell read as the protocol above: control lines (what
 * follows the tag) apart from output lines, which never show the tag.
 */
class TaggedLines {
  private readonly splitter: LineSplitter;
  private readonly prefix: string;
  private heldBlank = false;

  constructor(
    private readonly tag: string,
    private readonly onOutput: (line: string) => void,
    private readonly onControl: (rest: string) => void,
    /** Masked in a line that is cut, before the cut; a whole line is the logger's to mask. */
    secrets: readonly string[],
  ) {
    this.prefix = `${tag} `;
    this.splitter = new LineSplitter((line, cut) => this.line(line, cut), MAX_LINE, secrets);
  }

  push(chunk: string): void {
    this.splitter.push(chunk);
  }

  private line(line: string, cut: boolean): void {
    if (!cut && line.startsWith(this.prefix)) {
      // The newline before a control line ended the line before it; a blank line here is that newline's.
      this.heldBlank = false;
      this.onControl(line.slice(this.prefix.length));
      return;
    }
    if (this.heldBlank) {
      this.heldBlank = false;
      this.onOutput('');
    }
    if (line === '' && !cut) {
      this.heldBlank = true;
      return;
    }
    this.onOutput(line.includes(this.tag) ? line.split(this.tag).join('***') : line);
  }
}
