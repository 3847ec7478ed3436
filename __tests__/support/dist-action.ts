/**
 * The bundled action, run the way the runner runs it: `node dist/index.js` with
 * INPUT_<NAME> variables (upper case, hyphens kept) and GITHUB_OUTPUT /
 * GITHUB_STEP_SUMMARY files. dist/ is built by `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTempDir } from './fixtures.js';

export interface DistRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The outputs as the runner reads them from GITHUB_OUTPUT ({} when it is not a readable file). */
  outputs: Record<string, string>;
  /** GITHUB_STEP_SUMMARY's text ('' when it is not a readable file). */
  summary: string;
}

export interface DistRunOptions {
  /** More environment (GITHUB_REF_NAME, RUNNER_DEBUG, …). */
  env?: Record<string, string>;
  /** GITHUB_OUTPUT / GITHUB_STEP_SUMMARY as given, instead of fresh empty files. */
  outputFile?: string;
  summaryFile?: string;
  /** Run as this user, as a runner does (it is not root). */
  uid?: number;
  gid?: number;
  /** The most stdout and stderr may hold, in bytes (spawnSync's 1 MiB unless given). */
  maxBuffer?: number;
}


/** What a runner sets for every step, as tagflip reads it (the actor and the run's address for the records). */
export const RUNNER_ENV = { GITHUB_ACTOR: 'octocat', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/site', GITHUB_RUN_ID: '4242' };
/** Parse the runner's output file: `name<<DELIMITER\nvalue\nDELIMITER`. */
export function readOutputs(file: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const text = readFileSync(file, 'utf8');
  const pattern = /^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm;
  for (const match of text.matchAll(pattern)) outputs[match[1]] = match[3];
  return outputs;
}

const readable = (file: string) => {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
};

export function runDistAction(inputs: Record<string, string>, options: DistRunOptions = {}): DistRun {
  const files = openTempDir('tagflip-runner-');
  const outputFile = options.outputFile ?? join(files, 'output');
  const summaryFile = options.summaryFile ?? join(files, 'summary');
  if (!options.outputFile) writeFileSync(outputFile, '');
  if (!options.summaryFile) writeFileSync(summaryFile, '');
  const inputEnv = Object.fromEntries(Object.entries(inputs).map(([name, value]) => [`INPUT_${name.toUpperCase()}`, value]));
  const run = spawnSync(process.execPath, ['dist/index.js'], {
    env: {
      PATH: process.env.PATH,
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      ...RUNNER_ENV,
      ...inputEnv,
      ...options.env,
    },
    encoding: 'utf8',
    timeout: 60_000,
    uid: options.uid,
    gid: options.gid,
    maxBuffer: options.maxBuffer,
  });
  return {
    code: run.status,
    stdout: run.stdout,
    stderr: run.stderr,
    outputs: readable(outputFile) ? readOutputs(outputFile) : {},
    summary: readable(summaryFile) ? readFileSync(summaryFile, 'utf8') : '',
  };
}
