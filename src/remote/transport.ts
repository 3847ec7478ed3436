import type { Readable, Writable } from 'node:stream';

/**
 * A remote `sh -s` with its pipes. The SSH and local transports both hand one
 * out; nothing above this file knows which it has.
 */
export interface ShellChannel {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves when the shell has exited and its output is drained. */
  closed: Promise<{ code: number | null; signal: string | null }>;
  /** Resolves when the shell process has exited (a daemon may still hold its output open). */
  exited: Promise<void>;
}

export interface Transport {
  /** The host as users name it, e.g. deploy@web1:2222 or local. */
  readonly label: string;
  /** The account whose login shell runs the shell (SSH); none where no login shell stands between (local). */
  readonly loginUser?: string;
  /** Connect (if needed) and start the one remote shell of this run. */
  openShell(): Promise<ShellChannel>;
  /** Tear down the shell and the connection. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The constant command every transport runs; scripts arrive on its stdin. The
 * login shell that sshd starts for it becomes sh (exec) instead of waiting for a child.
 */
export const REMOTE_COMMAND = 'exec sh -s';
