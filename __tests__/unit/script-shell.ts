/**
 * What the tests that run the open, prune and flip scripts for real in /bin/sh
 * share: fresh deploy-paths under one scratch directory (removed after the
 * importing file's tests), and runShell, which reads stdout back the way
 * RemoteSession does (lines starting with the run tag are control lines) and
 * stderr separately: the open script's watchdog pings there.
 */
import { afterAll } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LockHolder, Manifest } from '../../src/core/manifest.js';
import { type OpenOptions, type ScriptContext, renderOpenScript } from '../../src/remote/scripts.js';
import type { ControlLine } from '../../src/remote/session.js';
import { control } from './host-facts.js';
import { readLines, scriptContext } from './script-runner.js';

/** A first deploy of v2 at `path`. */
export const context = (path: string, changes: Partial<ScriptContext> = {}) => scriptContext(path, { previousRelease: '', ...changes });

export const HOLDER: LockHolder = {
  command: 'deploy',
  release: 'v2',
  actor: 'octocat',
  runUrl: 'https://github.com/o/r/actions/runs/42',
  host: 'deploy@web1',
  since: '',
};

export const root = mkdtempSync(join(tmpdir(), 'tagflip-scripts-'));
/** $TMPDIR of the shells: the watchdog's run directory lands here, not in /tmp (see the CLOSE_WORDS test in open-script-session.test.ts). */
export const shellTemp = join(root, 'tmp');
mkdirSync(shellTemp);
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A fresh deploy-path (created unless `create` is false). */
export function deployPath(create = true): string {
  count += 1;
  const path = join(root, `site-${count}`);
  if (create) mkdirSync(path);
  return path;
}

export interface ShellRun {
  /** Control lines, in order. */
  lines: ControlLine[];
  /** Their text after the tag, for exact comparisons. */
  texts: string[];
  /** Lines without the tag. */
  output: string[];
  /** stderr lines, without the watchdog's pings. */
  errors: string[];
  /** How many `<tag> ping` lines came on stderr. */
  pings: number;
  code: number | null;
  seconds: number;
}


/**
 * Pipe `text` into `sh -s` and read what it prints. Done when the shell has
 * exited and its stdout is drained: stderr is not waited for, since a watchdog
 * left running may hold it; our end of it is closed then. With `stderr:
 * 'ignore'` the shell's stderr is /dev/null, where every ping succeeds.
 */
export function runShell(text: string, env: NodeJS.ProcessEnv = {}, { stderr = 'pipe' }: { stderr?: 'pipe' | 'ignore' } = {}): Promise<ShellRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-s'], { env: { ...process.env, TMPDIR: shellTemp, ...env }, stdio: ['pipe', 'pipe', stderr] });
    const [input, out] = [child.stdin!, child.stdout!];
    let stdout = '';
    let errText = '';
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => (errText += chunk));
    child.on('error', reject);
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const drained = new Promise<void>((done) => out.once('close', () => done()));
    void Promise.all([exited, drained]).then(([code]) => {
      child.stderr?.destroy();
      const { texts, output } = readLines(stdout);
      const errors = readLines(errText);
      resolve({
        lines: texts.map(control),
        texts,
        output,
        errors: errors.output,
        pings: errors.texts.filter((text) => text === 'ping').length,
        code,
        seconds: (Date.now() - started) / 1000,
      });
    });
    input.end(text);
  });
}

export function openScript(path: string, lock: OpenOptions['lock'], lockTimeout = 1, changes: Partial<ScriptContext> = {}): string {
  return renderOpenScript(context(path, changes), { lock, lockTimeout, holder: HOLDER }).text;
}

/** Whether another process could take the lock of `path` right now. */
export function lockIsFree(path: string): boolean {
  try {
    execFileSync('flock', ['-n', join(path, '.tagflip/lock'), 'true']);
    return true;
  } catch {
    return false;
  }
}

export function writeManifest(path: string, record: Manifest, pretty = false): void {
  mkdirSync(join(path, '.tagflip/releases'), { recursive: true });
  writeFileSync(join(path, `.tagflip/releases/${record.release}.json`), `${JSON.stringify(record, null, pretty ? 2 : undefined)}\n`);
}
