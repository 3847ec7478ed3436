/**
 * Runs every call of the runner protocol that tagflip makes with hostile values
 * through one implementation, and records what each call wrote: stdout, the
 * GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, the exit code it set, and what
 * it threw. Run once with @actions/core and once with src/action/workflow-commands.ts
 * (each in a child process of its own: both write to process.stdout and set
 * process.exitCode, and @actions/core keeps the summary file's path once read).
 *
 *   node workflow-commands-driver.mjs <module to import> <directory for the files and result.json> [<the one call to run>]
 *
 * Without the last argument it runs every call but those that must run alone.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const [moduleName, dir, only] = process.argv.slice(2);
const lib = await import(moduleName);
// @actions/core appends to the summary through summary.addRaw(…).write(); tagflip's module through
// appendSummary, one write each. (core's buffer keeps what a failed write did not write: emptied first.)
const appendSummary = lib.summary ? (markdown) => lib.summary.emptyBuffer().addRaw(markdown).write() : (markdown) => lib.appendSummary(markdown);

const outputFile = join(dir, 'output');
const summaryFile = join(dir, 'summary');
const noFile = join(dir, 'missing', 'output');
const aDirectory = join(dir, 'a-directory');
writeFileSync(outputFile, '');
writeFileSync(summaryFile, '');
mkdirSync(aDirectory);

// A mebibyte with every character that is escaped or ends a line in it.
const unit = 'line % : , \r\n::error::x ghadelimiter_y\n';
const mebibyte = unit.repeat(Math.ceil(2 ** 20 / unit.length)).slice(0, 2 ** 20);

const VALUES = {
  'multi-line': 'one\ntwo\r\nthree\n',
  'delimiter-like': 'ghadelimiter_00000000-0000-4000-8000-000000000000\nout<<ghadelimiter_x\nghadelimiter_',
  percent: '100% %25 %0A %0D %',
  'carriage return': 'a\rb\r',
  colons: '::error::x ::set-output name=a::b ::',
  'comma and colon': 'a,b:c=d',
  empty: '',
  spaces: '  ::warning::indented  ',
  unicode: 'é € 😀 \u2028 \u0000',
  mebibyte,
  number: 42,
  'negative float': -3.5,
  zero: 0,
  NaN: NaN,
  true: true,
  false: false,
  null: null,
  undefined: undefined,
  object: { a: 1, b: 'x\ny', c: [1, null, 'z%'] },
  array: [1, 'two', { three: 3 }],
  'Error with a newline': new Error('first line\nsecond line'),
  'TypeError': new TypeError('bad: 50%'),
  'String object': new String('boxed\nvalue'),
};

const CALLS = {
  setOutput: (value) => lib.setOutput('out', value),
  'setOutput (no GITHUB_OUTPUT)': (value) => withEnv('GITHUB_OUTPUT', undefined, () => lib.setOutput('out', value)),
  'setOutput (GITHUB_OUTPUT missing)': (value) => withEnv('GITHUB_OUTPUT', noFile, () => lib.setOutput('out', value)),
  'setOutput (GITHUB_OUTPUT a directory)': (value) => withEnv('GITHUB_OUTPUT', aDirectory, () => lib.setOutput('out', value)),
  'setOutput (as the name)': (value) => (typeof value === 'string' ? lib.setOutput(value, 'x') : undefined),
  setFailed: (value) => lib.setFailed(value),
  info: (value) => lib.info(value),
  warning: (value) => lib.warning(value),
  error: (value) => lib.error(value),
  debug: (value) => lib.debug(value),
  'startGroup, endGroup': (value) => {
    lib.startGroup(value);
    lib.endGroup();
  },
  setSecret: (value) => lib.setSecret(value),
  // @actions/core reads the summary's path once, when a write finds it usable, and keeps it:
  // the calls that fail to find it go first; a directory (usable to access(2)) has a process of its own.
  'summary (no GITHUB_STEP_SUMMARY)': (value) => withEnv('GITHUB_STEP_SUMMARY', undefined, () => appendSummary(value)),
  summary: (value) => appendSummary(value),
  'summary (GITHUB_STEP_SUMMARY a directory)': (value) => withEnv('GITHUB_STEP_SUMMARY', aDirectory, () => appendSummary(value)),
};
const ALONE = ['summary (GITHUB_STEP_SUMMARY a directory)'];

function withEnv(name, value, work) {
  const before = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return work();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

let stdout = '';
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk) => {
  stdout += chunk.toString();
  return true;
};
process.env.GITHUB_OUTPUT = outputFile;
process.env.GITHUB_STEP_SUMMARY = summaryFile;
const records = [];
for (const [callName, call] of Object.entries(CALLS)) {
  if (only ? callName !== only : ALONE.includes(callName)) continue;
  for (const [valueName, value] of Object.entries(VALUES)) {
    stdout = '';
    process.exitCode = undefined;
    let threw = '';
    try {
      await call(value);
    } catch (error) {
      threw = `${error.constructor.name}: ${error.message}`;
    }
    records.push({
      call: `${callName}(${valueName})`,
      stdout,
      output: readFileSync(outputFile, 'utf8'),
      summary: readFileSync(summaryFile, 'utf8'),
      exitCode: process.exitCode ?? null,
      threw,
    });
    writeFileSync(outputFile, '');
    writeFileSync(summaryFile, '');
  }
}
process.exitCode = 0;
process.stdout.write = write;
writeFileSync(join(dir, 'result.json'), JSON.stringify(records));
