import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { openTempDir } from '../support/fixtures.js';
import { transpileSources } from '../support/transpiled.js';

// src/action/workflow-commands.ts stands in for @actions/core (which the action
// does not load: it costs ~50 ms of start-up). Both get the same hostile values
// through every call tagflip makes, each in a child process of its own, and
// must write the same bytes to stdout, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY,
// set the same exit code and throw the same errors.

interface CallRecord {
  call: string;
  stdout: string;
  output: string;
  summary: string;
  exitCode: number | null;
  threw: string;
}

const DRIVER = resolve('__tests__/support/workflow-commands-driver.mjs');
let ours = '';

beforeAll(() => {
  ours = join(transpileSources(), 'src/action/workflow-commands.js');
}, 60_000);

/** Every call's record, from one implementation; the delimiters' random UUIDs as UUID. */
function recordsOf(module: string, only = ''): CallRecord[] {
  const dir = openTempDir('tagflip-commands-');
  mkdirSync(dir, { recursive: true });
  const run = spawnSync(process.execPath, [DRIVER, module, dir, ...(only ? [only] : [])], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 60_000 });
  if (run.status !== 0) throw new Error(`the driver failed with ${module}: ${run.stderr}`);
  const text = readFileSync(join(dir, 'result.json'), 'utf8').split(dir).join('<dir>');
  return JSON.parse(text.replace(/ghadelimiter_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'ghadelimiter_UUID'));
}

/** Where two records part, briefly (a mebibyte value would make a diff unreadable). */
function differences(theirs: CallRecord[], mine: CallRecord[]): string[] {
  expect(mine.map((record) => record.call)).toEqual(theirs.map((record) => record.call));
  return theirs.flatMap((their, i) =>
    (['stdout', 'output', 'summary', 'exitCode', 'threw'] as const).flatMap((field) => {
      const [a, b] = [String(their[field]), String(mine[i][field])];
      if (a === b) return [];
      let at = 0;
      while (a[at] === b[at]) at++;
      return [`${their.call} ${field}: from byte ${at}, @actions/core ${JSON.stringify(a.slice(at, at + 60))}, tagflip ${JSON.stringify(b.slice(at, at + 60))}`];
    }),
  );
}

describe('workflow-commands.ts writes what @actions/core writes', () => {
  test('every call, every hostile value: the same stdout, files, exit code and errors', () => {
    const theirs = recordsOf('@actions/core');
    const mine = recordsOf(ours);
    expect(differences(theirs, mine)).toEqual([]);
    // The comparison covers what it claims to: the values reached every channel.
    expect(theirs.length).toBeGreaterThan(300);
    const byCall = (name: string) => theirs.find((record) => record.call === name)!;
    expect(byCall('setOutput(number)').output).toBe('out<<ghadelimiter_UUID\n42\nghadelimiter_UUID\n');
    expect(byCall('setOutput(undefined)').output).toBe('out<<ghadelimiter_UUID\n\nghadelimiter_UUID\n');
    expect(byCall('setOutput(mebibyte)').output.length).toBeGreaterThan(2 ** 20);
    expect(byCall('setFailed(Error with a newline)')).toMatchObject({ stdout: '::error::Error: first line%0Asecond line\n', exitCode: 1 });
    expect(byCall('setOutput (GITHUB_OUTPUT missing)(empty)').threw).toBe('Error: Missing file at path: <dir>/missing/output');
    expect(byCall('setOutput (GITHUB_OUTPUT a directory)(empty)').threw).toMatch(/^Error: EISDIR/);
    expect(byCall('summary(object)').summary).toBe('[object Object]');
    expect(byCall('summary (no GITHUB_STEP_SUMMARY)(empty)').threw).toMatch(/Unable to find environment variable for \$GITHUB_STEP_SUMMARY/);
  });

  test('a summary file that is a directory: the same error for every value', () => {
    const call = 'summary (GITHUB_STEP_SUMMARY a directory)';
    const theirs = recordsOf('@actions/core', call);
    expect(theirs.length).toBeGreaterThan(20);
    expect(theirs.every((record) => record.threw.startsWith('Error: EISDIR'))).toBe(true);
    expect(differences(theirs, recordsOf(ours, call))).toEqual([]);
  });
});
