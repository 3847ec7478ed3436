/** A bad input: refused before any connection is made. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly problem: string,
    expected: string,
  ) {
    super(`${input}: ${problem}; expected ${expected}`);
    this.name = 'InputError';
  }
}

/** A failure on a host, in a phase, with what the user can do about it. */
export class DeployError extends Error {
  constructor(
    readonly host: string,
    readonly phase: string,
    readonly problem: string,
    readonly remedy: string,
    readonly exitCode: number | null = null,
  ) {
    super(`${host}: ${phase} failed: ${problem}${remedy ? `. ${remedy}` : ''}`);
    this.name = 'DeployError';
  }
}

/**
 * A healthy host that was held back at the barrier because another host of the
 * step failed: nothing went wrong here, so it names neither a phase nor a remedy.
 */
export class NotFlippedError extends DeployError {
  constructor(host: string, failedHosts: readonly string[], detail = '') {
    const others = `${failedHosts.length > 1 ? 'other hosts' : 'another host'} (${failedHosts.join(', ')})`;
    super(host, 'barrier', `not flipped because ${others} failed`, '');
    this.message = `${host}: not flipped because ${others} failed; nothing changed here${detail ? ` ${detail}` : ''}`;
    this.name = 'NotFlippedError';
  }
}
