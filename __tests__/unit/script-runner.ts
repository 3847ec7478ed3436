import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { ScriptContext } from '../../src/scripts.js';

/** The run tag of every script these tests render and run. */
export const TAG = 'tagflip-0123456789abcdef01234567';

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

/** Feed a script to `sh -s`, as RemoteSession does (stdin is the script, nothing else). */
export function runSh(text: string, env?: NodeJS.ProcessEnv): ShRun {
  const result = spawnSync('/bin/sh', ['-s'], { input: text, encoding: 'utf8', timeout: 60_000, ...(env ? { env } : {}) });
  const lines = result.stdout.split('\n').slice(0, -1);
  return {
    code: result.status,
    texts: lines.filter((line) => line.startsWith(`${TAG} `)).map((line) => line.slice(TAG.length + 1)),
    output: lines.filter((line) => !line.startsWith(`${TAG} `)),
    stderr: result.stderr,
  };
}
