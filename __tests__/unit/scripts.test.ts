import { describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/core/errors.js';
import { CODE, COMMIT, FINISHED, type LockHolder, type Manifest, NOW, REASON, STEP, parseManifest, renderRecord } from '../../src/core/manifest.js';
import {
  CLOSE_WORDS,
  type OpenOptions,
  type RenderedScript,
  type ScriptContext,
  renderBuildScript,
  renderFlipScript,
  renderOpenScript,
  renderPruneScript,
} from '../../src/remote/scripts.js';
import { dataLabel } from '../../src/core/paths.js';
import { parseEnv } from '../../src/core/settings.js';
import { quote } from '../../src/remote/shell.js';
import { hostFile } from '../support/host-files.js';
import { TAG, assignments, headerValues, parts, syntaxCheck, tagHidden } from './script-runner.js';


const CONTEXT: ScriptContext = {
  tag: TAG,
  host: 'deploy@web1.example.com',
  deployPath: '/srv/karl/customer-a',
  release: 'v3.0',
  previousRelease: 'v2.9',
  repository: 'https://github.com/example/app.git',
  ref: 'v3.0',
  build: 'python3 -m venv .\nbin/pip install -e .',
  sharedDirs: ['var/log', 'var/mailout'],
  sharedFiles: ['etc/production.cfg'],
  migrate: 'bin/evolve --data "$TAGFLIP_DATA_PATH"',
  dataPath: '/srv/karl/customer-a/data',
  commandTimeout: 3600,
  env: [
    { name: 'DATABASE_URL', value: 'postgres://app:hunter2@db/app', secret: true },
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

/** The release rolled away from, as a rollback hands it to the flip script. */
const rolledBackManifest: Manifest = { ...readyManifest, state: 'rolled-back', activated: '2024-06-01T10:04:01Z' };

const HOLDER: LockHolder = {
  command: 'deploy',
  release: 'v3.0',
  actor: 'octocat',
  runUrl: 'https://github.com/example/app/actions/runs/42',
  host: 'deploy@web1.example.com',
  since: '',
};

const openOptions = (lock: OpenOptions['lock'] = 'yes'): OpenOptions => ({ lock, lockTimeout: 300, holder: HOLDER });

/** A deploy of v3.0 with migrate: data/current flips from v2.9 to v3.0 first. */
const flipRecords = {
  active: { ...readyManifest, dataRelease: 'v3.0' },
  departed: { ...previousManifest, state: 'inactive' as const },
  event: 'deploy' as const,
  dataTarget: 'v3.0',
  dataBefore: 'v2.9',
};
/** The same without migrate: data/current is left alone. */
const flipRecordsNoData = { ...flipRecords, active: readyManifest, dataTarget: '', dataBefore: '' };

/** The context of a rollback from v3.0 (current) to v2.9: the scripts see the target as the release. */
const ROLLBACK_CONTEXT: ScriptContext = { ...CONTEXT, release: 'v2.9', previousRelease: 'v3.0' };
const rollbackRecords = {
  active: { ...previousManifest, state: 'inactive' as const },
  departed: rolledBackManifest,
  event: 'rollback' as const,
  dataTarget: 'v2.9',
  dataBefore: 'v3.0',
};




/** A rendered script's header (its assignments), then the prelude as its file holds it: tf_fill and friends defined. */
function headerAndPrelude(text: string): string {
  const prelude = hostFile('prelude.sh');
  const end = text.indexOf(`\n${prelude}\n`);
  expect(end).toBeGreaterThan(0);
  return `${text.slice(0, end)}\n${prelude}\n`;
}


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

describe('rendered scripts, snapshots', () => {
  test('open script', () => {
    expect(renderOpenScript(CONTEXT, openOptions('yes')).text).toMatchSnapshot();
  });

  test('build script', () => {
    expect(renderBuildScript(CONTEXT, building()).text).toMatchSnapshot();
  });

  test('flip script', () => {
    expect(renderFlipScript(CONTEXT, flipRecords).text).toMatchSnapshot();
  });

  test('flip script of a first deploy', () => {
    const context = { ...CONTEXT, previousRelease: '' };
    const records = { active: { ...readyManifest, previousRelease: '' }, departed: null, event: 'deploy' as const, dataTarget: 'v3.0', dataBefore: '' };
    expect(renderFlipScript(context, records).text).toMatchSnapshot();
  });

  test('flip script of a rollback', () => {
    expect(renderFlipScript(ROLLBACK_CONTEXT, rollbackRecords).text).toMatchSnapshot();
  });

  test('prune script', () => {
    expect(renderPruneScript(CONTEXT, ['v1.0', 'v2.0-rc.1'], ['v0.9']).text).toMatchSnapshot();
  });

  test('the flip script without data differs only in the data values', () => {
    const withData = renderFlipScript(CONTEXT, flipRecords).text;
    const without = renderFlipScript(CONTEXT, { ...flipRecords, dataTarget: '', dataBefore: '' }).text;
    expect(without).toBe(withData.replace("\ntf_data_target='v3.0'\ntf_data_before='v2.9'\n", "\ntf_data_target=''\ntf_data_before=''\n"));
  });

  test('the open, flip and prune scripts carry no secrets but the run tag, so they display as sent with the tag as ***', () => {
    for (const script of [
      renderOpenScript(CONTEXT, openOptions('yes')),
      renderFlipScript(CONTEXT, flipRecords),
      renderFlipScript(ROLLBACK_CONTEXT, rollbackRecords),
      renderPruneScript(CONTEXT, ['v1.0'], ['v0.9']),
    ]) {
      expect(script.display).toBe(tagHidden(script.text));
      expect(script.text).not.toContain('hunter2');
      expect(script.text).not.toContain('TAGFLIP_');
    }
  });

  test('no displayed script (dry run, debug log) shows the run tag', () => {
    const scripts = [
      renderOpenScript(CONTEXT, openOptions('yes')),
      renderBuildScript(CONTEXT, building()),
      renderFlipScript(CONTEXT, flipRecords),
      renderPruneScript(CONTEXT, ['v1.0'], ['v0.9']),
    ];
    for (const script of scripts) {
      expect(script.text).toContain(TAG);
      expect(script.display).not.toContain(TAG);
    }
  });

  test('the open script differs by lock mode only in tf_lock', () => {
    const [yes, report, no] = (['yes', 'report', 'no'] as const).map((lock) => renderOpenScript(CONTEXT, openOptions(lock)).text);
    expect(report).toBe(yes.replace("\ntf_lock='yes'\n", "\ntf_lock='report'\n"));
    expect(no).toBe(yes.replace("\ntf_lock='yes'\n", "\ntf_lock='no'\n"));
  });

  test('CLOSE_WORDS stop a copy nobody took and the watchdog, remove its run directory and end the shell', () => {
    expect(CLOSE_WORDS).toBe('tf_precopy_stop; kill "$tf_watchdog" 2>/dev/null; rm -rf -- "$tf_run_dir"; exit 0');
  });

  test('the build script displays the secret-env values in tf_user_env as *** and nothing else differs', () => {
    const { text, display } = renderBuildScript(CONTEXT, building());
    const userEnv = "\ntf_user_env='DATABASE_URL=postgres://app:hunter2@db/app\nEMPTY='\n";
    expect(text).toContain(userEnv);
    expect(text).not.toContain('export DATABASE_URL');
    expect(text).not.toContain('export EMPTY');
    expect(display).not.toContain('hunter2');
    expect(display).toBe(tagHidden(text).replace(userEnv, "\ntf_user_env='DATABASE_URL=***\nEMPTY='\n"));
  });

  test("plain env values are not secrets: they display as sent (masking '1' or 'production' would ruin logs)", () => {
    const env = [
      { name: 'APP_ENV', value: 'production' },
      { name: 'WORKERS', value: '4' },
    ];
    const { text, display } = renderBuildScript({ ...CONTEXT, env }, building());
    expect(text).toContain("\ntf_user_env='APP_ENV=production\nWORKERS=4'\n");
    expect(display).toBe(tagHidden(text));
  });

  test('without env, tf_user_env is empty and not secret: the build script displays as sent', () => {
    const { text, display } = renderBuildScript({ ...CONTEXT, env: [] }, building());
    expect(text).toContain("\ntf_user_env=''\n");
    expect(display).toBe(tagHidden(text));
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
      tf_data_path: '/srv/karl/customer-a/data',
      tf_repository: 'https://github.com/example/app.git',
      tf_ref: 'v3.0',
      tf_build: 'python3 -m venv .\nbin/pip install -e .',
      tf_command_timeout: '3600',
      tf_shared_dirs: 'var/log var/mailout',
      tf_shared_files: 'etc/production.cfg',
      tf_migrate: 'bin/evolve --data "$TAGFLIP_DATA_PATH"',
      TAGFLIP_RELEASE: 'v3.0',
      TAGFLIP_PREVIOUS_RELEASE: 'v2.9',
      TAGFLIP_RELEASE_PATH: '/srv/karl/customer-a/releases/v3.0',
      TAGFLIP_DEPLOY_PATH: '/srv/karl/customer-a',
      TAGFLIP_SHARED_PATH: '/srv/karl/customer-a/shared',
      TAGFLIP_DATA_PATH: '/srv/karl/customer-a/data/current',
      TAGFLIP_HOST: 'deploy@web1.example.com',
      tf_user_env: 'DATABASE_URL=postgres://app:hunter2@db/app\nEMPTY=',
      // The user env is only for the hooks (tf_hook passes it through env): the script's own shell never has it.
      DATABASE_URL: '<unset>',
      EMPTY: '<unset>',
    };
    expect(headerValues(text, Object.keys(expected))).toEqual(expected);
  });

  test('the TAGFLIP_* variables are exported; the script’s own and the user env (tf_user_env) are not', () => {
    const { header } = parts(renderBuildScript(CONTEXT, building()).text);
    const list = assignments(header);
    expect(list.filter(({ exported }) => exported).map(({ name }) => name)).toEqual([
      'TAGFLIP_RELEASE',
      'TAGFLIP_PREVIOUS_RELEASE',
      'TAGFLIP_RELEASE_PATH',
      'TAGFLIP_DEPLOY_PATH',
      'TAGFLIP_SHARED_PATH',
      'TAGFLIP_DATA_PATH',
      'TAGFLIP_HOST',
    ]);
    // One assignment for the whole user env, the last of the header.
    expect(list.filter(({ name }) => name === 'tf_user_env')).toEqual([{ exported: false, name: 'tf_user_env' }]);
    expect(list[list.length - 1].name).toBe('tf_user_env');
  });

  test('the records in the build script are the building, ready and failed manifests', () => {
    const values = headerValues(renderBuildScript(CONTEXT, building()).text, ['tf_manifest_building', 'tf_manifest_ready', 'tf_manifest_failed', 'tf_history_failed']);
    expect(JSON.parse(values.tf_manifest_building)).toEqual(building());
    expect(JSON.parse(values.tf_manifest_ready)).toEqual({ ...building(), state: 'ready', commit: COMMIT, finished: FINISHED });
    expect(values.tf_manifest_failed).toContain(`"exitCode":${CODE},`);
    expect(JSON.parse(values.tf_manifest_failed.replace(CODE, '0'))).toEqual({
      ...building(),
      state: 'failed',
      commit: COMMIT,
      finished: NOW,
      exitCode: 0,
      failedStep: STEP,
      reason: REASON,
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
      reason: REASON,
    });
  });

  test('the flip script of a deploy records the new release active and the departed one as given (inactive)', () => {
    const values = headerValues(renderFlipScript(CONTEXT, flipRecords).text, [
      'tf_manifest_active',
      'tf_departed_manifest_path',
      'tf_departed_manifest',
      'tf_history_flip',
      'tf_data_path',
      'tf_data_target',
      'tf_data_before',
    ]);
    expect(JSON.parse(values.tf_manifest_active)).toEqual({ ...readyManifest, dataRelease: 'v3.0', state: 'active', activated: NOW });
    expect([values.tf_data_path, values.tf_data_target, values.tf_data_before]).toEqual(['/srv/karl/customer-a/data', 'v3.0', 'v2.9']);
    expect(values.tf_departed_manifest_path).toBe('/srv/karl/customer-a/.tagflip/releases/v2.9.json');
    expect(JSON.parse(values.tf_departed_manifest)).toEqual({ ...previousManifest, state: 'inactive' });
    expect(JSON.parse(values.tf_history_flip)).toEqual({
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

  test('the flip script of a first deploy writes no departed record', () => {
    const records = { active: readyManifest, departed: null, event: 'deploy' as const, dataTarget: '', dataBefore: '' };
    const values = headerValues(renderFlipScript({ ...CONTEXT, previousRelease: '' }, records).text, [
      'tf_departed_manifest_path',
      'tf_departed_manifest',
      'tf_data_target',
      'tf_data_before',
    ]);
    expect(values).toEqual({ tf_departed_manifest_path: '', tf_departed_manifest: '', tf_data_target: '', tf_data_before: '' });
  });

  test('the flip script of a rollback: the target becomes active, the departed record keeps the state it was given, history says rollback', () => {
    const values = headerValues(renderFlipScript(ROLLBACK_CONTEXT, rollbackRecords).text, [
      'tf_release_path',
      'tf_manifest_path',
      'tf_manifest_active',
      'tf_departed_manifest_path',
      'tf_departed_manifest',
      'tf_history_flip',
      'tf_data_target',
      'tf_data_before',
    ]);
    expect([values.tf_data_target, values.tf_data_before]).toEqual(['v2.9', 'v3.0']);
    expect(values.tf_release_path).toBe('/srv/karl/customer-a/releases/v2.9');
    expect(values.tf_manifest_path).toBe('/srv/karl/customer-a/.tagflip/releases/v2.9.json');
    expect(JSON.parse(values.tf_manifest_active)).toEqual({ ...previousManifest, state: 'active', activated: NOW });
    expect(values.tf_departed_manifest_path).toBe('/srv/karl/customer-a/.tagflip/releases/v3.0.json');
    expect(JSON.parse(values.tf_departed_manifest)).toEqual(rolledBackManifest);
    expect(JSON.parse(values.tf_history_flip)).toEqual({
      time: NOW,
      event: 'rollback',
      status: 'rolled-back',
      release: 'v2.9',
      previousRelease: 'v3.0',
      host: 'deploy@web1.example.com',
      actor: 'octocat',
      runUrl: 'https://github.com/example/app/actions/runs/42',
    });
  });

  test('a rollback forward hands the departed record over as inactive', () => {
    const departed = { ...readyManifest, state: 'inactive' as const };
    const values = headerValues(renderFlipScript(ROLLBACK_CONTEXT, { ...rollbackRecords, departed }).text, ['tf_departed_manifest']);
    expect(JSON.parse(values.tf_departed_manifest)).toEqual(departed);
  });

  test('the open script header holds exactly these values, and no hook environment or secrets', () => {
    const { text } = renderOpenScript(CONTEXT, { lock: 'yes', lockTimeout: 17, holder: HOLDER });
    const expected = {
      tf_tag: TAG,
      tf_deploy_path: '/srv/karl/customer-a',
      tf_release: 'v3.0',
      tf_release_path: '/srv/karl/customer-a/releases/v3.0',
      tf_manifest_path: '/srv/karl/customer-a/.tagflip/releases/v3.0.json',
      tf_history_path: '/srv/karl/customer-a/.tagflip/history.jsonl',
      tf_data_path: '/srv/karl/customer-a/data',
      tf_data_label: 'data',
      tf_repository: 'https://github.com/example/app.git',
      tf_upload: '',
      tf_lock: 'yes',
      tf_lock_timeout: '17',
      tf_lock_holder: `{"command":"deploy","release":"v3.0","actor":"octocat","runUrl":"https://github.com/example/app/actions/runs/42","host":"deploy@web1.example.com","since":"${NOW}"}`,
      // The ref and the fetch's time limit: the facts resolve the ref when a release of this name exists.
      tf_ref: 'v3.0',
      tf_command_timeout: '3600',
      // Whether preflight checks data-path even before data is kept there; not the migrate text.
      tf_migrating: 'yes',
      tf_build: '<unset>',
    };
    expect(headerValues(text, Object.keys(expected))).toEqual(expected);
    expect(parts(text).header.split('\n')).toHaveLength(16);
    expect(text).not.toContain('TAGFLIP_');
    expect(text).not.toContain('hunter2');
  });

  test('the lock holder’s own since is replaced by the time the lock is taken', () => {
    const { text } = renderOpenScript(CONTEXT, { lock: 'yes', lockTimeout: 1, holder: { ...HOLDER, since: 'yesterday' } });
    expect(JSON.parse(headerValues(text, ['tf_lock_holder']).tf_lock_holder).since).toBe(NOW);
  });

  test('the prune script header: the releases to remove, space separated, and the history line', () => {
    const { text } = renderPruneScript(CONTEXT, ['v1.0', 'v2.0-rc.1']);
    const values = headerValues(text, ['tf_prune', 'tf_prune_data', 'tf_history_prune', 'tf_release', 'tf_history_path', 'tf_data_path']);
    expect(values.tf_prune).toBe('v1.0 v2.0-rc.1');
    expect(values.tf_prune_data).toBe('');
    expect(values.tf_history_path).toBe('/srv/karl/customer-a/.tagflip/history.jsonl');
    expect(values.tf_data_path).toBe('/srv/karl/customer-a/data');
    expect(JSON.parse(values.tf_history_prune)).toEqual({
      time: NOW,
      event: 'prune',
      status: 'pruned',
      release: '',
      previousRelease: '',
      host: 'deploy@web1.example.com',
      actor: 'octocat',
      runUrl: 'https://github.com/example/app/actions/runs/42',
      removed: ['v1.0', 'v2.0-rc.1'],
    });
  });

  test('the prune script header with data releases to remove: the history line names them as removedData', () => {
    const { text } = renderPruneScript(CONTEXT, ['v1.0'], ['v0.9', 'v1.0']);
    const values = headerValues(text, ['tf_prune', 'tf_prune_data', 'tf_history_prune']);
    expect([values.tf_prune, values.tf_prune_data]).toEqual(['v1.0', 'v0.9 v1.0']);
    expect(JSON.parse(values.tf_history_prune)).toEqual({
      time: NOW,
      event: 'prune',
      status: 'pruned',
      release: '',
      previousRelease: '',
      host: 'deploy@web1.example.com',
      actor: 'octocat',
      runUrl: 'https://github.com/example/app/actions/runs/42',
      removed: ['v1.0'],
      removedData: ['v0.9', 'v1.0'],
    });
  });

  test('a prune of nothing has empty lists', () => {
    expect(headerValues(renderPruneScript(CONTEXT, []).text, ['tf_prune', 'tf_prune_data'])).toEqual({ tf_prune: '', tf_prune_data: '' });
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

describe('tf_hook: a hook runs under timeout, in a process group of its own that the watchdog can find', () => {
  /** The build script's header, then the prelude (tf_hook) from its file. */
  function withHook(context: ScriptContext = CONTEXT): string {
    return headerAndPrelude(renderBuildScript(context, building(context)).text);
  }

  /** Run `tf_hook sh -c <command> _ <hook file>` in a real sh; print its status and what is left in the run dir. */
  function hook(
    command: string,
    { timeout = 60, runDir = true, showGroup = false, context = CONTEXT } = {},
  ): { lines: string[]; left: string[]; seconds: number } {
    const dir = mkdtempSync(join(tmpdir(), 'tagflip-hook-'));
    try {
      const script = [
        withHook(context),
        `tf_command_timeout=${timeout}`,
        `tf_run_dir=${runDir ? quote(dir) : "''"}`,
        `tf_hook sh -c ${quote(command)} _ ${quote(`${dir}/hook`)}`,
        'echo "status $?"',
        'if [ -n "${show_group:-}" ]; then echo "script $(ps -o pgid= -p $$ | tr -d " ")"; fi',
      ].join('\n');
      const started = Date.now();
      const lines = execFileSync('/bin/sh', ['-c', `show_group=${showGroup ? 1 : ''}\n${script}`]).toString('utf8').trim().split('\n');
      return { lines, left: readdirSync(dir).map((name) => `${name}: ${readFileSync(join(dir, name), 'utf8')}`), seconds: (Date.now() - started) / 1000 };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('the pid recorded in $tf_run_dir/hook is the hook’s process group, not the script’s; the file is emptied after', () => {
    // (The hook starts before tf_hook has written the file: give it a moment.)
    const { lines, left } = hook('sleep 0.3; echo "recorded $(cat "$1")"; echo "group $(ps -o pgid= -p $$ | tr -d " ")"; echo "parent $PPID"', { showGroup: true });
    expect(lines.map((line) => line.split(' ')[0])).toEqual(['recorded', 'group', 'parent', 'status', 'script']);
    const [recorded, group, parent, status, script] = lines.map((line) => line.split(' ')[1]);
    expect(recorded).toMatch(/^\d+$/);
    expect(group).toBe(recorded);
    expect(parent).toBe(recorded); // timeout runs the hook and leads its group
    expect(script).not.toBe(group);
    expect(status).toBe('0');
    // Emptied, not removed (no process): the watchdog stops no group for it.
    expect(left).toEqual(['hook: ']);
  });

  test('the hook’s exit status is returned', () => {
    expect(hook('exit 3').lines).toEqual(['status 3']);
  });

  test('a hook running longer than command-timeout is stopped with status 124', () => {
    const { lines, seconds } = hook('sleep 20', { timeout: 1 });
    expect(lines).toEqual(['status 124']);
    expect(seconds).toBeLessThan(10);
  });

  test('without a run dir (no watchdog), the hook still runs and nothing is written', () => {
    expect(hook('test -e "$1" && echo recorded || echo "not recorded"', { runDir: false }).lines).toEqual(['not recorded', 'status 0']);
  });

  test('a hook cannot read the script’s stdin', () => {
    expect(hook('cat; echo "read: $(cat | wc -c)"').lines).toEqual(['read: 0', 'status 0']);
  });

  test('the user env reaches the hook through env; tf_user_env itself does not', () => {
    const { lines } = hook('echo "DATABASE_URL=${DATABASE_URL-unset}"; echo "EMPTY=${EMPTY-unset}"; echo "tf_user_env=${tf_user_env-unset}"');
    expect(lines).toEqual(['DATABASE_URL=postgres://app:hunter2@db/app', 'EMPTY=', 'tf_user_env=unset', 'status 0']);
  });

  test('after the hook, the script’s shell still has neither the user env nor the hook’s IFS and set -f', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagflip-hook-'));
    try {
      const script = [
        withHook(),
        'tf_command_timeout=60',
        "tf_run_dir=''",
        'tf_hook true',
        'echo "DATABASE_URL=${DATABASE_URL-unset}"',
        "tf_words='a b'",
        'set -- $tf_words',
        'echo "fields $#"',
        ': > globbed',
        'set -- glob*',
        'echo "glob $1"',
      ].join('\n');
      const lines = execFileSync('/bin/sh', ['-c', script], { cwd: dir }).toString('utf8').trim().split('\n');
      expect(lines).toEqual(['DATABASE_URL=unset', 'fields 2', 'glob globbed']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tf_fill: records after the remote shell fills in the placeholders', () => {
  /** Run tf_fill in a real sh on one of the script's records. */
  function fill(text: string, record: string, step = 'build', code = '3', commit = 'abcdef0123456789abcdef0123456789abcdef01', reason = ''): string {
    const script = `${headerAndPrelude(text)}\ntf_commit=${commit}\ntf_code=${code}\ntf_current_step=${step}\ntf_reason=${quote(reason)}\ntf_fill "$${record}"`;
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
      reason: '',
    });
  });

  test('the reason, free text, is stored as one JSON line whatever it holds', () => {
    const text = renderBuildScript(CONTEXT, building()).text;
    const reason = `'ref"\\x' is not a tag | & ${NOW} ${REASON} \\n\ttab\nnext line\u0001`;
    for (const record of ['tf_manifest_failed', 'tf_history_failed']) {
      const output = fill(text, record, 'source', '1', 'abc', reason);
      expect(output.trimEnd().split('\n')).toHaveLength(1);
      // Control characters become spaces or go; the rest is kept as it was.
      expect(JSON.parse(output).reason).toBe(`'ref"\\x' is not a tag | & ${NOW} ${REASON} \\n tab next line`);
    }
  });

  test('the active manifest gets its activation time', () => {
    const output = fill(renderFlipScript(CONTEXT, flipRecords).text, 'tf_manifest_active');
    expect(parseManifest(output)).toEqual({ ...readyManifest, dataRelease: 'v3.0', state: 'active', activated: expect.stringMatching(/Z$/) });
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

describe('data-path as messages name it', () => {
  test('data by default, relative inside deploy-path, absolute elsewhere', () => {
    expect(dataLabel('/srv/app', '/srv/app/data')).toBe('data');
    expect(dataLabel('/srv/app', '/srv/app/var/db')).toBe('var/db');
    expect(dataLabel('/srv/app', '/srv/app-data')).toBe('/srv/app-data');
    expect(dataLabel('/srv/app', '/var/lib/app')).toBe('/var/lib/app');
  });

  test('every script knows it as tf_data_label', () => {
    const elsewhere = { ...CONTEXT, dataPath: '/var/lib/karl' };
    expect(headerValues(renderPruneScript(elsewhere, ['v1.0'], ['v0.9']).text, ['tf_data_label'])).toEqual({ tf_data_label: '/var/lib/karl' });
    expect(headerValues(renderBuildScript(CONTEXT, building()).text, ['tf_data_label'])).toEqual({ tf_data_label: 'data' });
  });
});

describe('upload', () => {
  const unchangedList = Buffer.from('a.txt\0dir/b c.txt\0').toString('base64');
  const sections = { unchanged: unchangedList, precopy: null, tar: 10240, list: 400, from: 'v2.9' };

  test('the build script asks for exactly the bytes of both sections, and reads them from fd 8; the unchanged list is in the script, shown by its size', () => {
    const { text, display } = renderBuildScript(CONTEXT, building(CONTEXT), sections);
    expect(headerValues(text, ['tf_upload_bytes', 'tf_unchanged_list', 'tf_tar_bytes', 'tf_list_bytes', 'tf_upload_from'])).toEqual({
      tf_upload_bytes: String(10240 + 400),
      tf_unchanged_list: unchangedList,
      tf_tar_bytes: '10240',
      tf_list_bytes: '400',
      tf_upload_from: 'v2.9',
    });
    expect(display).not.toContain(unchangedList);
    expect(display).toContain(`(${unchangedList.length} characters of base64)`);
    expect(text).toContain('tf_say receive "$tf_upload_bytes"');
    expect(text).toContain('cp --parents --preserve=mode --reflink=auto');
    expect(text).not.toMatch(/\bln (-\w+ )*"\$tf_deploy_path\/releases\/\$tf_upload_from/);
    expect(renderBuildScript(CONTEXT, building(CONTEXT)).text).toContain("\ntf_upload_bytes=''\n");
  });

  test.each([
    ['build script with upload', renderBuildScript({ ...CONTEXT, repository: '' }, building(CONTEXT), sections)],
    ['open script with upload', renderOpenScript({ ...CONTEXT, upload: true }, openOptions('yes'))],
  ])('%s passes ShellCheck', (_name, script) => {
    // Excluded: variables of the shared header a given script does not use, and one older rm -rf of a checked path.
    const result = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', '-e', 'SC2034,SC2154,SC2115', '-'], { input: script.text });
    expect(result.stdout.toString()).toBe('');
  });
});
