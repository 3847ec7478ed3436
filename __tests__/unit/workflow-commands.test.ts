import { afterEach, describe, expect, test } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendSummary, getInput, setFailed, setOutput, setSecret, warning } from '../../src/action/workflow-commands.js';
import { openTempDir } from '../support/fixtures.js';
import { captureStdout } from '../support/runner-commands.js';

// The runner's protocol as @actions/core speaks it (and as actions/runner parses it):
// the action must keep producing exactly this after dropping that package.
const stdout = captureStdout();
const saved = { ...process.env };

afterEach(() => {
  process.env = { ...saved };
  process.exitCode = undefined;
});

describe('inputs', () => {
  test('INPUT_<NAME> with spaces as underscores, upper-cased; trimmed unless asked not to', () => {
    process.env['INPUT_PRIVATE-KEY'] = '  key\n';
    process.env.INPUT_SECRET_ENV = ' a b ';
    expect(getInput('private-key')).toBe('key');
    expect(getInput('secret env', { trimWhitespace: false })).toBe(' a b ');
    expect(getInput('not-given')).toBe('');
  });
});

describe('commands on stdout', () => {
  test('data escapes %, CR and LF, so a multi-line secret is masked as one value', () => {
    setSecret('line 1\nline 2\r\n100%');
    expect(stdout.text).toBe('::add-mask::line 1%0Aline 2%0D%0A100%25\n');
  });

  test('setFailed sets exit code 1 and prints an error annotation', () => {
    setFailed('two\nlines');
    warning('careful');
    expect(process.exitCode).toBe(1);
    expect(stdout.text).toBe('::error::two%0Alines\n::warning::careful\n');
  });
});

describe('outputs', () => {
  test('appended to $GITHUB_OUTPUT between a random delimiter, which no value can contain', () => {
    const file = join(openTempDir('tagflip-output-'), 'output');
    writeFileSync(file, 'earlier=1\n');
    process.env.GITHUB_OUTPUT = file;
    setOutput('hosts', '[{"host":"a"}]\nsecond line');
    const text = readFileSync(file, 'utf8');
    const match = /^earlier=1\nhosts<<(ghadelimiter_[0-9a-f-]{36})\n\[\{"host":"a"\}\]\nsecond line\n\1\n$/.exec(text);
    expect(match).not.toBeNull();
    expect(stdout.text).toBe('');
  });

  test('a missing $GITHUB_OUTPUT file is an error, not a silent loss', () => {
    process.env.GITHUB_OUTPUT = join(openTempDir('tagflip-output-'), 'absent');
    expect(() => setOutput('status', 'deployed')).toThrow(/Missing file at path/);
  });

  test('without $GITHUB_OUTPUT: the ::set-output command, its name escaped as a property', () => {
    delete process.env.GITHUB_OUTPUT;
    setOutput('a:b,c', 'x\ny');
    expect(stdout.text).toBe('\n::set-output name=a%3Ab%2Cc::x%0Ay\n');
  });
});

describe('job summary', () => {
  test('appended to $GITHUB_STEP_SUMMARY as given', async () => {
    const file = join(openTempDir('tagflip-summary-'), 'summary');
    writeFileSync(file, '# before\n');
    process.env.GITHUB_STEP_SUMMARY = file;
    await appendSummary('| a | b |\n');
    expect(readFileSync(file, 'utf8')).toBe('# before\n| a | b |\n');
  });

  test('no $GITHUB_STEP_SUMMARY, or a file that cannot be stdout.text: an error naming it', async () => {
    delete process.env.GITHUB_STEP_SUMMARY;
    await expect(appendSummary('x')).rejects.toThrow(/GITHUB_STEP_SUMMARY/);
    process.env.GITHUB_STEP_SUMMARY = join(openTempDir('tagflip-summary-'), 'absent');
    await expect(appendSummary('x')).rejects.toThrow(/Unable to access summary file/);
  });
});
