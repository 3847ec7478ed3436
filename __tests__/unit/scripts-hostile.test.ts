/**
 * The rendered scripts against hostile values: every value stays inside the
 * quoted header and reads back literally, every script passes sh -n (and
 * bash -n), and the user env cannot replace the script's own variables.
 */
import { describe, expect, test } from '@jest/globals';
import { InputError } from '../../src/core/errors.js';
import { type RenderedScript, type ScriptContext, renderBuildScript, renderFlipScript, renderOpenScript, renderPruneScript } from '../../src/remote/scripts.js';
import { parseEnv } from '../../src/core/hook-env.js';
import { CONTEXT, building, flipRecords, flipRecordsNoData, openOptions, readyManifest, rollbackRecords } from './script-fixtures.js';
import { headerValues, parts, syntaxCheck } from './script-runner.js';

const scripts = (context: ScriptContext): [string, RenderedScript][] => [
  ['open (lock)', renderOpenScript(context, openOptions('yes'))],
  ['open (report the lock)', renderOpenScript(context, openOptions('report'))],
  ['open (no lock)', renderOpenScript(context, openOptions('no'))],
  ['build', renderBuildScript(context, building(context))],
  ['build (no shared paths, no migrate)', renderBuildScript({ ...context, sharedDirs: [], sharedFiles: [], migrate: '' }, building(context))],
  ['flip', renderFlipScript(context, { ...flipRecords, active: { ...readyManifest, release: context.release } })],
  ['flip (no data)', renderFlipScript(context, { ...flipRecordsNoData, active: { ...readyManifest, release: context.release } })],
  [
    'flip (first deploy)',
    renderFlipScript(
      { ...context, previousRelease: '' },
      { active: { ...readyManifest, release: context.release, previousRelease: '' }, departed: null, event: 'deploy', dataTarget: '', dataBefore: '' },
    ),
  ],
  ['flip (rollback)', renderFlipScript(context, { ...rollbackRecords, active: { ...rollbackRecords.active, release: context.release } })],
  ['prune', renderPruneScript(context, ['v1.0', 'v2.0-rc.1'])],
  ['prune (with data)', renderPruneScript(context, ['v1.0'], ['v0.9', 'v1.0'])],
  ['prune (nothing)', renderPruneScript(context, [])],
];

describe('hostile values', () => {
  const HOSTILE_RELEASE = "v1'$(id)";
  const HOSTILE_ENV = "a'b$(id)";
  const hostile: ScriptContext = {
    ...CONTEXT,
    host: "deploy@web1'`id`",
    deployPath: "/srv/it's $(id)",
    release: HOSTILE_RELEASE,
    previousRelease: "v0';id;'",
    repository: "https://example.com/$(id)'.git",
    ref: "main'$(id)",
    build: "echo 'build' && $(id) `id`",
    migrate: "evolve '$(id)' `id`",
    dataPath: "/srv/it's $(id)/data",
    env: [{ name: 'TOKEN', value: HOSTILE_ENV, secret: true }],
    actor: "o'ctocat\"$(id)",
    runUrl: 'https://x/$(id)',
  };

  test.each(scripts(hostile))('%s: hostile values appear only in the quoted header', (_name, script) => {
    for (const text of [script.text, script.display]) {
      const { header, rest } = parts(text);
      expect(rest).not.toContain('$(id)');
      expect(rest).not.toContain('`id`');
      expect(rest).not.toContain(HOSTILE_RELEASE);
      // One assignment per line, each a single-quoted word with ' written as '\''.
      for (const line of header.split('\n')) {
        expect(line).toMatch(/^(export )?[A-Za-z_][A-Za-z0-9_]*='(?:[^']|'\\'')*'$/);
      }
    }
    expect(parts(script.text).header).toContain(`tf_release='v1'\\''$(id)'`);
  });

  test('a real sh reads the hostile values back literally', () => {
    const { text } = renderBuildScript(hostile, building(hostile));
    expect(
      headerValues(text, [
        'tf_release',
        'tf_release_path',
        'tf_deploy_path',
        'tf_repository',
        'tf_ref',
        'tf_build',
        'tf_migrate',
        'tf_data_path',
        'TAGFLIP_DATA_PATH',
        'tf_user_env',
        'TOKEN',
        'TAGFLIP_HOST',
        'TAGFLIP_PREVIOUS_RELEASE',
      ]),
    ).toEqual({
      tf_release: HOSTILE_RELEASE,
      tf_release_path: `/srv/it's $(id)/releases/${HOSTILE_RELEASE}`,
      tf_deploy_path: "/srv/it's $(id)",
      tf_repository: "https://example.com/$(id)'.git",
      tf_ref: "main'$(id)",
      tf_build: "echo 'build' && $(id) `id`",
      tf_migrate: "evolve '$(id)' `id`",
      tf_data_path: "/srv/it's $(id)/data",
      TAGFLIP_DATA_PATH: "/srv/it's $(id)/data/current",
      tf_user_env: `TOKEN=${HOSTILE_ENV}`,
      TOKEN: '<unset>',
      TAGFLIP_HOST: "deploy@web1'`id`",
      TAGFLIP_PREVIOUS_RELEASE: "v0';id;'",
    });
    const records = headerValues(text, ['tf_manifest_building']);
    expect(JSON.parse(records.tf_manifest_building)).toEqual(building(hostile));
  });

  test('the secret env value is in the text (in tf_user_env), and *** in the display', () => {
    const { text, display } = renderBuildScript(hostile, building(hostile));
    expect(text).toContain(`\ntf_user_env='TOKEN=a'\\''b$(id)'\n`);
    expect(display).toContain("\ntf_user_env='TOKEN=***'\n");
    expect(display).not.toContain('a\'\\\'\'b$(id)');
    expect(headerValues(display, ['tf_user_env', 'TOKEN', 'TAGFLIP_RELEASE'])).toEqual({ tf_user_env: 'TOKEN=***', TOKEN: '<unset>', TAGFLIP_RELEASE: HOSTILE_RELEASE });
  });
});

describe('syntax', () => {
  test.each(scripts(CONTEXT))('%s passes sh -n and bash -n', (_name, script) => {
    syntaxCheck('sh', script.text);
    syntaxCheck('sh', script.display);
    syntaxCheck('bash', script.text);
  });

  test.each(scripts({ ...CONTEXT, release: "v1'$(id)", env: [{ name: 'TOKEN', value: "a'b$(id)" }], build: "x'\n\"y" }))(
    '%s with hostile values passes sh -n',
    (_name, script) => {
      syntaxCheck('sh', script.text);
      syntaxCheck('sh', script.display);
    },
  );

  test('sh -n does catch a broken script (the check is real)', () => {
    expect(() => syntaxCheck('sh', 'if true; then\n')).toThrow();
  });
});

// User env goes to the hooks only: one tf_user_env assignment that tf_hook hands
// to env. A name the script uses itself (release_path, build, ref, …) must not
// replace the script's value: otherwise `env: release_path=/home/deploy` makes
// tf_abort run `rm -rf -- /home/deploy`, and `env: build=prod` runs `prod` as the
// build. Either parseEnv refuses such names, or the script keeps its own value.
describe('user env cannot change the script’s own variables', () => {
  const own = headerValues(renderBuildScript(CONTEXT, building()).text, [
    'tf_release_path',
    'tf_build',
    'tf_repository',
    'tf_ref',
    'tf_deploy_path',
    'tf_release',
    'tf_manifest_path',
    'tf_tag',
    'tf_command_timeout',
    'tf_data_path',
    'tf_shared_dirs',
    'tf_shared_files',
    'tf_migrate',
  ]);

  test.each(Object.keys(own))('env %s=… does not replace the build script’s own value', (name) => {
    let env;
    try {
      env = parseEnv(`${name}=/tmp/not-the-release`);
    } catch (error) {
      if (error instanceof InputError) return; // refused: also correct
      throw error;
    }
    const text = renderBuildScript({ ...CONTEXT, env }, building()).text;
    expect(headerValues(text, [name])[name]).toBe(own[name]);
  });

  test('names the script does not use are passed through to the hooks, in tf_user_env, and not set in the script’s shell', () => {
    const env = parseEnv('APP_ENV=production\nlower_case=ok');
    expect(headerValues(renderBuildScript({ ...CONTEXT, env }, building()).text, ['tf_user_env', 'APP_ENV', 'lower_case', 'tf_release_path'])).toEqual({
      tf_user_env: 'APP_ENV=production\nlower_case=ok',
      APP_ENV: '<unset>',
      lower_case: '<unset>',
      tf_release_path: '/srv/karl/customer-a/releases/v3.0',
    });
  });
});
