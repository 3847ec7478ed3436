/**
 * What the Actions runner makes of a step's stdout, as far as workflow commands
 * go (actions/runner ActionCommandManager): a line that, after leading spaces,
 * reads `::name props::data` or `##[name props]data` is a command; after
 * `::stop-commands::TOKEN` no command is obeyed until one named TOKEN.
 */
import { afterEach, beforeEach, jest } from '@jest/globals';

export interface RunnerView {
  /** The command lines the runner obeyed, in order (trimmed). */
  obeyed: string[];
  /** The token of a stop-commands block still open at the end ('' when none). */
  openBlock: string;
}

function parse(line: string): { name: string; data: string } | null {
  const text = line.trimStart();
  const v2 = /^::([^:]*?)::(.*)$/.exec(text);
  const v1 = /^##\[([^\]]*)\](.*)$/.exec(text);
  const found = v2 ?? v1;
  if (!found) return null;
  const name = found[1].split(' ')[0];
  return name ? { name, data: found[2] } : null;
}

export function runnerView(stdout: string): RunnerView {
  const obeyed: string[] = [];
  let stopToken = '';
  for (const line of stdout.split(/\r?\n/)) {
    const command = parse(line);
    if (!command) continue;
    if (stopToken) {
      if (command.name.toLowerCase() === stopToken.toLowerCase()) stopToken = '';
      continue;
    }
    if (command.name === 'stop-commands') stopToken = command.data;
    obeyed.push(line.trimStart());
  }
  return { obeyed, openBlock: stopToken };
}

/**
 * What each test of the calling file writes to process.stdout, where the runner
 * reads workflow commands; `stdout.text` is reset before every test.
 */
export function captureStdout(): { text: string } {
  const stdout = { text: '' };
  beforeEach(() => {
    stdout.text = '';
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout.text += chunk.toString();
      return true;
    });
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });
  return stdout;
}
