/**
 * The rendered scripts as text: a snapshot of each, the values their headers
 * hold (records, TAGFLIP_* variables, lock holder, prune lists), how data-path
 * is named in messages, and the upload's sections.
 */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { CODE, COMMIT, FINISHED, NOW, REASON, STEP } from '../../src/core/manifest.js';
import { CLOSE_WORDS, renderBuildScript, renderFlipScript, renderOpenScript, renderPruneScript } from '../../src/remote/scripts.js';
import { dataLabel } from '../../src/core/paths.js';
import {
  CONTEXT,
  HOLDER,
  ROLLBACK_CONTEXT,
  building,
  flipRecords,
  openOptions,
  previousManifest,
  readyManifest,
  rollbackRecords,
  rolledBackManifest,
} from './script-fixtures.js';
import { TAG, assignments, headerValues, parts, tagHidden } from './script-runner.js';

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
