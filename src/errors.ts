/** A bad input: refused before any connection is made. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    problem: string,
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
