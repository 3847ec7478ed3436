import { expect } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { ScriptContext } from '../../src/remote/scripts.js';

/** The run tag of every script these tests render and run. */
export const TAG = 'tagflip-0123456789abcdef01234567';

/** A time as the scripts write it (`date -u +%Y-%m-%dT%H:%M:%SZ`). */
export const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

/** A ScriptContext for a deploy of v2 over v1 at `path`, with no source, build or env. */
export function scriptContext(path: string, changes: Partial<ScriptContext> = {}): ScriptContext {
  return {
    tag: TAG,
    host: 'deploy@web1',
    deployPath: path,
    release: 'v2',
    previousRelease: 'v1',
    repository: '',
    ref: '',
    build: '',
    sharedDirs: [],
    sharedFiles: [],
    migrate: '',
    dataPath: join(path, 'data'),
    commandTimeout: 60,
    env: [],
    actor: 'octocat',
    runUrl: 'https://github.com/o/r/actions/runs/42',
    ...changes,
  };
}

export interface ShRun {
  code: number | null;
  /** Control lines, after the tag. */
  texts: string[];
  /** Other stdout lines (the hooks' output). */
  output: string[];
  stderr: string;
}

/** A rendered script's text as it is displayed: the run tag authenticates control lines, so it shows as ***. */
export const tagHidden = (text: string): string => text.replace(`\ntf_tag='${TAG}'\n`, "\ntf_tag='***'\n").replace(new RegExp(`^tf_tag='${TAG}'\n`), "tf_tag='***'\n");

/**
 * A script's stdout read as RemoteSession reads it: control lines (after the
 * tag) apart from output, dropping the blank line that a control line's leading
 * newline makes after terminated output.
 */
export function readLines(stdout: string): { texts: string[]; output: string[] } {
  const lines = stdout.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const isControl = (line: string | undefined) => line !== undefined && line.startsWith(`${TAG} `);
  const kept = lines.filter((line, index) => line !== '' || !isControl(lines[index + 1]));
  return {
    texts: kept.filter((line) => isControl(line)).map((line) => line.slice(TAG.length + 1)),
    output: kept.filter((line) => !isControl(line)),
  };
}

/** Feed a script to `sh -s`, as RemoteSession does (stdin is the script, nothing else). */
export function runSh(text: string, env?: NodeJS.ProcessEnv): ShRun {
  const result = spawnSync('/bin/sh', ['-s'], { input: text, encoding: 'utf8', timeout: 60_000, ...(env ? { env } : {}) });
  return { code: result.status, ...readLines(result.stdout), stderr: result.stderr };
}

/**
 * runSh without blocking: for scripts that run alongside the test (hooks that
 * outlive them, another user planting links), `spawned` runs once the shell
 * exists, before it reads anything. `seconds` is how long it ran.
 */
export function runShAsync(text: string, { env, spawned }: { env?: NodeJS.ProcessEnv; spawned?: (pid: number) => void } = {}): Promise<ShRun & { seconds: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, ...readLines(stdout), stderr, seconds: (Date.now() - started) / 1000 }));
    spawned?.(child.pid!);
    child.stdin.end(text);
  });
}

/**
 * Header (the assignments) and the rest of a rendered script. The rest starts
 * with the prelude, or (open script) with the watchdog.
 */
export function parts(text: string): { header: string; rest: string } {
  const starts = ['\nset -u\numask 022\n', '\ntf_run_dir=$(mktemp'].map((marker) => text.indexOf(marker)).filter((index) => index > 0);
  expect(starts.length).toBeGreaterThan(0);
  const start = Math.min(...starts);
  return { header: text.slice(0, start), rest: text.slice(start + 1) };
}

/** Run the header in a real sh and read back the named variables. */
export function headerValues(text: string, names: readonly string[]): Record<string, string> {
  const { header } = parts(text);
  const reads = names.map((name) => `printf '%s\\0' "\${${name}-<unset>}"`).join('\n');
  const out = execFileSync('/bin/sh', ['-c', `set -u\n${header}\n${reads}`]).toString('utf8').split('\0');
  return Object.fromEntries(names.map((name, index) => [name, out[index]]));
}

/**
 * The assignments of a header, in order. A quoted value may span lines (tf_build,
 * tf_user_env), so the header is read as a sequence of quoted words, not line by line.
 */
export function assignments(header: string): { exported: boolean; name: string }[] {
  const pattern = /(export )?([A-Za-z_][A-Za-z0-9_]*)='(?:[^']|'\\'')*'(?:\n|$)/gy;
  const list = [...header.matchAll(pattern)];
  expect(list.map((match) => match[0]).join('')).toBe(header);
  return list.map((match) => ({ exported: match[1] !== undefined, name: match[2] }));
}

export function syntaxCheck(shell: string, text: string): void {
  execFileSync(shell, ['-n'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] });
}
