import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { InputError } from '../../src/errors.js';
import { CODE, COMMIT, type Manifest, NOW, STEP, parseManifest, renderRecord } from '../../src/manifest.js';
import { type RenderedScript, type ScriptContext, renderBuildScript, renderFactsScript, renderFlipScript } from '../../src/scripts.js';
import { parseEnv } from '../../src/settings.js';

const TAG = 'tagflip-0123456789abcdef01234567';

const CONTEXT: ScriptContext = {
  tag: TAG,
  host: 'deploy@web1.example.com',
  deployPath: '/srv/karl/customer-a',
  release: 'v3.0',
  previousRelease: 'v2.9',
  repository: 'https://github.com/example/app.git',
  ref: 'v3.0',
  build: 'python3 -m venv .\nbin/pip install -e .',
  commandTimeout: 3600,
  env: [
    { name: 'DATABASE_URL', value: 'postgres://app:hunter2@db/app' },
    { name: 'EMPTY', value: '' },
  ],
  actor: 'octocat',
  runUrl: 'https://github.com/example/app/actions/runs/42',
};

function building(context: ScriptContext = CONTEXT): Manifest {
  return {
    release: context.release,
    state: 'building',
    commit: '',
    dataRelease: '',
    previousRelease: context.previousRelease,
    started: '2024-06-01T10:00:00Z',
    finished: '',
    activated: '',
    exitCode: null,
    failedStep: '',
    actor: context.actor,
    runUrl: context.runUrl,
    host: context.host,
  };
}

const previousManifest: Manifest = {
  ...building({ ...CONTEXT, release: 'v2.9', previousRelease: 'v2.8' }),
  state: 'active',
  commit: '1111111111111111111111111111111111111111',
  finished: '2024-05-01T10:05:00Z',
  activated: '2024-05-01T10:05:01Z',
};

const readyManifest: Manifest = { ...building(), state: 'ready', commit: 'abcdef0123456789abcdef0123456789abcdef01', finished: '2024-06-01T10:04:00Z' };

/** Header (the assignments), prelude and body of a rendered script. */
function parts(text: string): { header: string; rest: string } {
  const start = text.indexOf('\nset -u\numask 022\n');
  expect(start).toBeGreaterThan(0);
  return { header: text.slice(0, start), rest: text.slice(start + 1) };
}

/** Run the header in a real sh and read back the named variables. */
function headerValues(text: string, names: readonly string[]): Record<string, string> {
  const { header } = parts(text);
  const reads = names.map((name) => `printf '%s\\0' "\${${name}-<unset>}"`).join('\n');
  const out = execFileSync('/bin/sh', ['-c', `set -u\n${header}\n${reads}`]).toString('utf8').split('\0');
  return Object.fromEntries(names.map((name, index) => [name, out[index]]));
}

/** The text up to the body: header and prelude, so tf_fill and friends are defined. */
function headerAndPrelude(text: string): string {
  const end = text.indexOf('\ntf_fill() {');
  const close = text.indexOf('\n}\n', end);
  return text.slice(0, close + 2);
}

function syntaxCheck(shell: string, text: string): void {
  execFileSync(shell, ['-n'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] });
}

const scripts = (context: ScriptContext): [string, RenderedScript][] => [
  ['facts', renderFactsScript(context)],
  ['build', renderBuildScript(context, building(context))],
  ['flip', renderFlipScript(context, { ...readyManifest, release: context.release }, previousManifest)],
  ['flip (first deploy)', renderFlipScript({ ...context, previousRelease: '' }, { ...readyManifest, release: context.release, previousRelease: '' }, null)],
];

describe('rendered scripts, snapshots', () => {
  test('facts script', () => {
    expect(renderFactsScript(CONTEXT).text).toMatchSnapshot();
  });

  test('build script', () => {
    expect(renderBuildScript(CONTEXT, building()).text).toMatchSnapshot();
  });

  test('flip script', () => {
    expect(renderFlipScript(CONTEXT, readyManifest, previousManifest).text).toMatchSnapshot();
  });

  test('flip script of a first deploy', () => {
    const context = { ...CONTEXT, previousRelease: '' };
    expect(renderFlipScript(context, { ...readyManifest, previousRelease: '' }, null).text).toMatchSnapshot();
  });

  test('the facts and flip scripts carry no secrets, so they display as sent', () => {
    expect(renderFactsScript(CONTEXT).display).toBe(renderFactsScript(CONTEXT).text);
    const flip = renderFlipScript(CONTEXT, readyManifest, previousManifest);
    expect(flip.display).toBe(flip.text);
  });

  test('the build script displays env values as *** and nothing else differs', () => {
    const { text, display } = renderBuildScript(CONTEXT, building());
    expect(text).toContain("export DATABASE_URL='postgres://app:hunter2@db/app'\n");
    expect(text).toContain("export EMPTY=''\n");
    expect(display).not.toContain('hunter2');
    expect(display).toBe(
      text.replace("export DATABASE_URL='postgres://app:hunter2@db/app'", "export DATABASE_URL='***'").replace("export EMPTY=''", "export EMPTY='***'"),
    );
  });
});

describe('rendered scripts, values', () => {
  test('the build script header holds exactly these values', () => {
    const text = renderBuildScript(CONTEXT, building()).text;
    const expected = {
      tf_tag: TAG,
      tf_deploy_path: '/srv/karl/customer-a',
      tf_release: 'v3.0',
      tf_release_path: '/srv/karl/customer-a/releases/v3.0',
      tf_manifest_path: '/srv/karl/customer-a/.tagflip/releases/v3.0.json',
      tf_history_path: '/srv/karl/customer-a/.tagflip/history.jsonl',
      tf_repository: 'https://github.com/example/app.git',
      tf_ref: 'v3.0',
      tf_build: 'python3 -m venv .\nbin/pip install -e .',
      tf_command_timeout: '3600',
      TAGFLIP_RELEASE: 'v3.0',
      TAGFLIP_PREVIOUS_RELEASE: 'v2.9',
      TAGFLIP_RELEASE_PATH: '/srv/karl/customer-a/releases/v3.0',
      TAGFLIP_DEPLOY_PATH: '/srv/karl/customer-a',
      TAGFLIP_SHARED_PATH: '/srv/karl/customer-a/shared',
      TAGFLIP_DATA_PATH: '/srv/karl/customer-a/data/current',
      TAGFLIP_HOST: 'deploy@web1.example.com',
      DATABASE_URL: 'postgres://app:hunter2@db/app',
      EMPTY: '',
    };
    expect(headerValues(text, Object.keys(expected))).toEqual(expected);
  });

  test('hook variables are exported, the script’s own are not', () => {
    const { header } = parts(renderBuildScript(CONTEXT, building()).text);
    const exported = header.split('\n').filter((line) => line.startsWith('export ')).map((line) => line.slice(7, line.indexOf('=')));
    expect(exported).toEqual([
      'TAGFLIP_RELEASE',
      'TAGFLIP_PREVIOUS_RELEASE',
      'TAGFLIP_RELEASE_PATH',
      'TAGFLIP_DEPLOY_PATH',
      'TAGFLIP_SHARED_PATH',
      'TAGFLIP_DATA_PATH',
      'TAGFLIP_HOST',
      'DATABASE_URL',
      'EMPTY',
    ]);
  });

  test('the records in the build script are the building, ready and failed manifests', () => {
    const values = headerValues(renderBuildScript(CONTEXT, building()).text, ['tf_manifest_building', 'tf_manifest_ready', 'tf_manifest_failed', 'tf_history_failed']);
    expect(JSON.parse(values.tf_manifest_building)).toEqual(building());
    expect(JSON.parse(values.tf_manifest_ready)).toEqual({ ...building(), state: 'ready', commit: COMMIT, finished: NOW });
    expect(values.tf_manifest_failed).toContain(`"exitCode":${CODE},`);
    expect(JSON.parse(values.tf_manifest_failed.replace(CODE, '0'))).toEqual({
      ...building(),
      state: 'failed',
      commit: COMMIT,
      finished: NOW,
      exitCode: 0,
      failedStep: STEP,
    });
    expect(JSON.parse(values.tf_history_failed.replace(CODE, '7'))).toEqual({
      time: NOW,
      event: 'deploy',
      status: 'failed',
      release: 'v3.0',
      previousRelease: 'v2.9',
      host: 'deploy@web1.example.com',
      actor: 'octocat',
      runUrl: 'https://github.com/example/app/actions/runs/42',
      exitCode: 7,
      failedStep: STEP,
    });
  });

  test('the flip script records the new release active and the previous one inactive', () => {
    const values = headerValues(renderFlipScript(CONTEXT, readyManifest, previousManifest).text, [
      'tf_manifest_active',
      'tf_previous_manifest_path',
      'tf_previous_manifest',
      'tf_history_deployed',
    ]);
    expect(JSON.parse(values.tf_manifest_active)).toEqual({ ...readyManifest, state: 'active', activated: NOW });
    expect(values.tf_previous_manifest_path).toBe('/srv/karl/customer-a/.tagflip/releases/v2.9.json');
    expect(JSON.parse(values.tf_previous_manifest)).toEqual({ ...previousManifest, state: 'inactive' });
    expect(JSON.parse(values.tf_history_deployed)).toEqual({
      time: NOW,
      event: 'deploy',
      status: 'deployed',
      release: 'v3.0',
      previousRelease: 'v2.9',
      host: 'deploy@web1.example.com',
      actor: 'octocat',
      runUrl: 'https://github.com/example/app/actions/runs/42',
    });
  });

  test('the flip script of a first deploy writes no previous record', () => {
    const values = headerValues(renderFlipScript({ ...CONTEXT, previousRelease: '' }, readyManifest, null).text, ['tf_previous_manifest_path', 'tf_previous_manifest']);
    expect(values).toEqual({ tf_previous_manifest_path: '', tf_previous_manifest: '' });
  });

  test('the facts script gets the repository, and no hook environment or secrets', () => {
    const { text } = renderFactsScript(CONTEXT);
    expect(headerValues(text, ['tf_repository', 'tf_release_path'])).toEqual({
      tf_repository: 'https://github.com/example/app.git',
      tf_release_path: '/srv/karl/customer-a/releases/v3.0',
    });
    expect(text).not.toContain('TAGFLIP_');
    expect(text).not.toContain('hunter2');
  });
});

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
    env: [{ name: 'TOKEN', value: HOSTILE_ENV }],
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
    expect(headerValues(text, ['tf_release', 'tf_release_path', 'tf_deploy_path', 'tf_repository', 'tf_ref', 'tf_build', 'TOKEN', 'TAGFLIP_HOST', 'TAGFLIP_PREVIOUS_RELEASE'])).toEqual({
      tf_release: HOSTILE_RELEASE,
      tf_release_path: `/srv/it's $(id)/releases/${HOSTILE_RELEASE}`,
      tf_deploy_path: "/srv/it's $(id)",
      tf_repository: "https://example.com/$(id)'.git",
      tf_ref: "main'$(id)",
      tf_build: "echo 'build' && $(id) `id`",
      TOKEN: HOSTILE_ENV,
      TAGFLIP_HOST: "deploy@web1'`id`",
      TAGFLIP_PREVIOUS_RELEASE: "v0';id;'",
    });
    const records = headerValues(text, ['tf_manifest_building']);
    expect(JSON.parse(records.tf_manifest_building)).toEqual(building(hostile));
  });

  test('the env value is in the text, and *** in the display', () => {
    const { text, display } = renderBuildScript(hostile, building(hostile));
    expect(text).toContain(`export TOKEN='a'\\''b$(id)'`);
    expect(display).toContain("export TOKEN='***'");
    expect(display).not.toContain('a\'\\\'\'b$(id)');
    expect(headerValues(display, ['TOKEN', 'TAGFLIP_RELEASE'])).toEqual({ TOKEN: '***', TAGFLIP_RELEASE: HOSTILE_RELEASE });
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

describe('tf_fill: records after the remote shell fills in the placeholders', () => {
  /** Run tf_fill in a real sh on one of the script's records. */
  function fill(text: string, record: string, step = 'build', code = '3', commit = 'abcdef0123456789abcdef0123456789abcdef01'): string {
    const script = `${headerAndPrelude(text)}\ntf_commit=${commit}\ntf_code=${code}\ntf_current_step=${step}\ntf_fill "$${record}"`;
    return execFileSync('/bin/sh', ['-c', script]).toString('utf8');
  }

  test('the failed manifest becomes a valid record with a numeric exit code', () => {
    const output = fill(renderBuildScript(CONTEXT, building()).text, 'tf_manifest_failed');
    expect(output.endsWith('\n')).toBe(true);
    const manifest = parseManifest(output);
    expect(manifest).toEqual({
      ...building(),
      state: 'failed',
      commit: 'abcdef0123456789abcdef0123456789abcdef01',
      finished: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      exitCode: 3,
      failedStep: 'build',
    });
  });

  test('hostile values survive tf_fill as JSON', () => {
    const context = { ...CONTEXT, actor: 'a"b\'c\\d|e&f/g@tagflip h', runUrl: 'https://x/?a=1&b=|2|' };
    const output = fill(renderBuildScript(context, building(context)).text, 'tf_history_failed', 'source', '128');
    expect(JSON.parse(output)).toEqual({
      time: expect.stringMatching(/Z$/),
      event: 'deploy',
      status: 'failed',
      release: 'v3.0',
      previousRelease: 'v2.9',
      host: 'deploy@web1.example.com',
      actor: 'a"b\'c\\d|e&f/g@tagflip h',
      runUrl: 'https://x/?a=1&b=|2|',
      exitCode: 128,
      failedStep: 'source',
    });
  });

  test('the active manifest gets its activation time', () => {
    const output = fill(renderFlipScript(CONTEXT, readyManifest, previousManifest).text, 'tf_manifest_active');
    expect(parseManifest(output)).toEqual({ ...readyManifest, state: 'active', activated: expect.stringMatching(/Z$/) });
  });
});

// User env is exported for the hooks, after the script's own assignments. A name
// the script uses itself (release_path, build, ref, …) must not replace the
// script's value: otherwise `env: release_path=/home/deploy` makes tf_abort run
// `rm -rf -- /home/deploy`, and `env: build=prod` runs `prod` as the build.
// Either parseEnv refuses such names, or the script keeps its own value.
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

  test('names the script does not use are passed through', () => {
    const env = parseEnv('APP_ENV=production\nlower_case=ok');
    expect(headerValues(renderBuildScript({ ...CONTEXT, env }, building()).text, ['APP_ENV', 'lower_case', 'tf_release_path'])).toEqual({
      APP_ENV: 'production',
      lower_case: 'ok',
      tf_release_path: '/srv/karl/customer-a/releases/v3.0',
    });
  });
});

describe('renderRecord and parseManifest', () => {
  test('the code placeholder is unquoted, the others stay strings', () => {
    expect(renderRecord({ a: NOW, b: COMMIT, c: STEP, exitCode: CODE, d: 1, e: null })).toBe(
      '{"a":"@tagflip:now@","b":"@tagflip:commit@","c":"@tagflip:step@","exitCode":@tagflip:code@,"d":1,"e":null}',
    );
  });

  test('a record without placeholders is plain JSON', () => {
    const record = building();
    expect(renderRecord(record)).toBe(JSON.stringify(record));
    expect(parseManifest(renderRecord(record))).toEqual(record);
  });

  test('after sed-like substitution of every placeholder the record parses', () => {
    const rendered = renderRecord({ ...building(), state: 'failed', commit: COMMIT, finished: NOW, exitCode: CODE, failedStep: STEP });
    expect(() => JSON.parse(rendered)).toThrow();
    const filled = rendered
      .replaceAll(NOW, '2024-06-01T10:04:00Z')
      .replaceAll(COMMIT, 'abcdef0123456789abcdef0123456789abcdef01')
      .replaceAll(CODE, '2')
      .replaceAll(STEP, 'build');
    expect(parseManifest(filled)).toEqual({
      ...building(),
      state: 'failed',
      commit: 'abcdef0123456789abcdef0123456789abcdef01',
      finished: '2024-06-01T10:04:00Z',
      exitCode: 2,
      failedStep: 'build',
    });
  });

  test('a value that merely contains the code placeholder is not unquoted', () => {
    const rendered = renderRecord({ actor: 'x@tagflip:code@', exitCode: CODE });
    expect(rendered).toBe('{"actor":"x@tagflip:code@","exitCode":@tagflip:code@}');
  });

  test.each(['building', 'ready', 'active', 'inactive', 'failed', 'rolled-back'] as const)('state %s is accepted', (state) => {
    expect(parseManifest(JSON.stringify({ release: 'v1', state }))?.state).toBe(state);
  });

  test('missing and mistyped fields get their defaults', () => {
    expect(parseManifest('{"release":"v1","state":"ready","commit":5,"exitCode":"2","actor":null,"extra":"x"}')).toEqual({
      release: 'v1',
      state: 'ready',
      commit: '',
      dataRelease: '',
      previousRelease: '',
      started: '',
      finished: '',
      activated: '',
      exitCode: null,
      failedStep: '',
      actor: '',
      runUrl: '',
      host: '',
    });
  });

  test.each([
    ['the empty string', ''],
    ['garbage', 'not json at all'],
    ['truncated JSON', '{"release":"v1","state":"rea'],
    ['null', 'null'],
    ['a number', '42'],
    ['a string', '"v1"'],
    ['an array', '[{"release":"v1","state":"ready"}]'],
    ['an empty object', '{}'],
    ['an unknown state', '{"release":"v1","state":"done"}'],
    ['a state in another case', '{"release":"v1","state":"Ready"}'],
    ['no state', '{"release":"v1"}'],
    ['no release', '{"state":"ready"}'],
    ['an empty release', '{"release":"","state":"ready"}'],
    ['a non-string release', '{"release":1,"state":"ready"}'],
    ['an unfilled placeholder', `{"release":"v1","state":"failed","exitCode":${CODE}}`],
  ])('parseManifest refuses %s', (_what, text) => {
    expect(parseManifest(text)).toBeNull();
  });
});
