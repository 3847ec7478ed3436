import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { COMMIT, NOW } from '../../src/core/manifest.js';
import { renderDriftScript } from '../../src/remote/drift-scripts.js';
import {
  type RenderedScript,
  type ScriptContext,
  renderBuildScript,
  renderDataCopyScript,
  renderDataDiscardScript,
  renderDiscardScript,
  renderFlipScript,
  renderHistoryScript,
  renderHookScript,
  renderHousekeepingScript,
  renderOpenScript,
  renderPruneScript,
} from '../../src/remote/scripts.js';
import { manifest } from './host-facts.js';
import { scriptContext } from './script-runner.js';

/**
 * Every kind of remote script, rendered as a run sends it, must pass ShellCheck
 * at -S warning. One exclusion, for a reason that holds for every script:
 * - SC2034 (variable appears unused): the header assigns the values common to
 *   every phase (commonAssignments), and one body uses only some of them; the
 *   open script leaves tf_watchdog for CLOSE_WORDS, sent later to the same shell.
 * SC2154 (referenced but not assigned) stays on: a body that reads a name its
 * header lacks is a bug under `set -u`.
 */
const EXCLUDED = ['SC2034'];

const context = (changes: Partial<ScriptContext> = {}): ScriptContext =>
  scriptContext('/srv/app', { build: 'make', env: [{ name: 'TOKEN', value: 's3cret', secret: true }], ...changes });
const withRepository = { repository: 'https://example.com/app.git', ref: 'v2' };
const withShared = { sharedDirs: ['log'], sharedFiles: ['etc/app.cfg'], migrate: 'bin/migrate' };
const building = manifest('v2', 'building', 'v1', { commit: COMMIT, started: NOW });
const holder = { command: 'deploy', release: 'v2', actor: 'octocat', runUrl: '', host: 'web1', since: '' };
const upload = { unchanged: Buffer.from('a\0').toString('base64'), precopy: { drop: Buffer.from('b\0').toString('base64'), rmdir: '' }, tar: 2048, list: 30, from: 'v1' };

const SCRIPTS: [string, RenderedScript][] = [
  ['open (lock)', renderOpenScript(context(withRepository), { lock: 'yes', lockTimeout: 60, holder })],
  ['open (report)', renderOpenScript(context(), { lock: 'report', lockTimeout: 60, holder })],
  ['open (upload)', renderOpenScript(context({ upload: true }), { lock: 'no', lockTimeout: 60, holder })],
  ['open (upload, deploy)', renderOpenScript(context({ upload: true }), { lock: 'yes', lockTimeout: 60, holder })],
  ['build', renderBuildScript(context(), building)],
  ['build with repository', renderBuildScript(context(withRepository), building)],
  ['build with upload', renderBuildScript(context(), building, upload)],
  ['build with migrate and shared', renderBuildScript(context({ ...withRepository, ...withShared }), building)],
  [
    'flip with prune',
    renderFlipScript(context(), {
      active: manifest('v2', 'ready', 'v1'),
      departed: manifest('v1', 'inactive'),
      event: 'deploy',
      dataTarget: 'v2',
      dataBefore: 'v1',
      prune: { remove: ['v0'], removeData: ['v0'], unknown: ['old'] },
    }),
  ],
  ['flip (adoption)', renderFlipScript(context(), { active: manifest('v2', 'ready', 'v1'), departed: manifest('v1', 'inactive', '', { adopted: NOW }), event: 'deploy', dataTarget: '', dataBefore: '' })],
  ['hook', renderHookScript(context(), 'activate', 'systemctl restart app')],
  ['discard', renderDiscardScript(context(), manifest('v2', 'ready', 'v1'), 'v2', 'web2 failed')],
  ['data copy (switch of a prepared release)', renderDataCopyScript(context({ migrate: 'bin/migrate' }))],
  ['data discard (switch of a prepared release)', renderDataDiscardScript(context(), 'web2 failed')],
  ['prune', renderPruneScript(context(), ['v0'], ['v0'], ['old'])],
  ['prune after verify', renderHousekeepingScript(context(), { remove: ['v0'], removeData: ['v0'], unknown: ['old'] })],
  ['history', renderHistoryScript(context(), 'rollback', 'failed', { failedStep: 'verify', exitCode: 1, reason: 'verify failed' })],
  ['drift', renderDriftScript(context())],
  ['build with migrate-check', renderBuildScript(context({ ...withRepository, ...withShared, migrateCheck: 'bin/evolve --check' }), building, null, 'v1')],
];

describe('ShellCheck over every rendered remote script', () => {
  test.each(SCRIPTS)('%s', (_name, script) => {
    const result = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', ...(EXCLUDED.length ? ['-e', EXCLUDED.join(',')] : []), '-'], { input: script.text, encoding: 'utf8' });
    expect(result.error).toBeUndefined();
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});
