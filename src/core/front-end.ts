/**
 * Which front end a person is talking to. Settings and plans are shared, but
 * their advice is not: the action's user writes `with:` inputs and
 * `${{ github.sha }}`, the CLI's user writes flags and `$(git …)` in a shell.
 * A message that tells someone what to type asks this module how to say it.
 */
export type FrontEnd = 'action' | 'cli';

/** An input as the user gives it: `force-build` in a workflow, `--force-build` on a command line. */
export function spellInput(frontEnd: FrontEnd, input: string): string {
  return frontEnd === 'cli' ? `--${input}` : input;
}

/** A release name that is new with every commit, as the user would write it. */
export function perCommitRelease(frontEnd: FrontEnd, release: string): string {
  return frontEnd === 'cli' ? `--release ${release}-$(git rev-parse --short HEAD)` : `release: ${release}-\${{ github.sha }}`;
}
