/**
 * The copy an upload's re-deploy starts with the facts
 * (src/remote/host/precopy.sh), sourced from the file and run by a real sh: it holds its lock while it copies, and
 * tf_precopy_stop ends one still running, whole process group and all, at once;
 * a file changed while it was copied makes the copy fail. (Taken by the build
 * and trimmed to the plan: integration/upload.test.ts, upload-evidence.test.ts.)
 */
import { afterAll, beforeEach, expect, test } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { hostFile } from '../support/host-files.js';

const IDENTITY_FUNCTIONS = hostFile('identity.sh');
const PRECOPY_FUNCTIONS = hostFile('precopy.sh');
const PAST_THE_STAMP = hostFile('past-the-stamp.sh');
const EXACT_BYTES = hostFile('exact-bytes.sh');

const root = mkdtempSync(join(tmpdir(), 'tagflip-precopy-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dir: string;
let marker: string;
beforeEach(() => {
  dir = mkdtempSync(join(root, 'case-'));
  mkdirSync(join(dir, 'site/.tagflip'), { recursive: true });
  mkdirSync(join(dir, 'site/releases/v1/sub'), { recursive: true });
  writeFileSync(join(dir, 'site/releases/v1/a.txt'), 'a\n');
  writeFileSync(join(dir, 'site/releases/v1/sub/b.txt'), 'b\n');
  mkdirSync(join(dir, 'run'));
  writeFileSync(join(dir, 'run/untouched'), './a.txt\0./sub/b.txt\0');
  // Their identities, as the facts verified them.
  execFileSync('sh', ['-c', `${IDENTITY_FUNCTIONS}\ncd "$1" && tf_identity_owner && tf_identities . | LC_ALL=C sort -z > "$2"`, 'sh', join(dir, 'site/releases/v1'), join(dir, 'run/verified')]);
  marker = `tagflip-precopy-test-${process.pid}-${Date.now()}`;
});

/** Run `body` after the functions, in releases/v1, as the facts would; `cp` may be replaced by `slowCp`. */
function run(body: string, slowCp = false): { status: number | null; stdout: string; stderr: string; ms: number } {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  if (slowCp) {
    writeFileSync(join(bin, 'cp'), `#!/bin/sh\n: > '${dir}/started'\nexec sh -c 'sleep 30; : ${marker}'\n`);
    chmodSync(join(bin, 'cp'), 0o755);
  }
  const script = [
    `tf_deploy_path='${dir}/site'`,
    'tf_session_pid=4242',
    `tf_run_dir='${dir}/run'`,
    'tf_command_timeout=60',
    PRECOPY_FUNCTIONS,
    `cd '${dir}/site/releases/v1' || exit 9`,
    'tf_identity_owner || exit 8',
    body,
  ].join('\n');
  const started = Date.now();
  const result = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started };
}

const waitFor = (path: string) => `i=0; while [ ! -e '${path}' ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; [ -e '${path}' ] || exit 3`;
const PRECOPY = '"$tf_deploy_path/.tagflip/precopy.4242"';

test('a copy still running is stopped with its whole process group, at once, and nothing of it is left', () => {
  const result = run(
    [
      'tf_precopy_start "$tf_run_dir/untouched" "$tf_run_dir/verified" </dev/null >/dev/null 2>&1 || exit 2',
      waitFor(`${dir}/started`),
      // Its lock is held while it copies: the build waits on it.
      `if flock -n 7 7<${PRECOPY}.lock; then exit 4; fi`,
      'tf_precopy_stop',
      'echo ".tagflip: $(ls -A "$tf_deploy_path/.tagflip")"',
      'echo "run: $(ls -A "$tf_run_dir")"',
    ].join('\n'),
    true,
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout).toBe('.tagflip: \nrun: untouched\nverified\n');
  expect(result.ms).toBeLessThan(10_000);
  expect(spawnSync('pgrep', ['-f', marker]).status).toBe(1);
});

test('a finished copy holds every listed file, says ok and frees its lock; stopped, it is only removed', () => {
  const result = run(
    [
      'tf_precopy_start "$tf_run_dir/untouched" "$tf_run_dir/verified" </dev/null >/dev/null 2>&1 || exit 2',
      // Waiting on the lock is waiting for the copy.
      `flock 7 7<${PRECOPY}.lock`,
      `[ -e ${PRECOPY}.ok ] || exit 5`,
      `cat ${PRECOPY}/a.txt ${PRECOPY}/sub/b.txt`,
      'tf_precopy_stop',
      'ls -A "$tf_deploy_path/.tagflip"',
    ].join('\n'),
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout).toBe('a\nb\n');
  // The release it copied from is as it was.
  expect(readFileSync(join(dir, 'site/releases/v1/sub/b.txt'), 'utf8')).toBe('b\n');
});

test("a copy left by a session that did not end (the host went down) is removed by the next one's start", () => {
  mkdirSync(join(dir, 'site/.tagflip/precopy.77/sub'), { recursive: true });
  writeFileSync(join(dir, 'site/.tagflip/precopy.77/sub/a.txt'), 'a\n');
  writeFileSync(join(dir, 'site/.tagflip/precopy.77.lock'), '');
  const result = run(['tf_precopy_start "$tf_run_dir/untouched" "$tf_run_dir/verified" </dev/null >/dev/null 2>&1 || exit 2', `flock 7 7<${PRECOPY}.lock`, 'ls -A "$tf_deploy_path/.tagflip"'].join('\n'));
  expect(result.status).toBe(0);
  expect(result.stdout).toBe('precopy.4242\nprecopy.4242.lock\nprecopy.4242.ok\n');
});

test('without a copy started, stopping does nothing and starts no process', () => {
  const result = run('tf_precopy_stop && echo fine');
  expect(result.status).toBe(0);
  expect(result.stdout).toBe('fine\n');
});

test.each([
  ['rewritten, same size', `printf 'A\\n' > a.txt`],
  ['replaced by another file', `printf 'a\\n' > a.new && mv a.new a.txt`],
  ['chmod-ed', 'chmod 600 a.txt'],
])('a file %s after the facts verified it: the copy is not taken, and says why', (_what, change) => {
  // After the clock moved past the identities (the upload step waits for that).
  const result = run(['sleep 0.05', change, 'tf_precopy_start "$tf_run_dir/untouched" "$tf_run_dir/verified" </dev/null >/dev/null 2>&1 || exit 2', `flock 7 7<${PRECOPY}.lock`, `[ ! -e ${PRECOPY}.ok ] || exit 5`, `cat ${PRECOPY}.failed`].join('\n'));
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout).toBe('changed\n');
});

test('past the stamp: a file written right after the wait is newer than the stamp to find -cnewer, every time, without a process', () => {
  const script = [
    `cd '${dir}' || exit 9`,
    PAST_THE_STAMP,
    'i=0',
    'while [ $i -lt 40 ]; do',
    '  i=$((i + 1))',
    '  rm -f stamp probe written',
    '  : > stamp',
    '  tf_stamp=stamp',
    '  tf_probe=probe',
    '  tf_past_the_stamp || echo "round $i: the clock did not move"',
    '  : > written',
    '  [ -n "$(find written -cnewer stamp)" ] || echo "round $i: written in the tick of the stamp"',
    'done',
  ].join('\n');
  const bin = join(dir, 'nosleep');
  mkdirSync(bin);
  // A sleep that says so: the wait is builtins only on this shell.
  writeFileSync(join(bin, 'sleep'), '#!/bin/sh\necho "slept" >&2\nexit 0\n');
  chmodSync(join(bin, 'sleep'), 0o755);
  const result = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  expect(result.stderr).toBe('');
  expect(result.stdout).toBe('');
  expect(result.status).toBe(0);
});

test('past the stamp: where the clock does not move past it (here: a stamp an hour ahead), it gives up after about 3 s and says so', () => {
  const script = [`cd '${dir}' || exit 9`, PAST_THE_STAMP, 'touch -d "+1 hour" stamp', 'tf_stamp=stamp', 'tf_probe=probe', 'tf_past_the_stamp && echo moved || echo gave up'].join('\n');
  const started = Date.now();
  const result = spawnSync('sh', ['-c', script], { encoding: 'utf8', timeout: 30_000 });
  expect(result.stdout).toBe('gave up\n');
  expect(Date.now() - started).toBeGreaterThan(2_000);
});

test.each([
  ['dd, which counts bytes', ''],
  ['head -c, where dd cannot', 'dd() { return 1; }'],
])('the upload is read with %s: exactly the bytes asked for, the rest left for the shell', (_what, without) => {
  const script = [without, EXACT_BYTES, 'tf_exactly 300000 | wc -c', 'tf_exactly 5', 'echo', 'cat'].join('\n');
  // Written in pieces, as a connection delivers it.
  const input = `${'x'.repeat(300_000)}abcdefgh`;
  const result = spawnSync('sh', ['-c', script], { input, encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.stdout).toBe('300000\nabcde\nfgh');
});
