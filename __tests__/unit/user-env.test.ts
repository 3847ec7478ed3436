/**
 * The user's env reaches the hooks (build, migrate, activate, verify) and only
 * them: the header holds one tf_user_env assignment, and tf_hook hands it to
 * `env` in a subshell that splits it on newlines without globbing. The scripts
 * run for real in /bin/sh against temporary deploy-paths without a repository;
 * each hook dumps its whole environment with `env -0` for the test to read back
 * byte for byte.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ScriptContext, renderBuildScript, renderHookScript } from '../../src/remote/scripts.js';
import { parseEnv } from '../../src/core/hook-env.js';
import { manifest } from './host-facts.js';
import { runSh, scriptContext as context } from './script-runner.js';

/** Feed a script to `sh -s` with BASE_ENV only. */
const run = (text: string) => runSh(text, BASE_ENV);

const READY = /^ready \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ $/;

const root = mkdtempSync(join(tmpdir(), 'tagflip-user-env-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The whole environment the scripts start with: nothing else leaks in from the test runner. */
const BASE_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, TMPDIR: root };

/** What every hook gets from tagflip. */
const TAGFLIP_NAMES = [
  'TAGFLIP_RELEASE',
  'TAGFLIP_PREVIOUS_RELEASE',
  'TAGFLIP_RELEASE_PATH',
  'TAGFLIP_DEPLOY_PATH',
  'TAGFLIP_SHARED_PATH',
  'TAGFLIP_DATA_PATH',
  'TAGFLIP_HOST',
];

/** Variables sh itself may put in its children's environment. */
const SHELL_NAMES = new Set(['PWD', 'OLDPWD', 'SHLVL', '_']);

let count = 0;
/** A fresh deploy-path: empty, or with releases/<each> directories. */
function site(releases: string[] = []): string {
  count += 1;
  const path = join(root, `site-${count}`);
  mkdirSync(path);
  for (const release of releases) mkdirSync(join(path, 'releases', release), { recursive: true });
  return path;
}




const buildScript = (ctx: ScriptContext) => renderBuildScript(ctx, manifest(ctx.release, 'building', ctx.previousRelease)).text;

/** A hook command that writes its environment, NUL separated, to $TAGFLIP_DEPLOY_PATH/env.<name>. */
const dumpEnv = (name: string) => `env -0 > "$TAGFLIP_DEPLOY_PATH/env.${name}"`;

/** Read a dump back: name -> value, as raw bytes. */
function readDump(path: string, name: string): Map<string, Buffer> {
  const bytes = readFileSync(join(path, `env.${name}`));
  const entries = new Map<string, Buffer>();
  let start = 0;
  while (start < bytes.length) {
    const end = bytes.indexOf(0, start);
    expect(end).toBeGreaterThan(start);
    const entry = bytes.subarray(start, end);
    const eq = entry.indexOf('=');
    expect(eq).toBeGreaterThan(0);
    entries.set(entry.subarray(0, eq).toString('utf8'), Buffer.from(entry.subarray(eq + 1)));
    start = end + 1;
  }
  return entries;
}

/** The names in a dump, without the ones sh adds on its own. */
const namesOf = (dump: Map<string, Buffer>) => [...dump.keys()].filter((name) => !SHELL_NAMES.has(name)).sort();

describe('user env PATH=… changes the hooks’ PATH, not the commands tagflip runs itself', () => {
  test('build with env PATH=/nonexistent: the build script still prepares, builds and says ready; the build sees PATH=/nonexistent', () => {
    const path = site();
    const ctx = context(path, { env: parseEnv('PATH=/nonexistent'), build: 'printf %s "$PATH" > path.txt' });
    const result = run(buildScript(ctx));
    // (stderr is compared too, so a failure shows what sh or env said.)
    expect({ code: result.code, texts: result.texts, stderr: result.stderr }).toEqual({
      code: 0,
      texts: ['step prepare', 'step source', 'step build', expect.stringMatching(READY)],
      stderr: '',
    });
    expect(readFileSync(join(path, 'releases/v2/path.txt'), 'utf8')).toBe('/nonexistent');
  });

  test('activate with env PATH=/nonexistent: the hook runs and sees PATH=/nonexistent', () => {
    const path = site(['v2']);
    const ctx = context(path, { env: parseEnv('PATH=/nonexistent') });
    const result = run(renderHookScript(ctx, 'activate', 'printf %s "$PATH" > path.txt').text);
    expect({ code: result.code, texts: result.texts, stderr: result.stderr }).toEqual({ code: 0, texts: ['step activate'], stderr: '' });
    expect(readFileSync(join(path, 'releases/v2/path.txt'), 'utf8')).toBe('/nonexistent');
  });
});

describe('user env values reach the hooks byte for byte', () => {
  const VALUES: Record<string, string> = {
    SPACES: '  two  spaces, leading and trailing  ',
    QUOTES: `it's "double" and 'single'`,
    SUBST: '$(id) `id` ${HOME} $HOME',
    STAR: '*',
    GLOBS: '.* /* ?',
    EQUALS: '=a=b==',
    PAIRS: 'X=1 Y=2',
    SEMICOLON: 'x; touch pwned',
    BACKSLASH: 'C:\\dir\\n \\t \\',
    TAB: 'a\tb',
    UNICODE: 'grüße €',
    DASH: '-i',
    EMPTY: '',
    lower_case: 'ok',
  };
  /** As the user writes them in the env input. */
  const ENV_INPUT = Object.entries(VALUES)
    .map(([name, value]) => `${name}=${value}`)
    .join('\n');

  function expectValues(dump: Map<string, Buffer>): void {
    for (const [name, value] of Object.entries(VALUES)) {
      expect([name, dump.get(name)]).toEqual([name, Buffer.from(value, 'utf8')]);
    }
    // Exactly these names on top of the environment and TAGFLIP_*: no X or Y, no tf_user_env.
    expect(namesOf(dump)).toEqual([...Object.keys(BASE_ENV), ...TAGFLIP_NAMES, ...Object.keys(VALUES)].sort());
  }

  test('parseEnv keeps every value as written', () => {
    expect(parseEnv(ENV_INPUT)).toEqual(Object.entries(VALUES).map(([name, value]) => ({ name, value })));
  });

  test('build and migrate get every value unchanged; nothing in a value is run', () => {
    const path = site();
    const ctx = context(path, { env: parseEnv(ENV_INPUT), build: dumpEnv('build'), migrate: dumpEnv('migrate') });
    const result = run(buildScript(ctx));
    expect({ code: result.code, texts: result.texts, stderr: result.stderr }).toEqual({
      code: 0,
      texts: ['step prepare', 'step source', 'step build', 'step migrate', expect.stringMatching(/^log no .* yet: migrating an empty data directory$/), expect.stringMatching(READY)],
      stderr: '',
    });
    expectValues(readDump(path, 'build'));
    expectValues(readDump(path, 'migrate'));
    expect(existsSync(join(path, 'releases/v2/pwned'))).toBe(false);
  });

  test.each(['activate', 'verify'] as const)('%s gets every value unchanged, even with files in its directory that * would match', (name) => {
    const path = site(['v2']);
    // Were NAME=value globbed in the release directory, STAR=* would become STAR=STAR=globbed.
    writeFileSync(join(path, 'releases/v2/STAR=globbed'), '');
    const result = run(renderHookScript(context(path, { env: parseEnv(ENV_INPUT) }), name, dumpEnv(name)).text);
    expect({ code: result.code, texts: result.texts, stderr: result.stderr }).toEqual({ code: 0, texts: [`step ${name}`], stderr: '' });
    expectValues(readDump(path, name));
    expect(existsSync(join(path, 'releases/v2/pwned'))).toBe(false);
  });
});

describe('no user env: the hooks get no extra variables', () => {
  function expectNothingExtra(dump: Map<string, Buffer>): void {
    expect(namesOf(dump)).toEqual([...Object.keys(BASE_ENV), ...TAGFLIP_NAMES].sort());
    for (const [name, value] of Object.entries(BASE_ENV)) expect([name, dump.get(name)?.toString('utf8')]).toEqual([name, value]);
  }

  test('build and migrate see the environment, TAGFLIP_* and nothing else', () => {
    const path = site();
    const ctx = context(path, { build: dumpEnv('build'), migrate: dumpEnv('migrate') });
    const text = buildScript(ctx);
    expect(text).toContain("\ntf_user_env=''\n");
    const result = run(text);
    expect({ code: result.code, last: result.texts[result.texts.length - 1], stderr: result.stderr }).toEqual({ code: 0, last: expect.stringMatching(READY), stderr: '' });
    expectNothingExtra(readDump(path, 'build'));
    expectNothingExtra(readDump(path, 'migrate'));
  });

  test.each(['activate', 'verify'] as const)('%s sees the environment, TAGFLIP_* and nothing else', (name) => {
    const path = site(['v2']);
    const result = run(renderHookScript(context(path), name, dumpEnv(name)).text);
    expect({ code: result.code, texts: result.texts, stderr: result.stderr }).toEqual({ code: 0, texts: [`step ${name}`], stderr: '' });
    expectNothingExtra(readDump(path, name));
  });
});
