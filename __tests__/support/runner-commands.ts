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

export interface RunnerLog {
  /** The log groups in order, each with the lines shown in it (plain lines, and annotations as `::error::…`). */
  groups: { name: string; lines: string[] }[];
  /** Lines shown outside every group. */
  outside: string[];
  /** What would fold wrong in the Actions log: an empty group, a group opened inside another, an end with none open, a group left open. */
  problems: string[];
  /** The error annotations. */
  errors: string[];
}

/**
 * The log as the Actions runner shows it: plain lines and annotations, in their
 * groups. Debug lines are left out (shown only with step debug logging), and so
 * are commands that show nothing (masks, outputs, stop-commands).
 */
export function runnerLog(stdout: string): RunnerLog {
  const log: RunnerLog = { groups: [], outside: [], problems: [], errors: [] };
  let open: { name: string; lines: string[] } | null = null;
  let stopToken = '';
  const show = (line: string) => (open ? open.lines.push(line) : log.outside.push(line));
  const lines = stdout.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    const command = parse(line);
    if (stopToken) {
      if (command?.name.toLowerCase() === stopToken.toLowerCase()) stopToken = '';
      else show(line);
      continue;
    }
    if (!command) {
      show(line);
    } else if (command.name === 'stop-commands') {
      stopToken = command.data;
    } else if (command.name === 'group') {
      if (open) log.problems.push(`group "${command.data}" opened inside group "${open.name}"`);
      open = { name: command.data, lines: [] };
      log.groups.push(open);
    } else if (command.name === 'endgroup') {
      if (!open) log.problems.push('an endgroup with no group open');
      else if (open.lines.length === 0) log.problems.push(`group "${open.name}" is empty`);
      open = null;
    } else if (['error', 'warning', 'notice'].includes(command.name)) {
      if (command.name === 'error') log.errors.push(command.data);
      show(line.trimStart());
    }
  }
  if (open) log.problems.push(`group "${open.name}" is never closed`);
  return log;
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
