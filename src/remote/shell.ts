/**
 * The one way a value reaches a remote shell. Every script tagflip sends is a
 * block of `name='value'` assignments made here, followed by constant text that
 * only ever says "$name".
 */

/** Quote a value for POSIX sh: single quotes, with each ' written as '\''. */
export function quote(value: string): string {
  if (value.includes('\0')) {
    // A NUL cannot be passed through sh at all; validation refuses it earlier.
    throw new Error('a shell value cannot contain a NUL byte');
  }
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface Assignment {
  name: string;
  value: string;
  /** Exported to the hooks' environment. */
  exported?: boolean;
  /** Replaced by *** when a script is shown (dry run, debug). */
  secret?: boolean;
  /** Shown instead of the value (dry run, debug): the value with its secret parts as ***. */
  shown?: string;
}

const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Render the header block of a script. `redact` is for display only. */
export function renderAssignments(assignments: readonly Assignment[], redact = false): string {
  return assignments
    .map(({ name, value, exported, secret, shown }) => {
      if (!SHELL_NAME.test(name)) throw new Error(`not a shell variable name: ${name}`);
      const displayed = redact ? (secret ? '***' : (shown ?? value)) : value;
      return `${exported ? 'export ' : ''}${name}=${quote(displayed)}`;
    })
    .join('\n');
}
