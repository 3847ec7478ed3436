/**
 * `--json` (issue 13): the result as one JSON object on stdout, for scripts,
 * under the names of the action's outputs; the log stays on stderr.
 */
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { parseArgs, renderJson, renderJsonError, runCli } from '../../src/cli/cli.js';
import { secretMasker } from '../../src/core/logger.js';
import { summarize } from '../../src/core/result.js';
import { inputErrorOf } from './input-error.js';
import { host } from './host-result.js';

describe('renderJson', () => {
  test('a deploy: the outputs under their action.yml names, and one row per host, on one line', () => {
    const result = summarize([host(), host({ host: 'deploy@web2', removed: ['v1.0'] })]);
    const text = renderJson(result, 'deploy');
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(text)).toEqual({
      status: 'deployed',
      release: 'v3.0',
      'previous-release': 'v2.9',
      'release-path': '/srv/app/releases/v3.0',
      'data-release': '',
      'previous-data-release': '',
      hosts: [
        { host: 'deploy@web1', status: 'deployed', release: 'v3.0', 'previous-release': 'v2.9', 'release-path': '/srv/app/releases/v3.0', 'data-release': '', 'previous-data-release': '', 'build-seconds': 12.3, 'total-seconds': 14, error: '' },
        { host: 'deploy@web2', status: 'deployed', release: 'v3.0', 'previous-release': 'v2.9', 'release-path': '/srv/app/releases/v3.0', 'data-release': '', 'previous-data-release': '', 'build-seconds': 12.3, 'total-seconds': 14, error: '', removed: ['v1.0'] },
      ],
    });
  });

  test('its keys are the outputs action.yml declares, releases only with status', () => {
    const declared = Object.keys(YAML.parse(readFileSync('action.yml', 'utf8')).outputs).sort();
    const status = summarize([host({ status: 'unchanged', report: { current: 'v3.0', rollbackTarget: 'v2.9', lockHolder: null, releases: [] } })], 'status');
    expect(Object.keys(JSON.parse(renderJson(status, 'status'))).sort()).toEqual(declared);
    expect(Object.keys(JSON.parse(renderJson(summarize([host()]), 'deploy'))).sort()).toEqual(declared.filter((name) => name !== 'releases'));
  });

  test('status: the releases of each host as an array', () => {
    const report = {
      current: 'v3.0',
      rollbackTarget: 'v2.9',
      lockHolder: null,
      releases: [
        { release: 'v3.0', state: 'active' as const, commit: 'abc', finished: '2024-06-01T10:00:00Z', actor: 'ann', current: true, rollbackTarget: false, adopted: false },
        { release: 'v2.9', state: 'active' as const, commit: 'def', finished: '2024-05-01T10:00:00Z', actor: 'bob', current: false, rollbackTarget: true, adopted: false },
      ],
    };
    const json = JSON.parse(renderJson(summarize([host({ status: 'unchanged', report })], 'status'), 'status'));
    expect(json.status).toBe('unchanged');
    expect(json.releases).toEqual([
      {
        host: 'deploy@web1',
        current: 'v3.0',
        'rollback-target': 'v2.9',
        lock: null,
        releases: [
          { release: 'v3.0', state: 'active', commit: 'abc', finished: '2024-06-01T10:00:00Z', actor: 'ann', current: true, 'rollback-target': false, adopted: false },
          { release: 'v2.9', state: 'active', commit: 'def', finished: '2024-05-01T10:00:00Z', actor: 'bob', current: false, 'rollback-target': true, adopted: false },
        ],
        error: '',
      },
    ]);
  });

  test('a secret is masked in every string before escaping, so a newline or quote in it does not hide it', () => {
    const secret = 'pa"ss\nword';
    const result = summarize([host({ status: 'failed', error: `build printed ${secret} and failed` })]);
    const text = renderJson(result, 'deploy', secretMasker([secret]));
    expect(text).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(JSON.parse(text).hosts[0].error).toBe('build printed *** and failed');
  });

  test('a run that ended before a result: status failed and the error', () => {
    expect(JSON.parse(renderJsonError('hosts: is required', secretMasker(['required'])))).toEqual({ status: 'failed', error: 'hosts: is ***' });
  });
});

describe('--json on the command line', () => {
  test('is not an input: every command takes it, with or without a value', () => {
    expect(parseArgs(['status', '--json', '--hosts', 'local'])).toEqual({ command: 'status', hosts: 'local' });
    expect(parseArgs(['prune', '--json=true'])).toEqual({ command: 'prune' });
    expect(parseArgs(['--json', 'false', 'rollback'])).toEqual({ command: 'rollback' });
  });

  test('a value that is not a boolean is refused', () => {
    expect(inputErrorOf(() => parseArgs(['deploy', '--json=yes'])).message).toBe("json: 'yes' is not true or false; expected --json alone, or --json=true or --json=false");
  });

  test('a bad input: the error on stderr, and a failed status on stdout as JSON; exit code 2 as without --json', async () => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['deploy', '--json', '--hosts', 'local', '--deploy-path', '/srv/app'], { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env: { HOME: '/nonexistent', USER: 'deploy' } });
    expect(code).toBe(2);
    const message = 'release: not given, and this run was triggered by no tag; expected a release name, or a run triggered by a tag push (the tag is then the release)';
    expect(stderr).toBe(`error: ${message}\n`);
    expect(stdout).toBe(`${JSON.stringify({ status: 'failed', error: message })}\n`);
  });

  test('a mistyped flag with --json answers in JSON too', async () => {
    let stdout = '';
    const code = await runCli(['deploy', '--json', '--deploy-pth', '/srv/app'], { stdout: (text) => (stdout += text), stderr: () => undefined, env: {} });
    expect(code).toBe(2);
    expect(JSON.parse(stdout)).toEqual({ status: 'failed', error: "deploy-pth: '--deploy-pth' is not an option; did you mean --deploy-path?" });
  });
});
