/**
 * The fleet's activate/verify hook script and the discard script (issue 5):
 * their header values, their syntax, and runs for real in /bin/sh against a
 * temporary deploy-path.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Manifest, NOW, parseHistoryEntry, parseManifest } from '../../src/core/manifest.js';
import { type RenderedScript, type ScriptContext, renderDiscardScript, renderHookScript } from '../../src/remote/scripts.js';
import { manifest } from './host-facts.js';
import { TAG, assignments, headerValues, parts, runShAsync, tagHidden, scriptContext as context, syntaxCheck } from './script-runner.js';

const header = (text: string) => parts(text).header;

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

const root = mkdtempSync(join(tmpdir(), 'tagflip-hooks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A fresh deploy-path with releases/<each> directories. */
function site(releases: string[] = ['v1', 'v2']): string {
  count += 1;
  const path = join(root, `site-${count}`);
  for (const release of releases) mkdirSync(join(path, 'releases', release), { recursive: true });
  return path;
}


/** The rendered text up to the prelude: the header of assignments. */




interface ShellRun {
  code: number | null;
  /** Control lines (after the tag), in order. */
  texts: string[];
  /** Other stdout lines. */
  output: string[];
  stderr: string;
  seconds: number;
}

/** Feed `text` to `sh -s` (as the session does) and collect what it prints. */
function runShell(text: string): Promise<ShellRun> {
  return runShAsync(text, { env: { PATH: process.env.PATH, HOME: root, TMPDIR: root } });
}

const HEADER_NAMES = [
  'tf_tag',
  'tf_deploy_path',
  'tf_release',
  'tf_release_path',
  'tf_manifest_path',
  'tf_history_path',
  'tf_data_path',
  'tf_data_label',
] as const;

describe('renderHookScript: header', () => {
  const CONTEXT = context('/srv/karl/customer-a', {
    release: 'v3.0',
    previousRelease: 'v2.9',
    dataPath: '/var/lib/karl/data',
    commandTimeout: 90,
    host: 'deploy@web1.example.com:2222',
    env: [
      { name: 'API_TOKEN', value: "s3cret'$(id)`x`", secret: true },
      { name: 'EMPTY', value: '' },
    ],
  });

  test.each(['activate', 'verify'] as const)('%s: the header holds exactly these values', (name) => {
    const command = `curl -fsS 'http://localhost:8080/health'\necho "$TAGFLIP_RELEASE"`;
    const text = renderHookScript(CONTEXT, name, command).text;
    const expected = {
      tf_tag: TAG,
      tf_deploy_path: '/srv/karl/customer-a',
      tf_release: 'v3.0',
      tf_release_path: '/srv/karl/customer-a/releases/v3.0',
      tf_manifest_path: '/srv/karl/customer-a/.tagflip/releases/v3.0.json',
      tf_history_path: '/srv/karl/customer-a/.tagflip/history.jsonl',
      tf_data_path: '/var/lib/karl/data',
      tf_hook_name: name,
      tf_hook_command: command,
      tf_command_timeout: '90',
      TAGFLIP_RELEASE: 'v3.0',
      TAGFLIP_PREVIOUS_RELEASE: 'v2.9',
      TAGFLIP_RELEASE_PATH: '/srv/karl/customer-a/releases/v3.0',
      TAGFLIP_DEPLOY_PATH: '/srv/karl/customer-a',
      TAGFLIP_SHARED_PATH: '/srv/karl/customer-a/shared',
      TAGFLIP_DATA_PATH: '/var/lib/karl/data/current',
      TAGFLIP_HOST: 'deploy@web1.example.com:2222',
      tf_user_env: "API_TOKEN=s3cret'$(id)`x`\nEMPTY=",
      // Only the hook gets the user env (tf_hook passes it through env), never the script's shell.
      API_TOKEN: '<unset>',
      EMPTY: '<unset>',
    };
    expect(headerValues(text, Object.keys(expected))).toEqual(expected);
  });

  test('the header assigns these names in this order; only TAGFLIP_* are exported, not the user env', () => {
    const list = assignments(header(renderHookScript(CONTEXT, 'activate', 'true').text));
    const names = list.map(({ name }) => name);
    expect(names).toEqual([
      ...HEADER_NAMES,
      'tf_hook_name',
      'tf_hook_command',
      'tf_command_timeout',
      'TAGFLIP_RELEASE',
      'TAGFLIP_PREVIOUS_RELEASE',
      'TAGFLIP_RELEASE_PATH',
      'TAGFLIP_DEPLOY_PATH',
      'TAGFLIP_SHARED_PATH',
      'TAGFLIP_DATA_PATH',
      'TAGFLIP_HOST',
      'tf_user_env',
    ]);
    const exported = list.filter((entry) => entry.exported).map(({ name }) => name);
    expect(exported).toEqual(names.slice(11, -1));
  });

  test('the display text masks the secret-env values in tf_user_env and nothing else', () => {
    const { text, display } = renderHookScript(CONTEXT, 'verify', 'curl localhost');
    expect(display).not.toContain('s3cret');
    expect(text).toContain('s3cret');
    expect(headerValues(display, ['tf_user_env', 'API_TOKEN', 'EMPTY', 'tf_hook_command', 'TAGFLIP_RELEASE'])).toEqual({
      tf_user_env: 'API_TOKEN=***\nEMPTY=',
      API_TOKEN: '<unset>',
      EMPTY: '<unset>',
      tf_hook_command: 'curl localhost',
      TAGFLIP_RELEASE: 'v3.0',
    });
    expect(display).toBe(tagHidden(text).replace(`\ntf_user_env='API_TOKEN=s3cret'\\''$(id)\`x\`\nEMPTY='\n`, "\ntf_user_env='API_TOKEN=***\nEMPTY='\n"));
    expect(display.slice(header(display).length)).toBe(text.slice(header(text).length));
  });

  test('without env, tf_user_env is empty and not masked: display equals text but for the run tag', () => {
    const script = renderHookScript({ ...CONTEXT, env: [] }, 'verify', 'curl localhost');
    expect(headerValues(script.text, ['tf_user_env'])).toEqual({ tf_user_env: '' });
    expect(script.display).toBe(tagHidden(script.text));
  });

  test('the prelude functions are part of the rendered text', () => {
    const { text } = renderHookScript(CONTEXT, 'activate', 'true');
    for (const name of ['tf_say', 'tf_step', 'tf_fail', 'tf_hook']) expect(text).toContain(`\n${name}() {`);
  });
});

describe('renderDiscardScript: header', () => {
  const CONTEXT = context('/srv/karl/customer-a', { release: 'v3.0', previousRelease: 'v2.9', dataPath: '/srv/karl/customer-a/data' });
  const built: Manifest = manifest('v3.0', 'ready', 'v2.9', {
    commit: 'abcdef0123456789abcdef0123456789abcdef01',
    dataRelease: 'v3.0',
    finished: '2024-06-01T10:04:00Z',
    runUrl: 'https://github.com/o/r/actions/runs/42',
  });

  test('the header holds exactly these values', () => {
    const text = renderDiscardScript(CONTEXT, built, 'v3.0', 'deploy@web2 failed').text;
    const values = headerValues(text, [...HEADER_NAMES, 'tf_data_copy', 'tf_manifest_failed', 'tf_history_failed']);
    expect({ ...values, tf_manifest_failed: undefined, tf_history_failed: undefined }).toEqual({
      tf_tag: TAG,
      tf_deploy_path: '/srv/karl/customer-a',
      tf_release: 'v3.0',
      tf_release_path: '/srv/karl/customer-a/releases/v3.0',
      tf_manifest_path: '/srv/karl/customer-a/.tagflip/releases/v3.0.json',
      tf_history_path: '/srv/karl/customer-a/.tagflip/history.jsonl',
      tf_data_path: '/srv/karl/customer-a/data',
      tf_data_label: 'data',
      tf_data_copy: 'v3.0',
      tf_manifest_failed: undefined,
      tf_history_failed: undefined,
    });
    expect(JSON.parse(values.tf_manifest_failed)).toEqual({ ...built, state: 'failed', finished: NOW, exitCode: null, failedStep: 'barrier' });
    expect(JSON.parse(values.tf_history_failed)).toEqual({
      time: NOW,
      event: 'deploy',
      status: 'failed',
      release: 'v3.0',
      previousRelease: 'v2.9',
      host: 'deploy@web1',
      actor: 'octocat',
      runUrl: 'https://github.com/o/r/actions/runs/42',
      failedStep: 'barrier',
      reason: 'deploy@web2 failed',
    });
  });

  test('no data copy: tf_data_copy is empty', () => {
    expect(headerValues(renderDiscardScript(CONTEXT, built, '', 'x').text, ['tf_data_copy'])).toEqual({ tf_data_copy: '' });
  });

  test('a reason with quotes and shell text is only data', () => {
    const reason = `deploy@web2 failed: '$(touch /tmp/pwned)' "\`id\`"\nsecond line`;
    const values = headerValues(renderDiscardScript(CONTEXT, built, '', reason).text, ['tf_history_failed']);
    expect(JSON.parse(values.tf_history_failed).reason).toBe(reason);
  });

  test('nothing is secret in the discard script: display equals text but for the run tag', () => {
    const script = renderDiscardScript(CONTEXT, built, 'v3.0', 'x');
    expect(script.display).toBe(tagHidden(script.text));
  });
});

describe('syntax', () => {
  const hostile = context("/srv/a'b", {
    release: "v1'$(id)",
    previousRelease: '`id`',
    env: [{ name: 'TOKEN', value: "a'b\"$(id)" }],
  });
  const cases = (ctx: ScriptContext): [string, RenderedScript][] => [
    ['activate', renderHookScript(ctx, 'activate', 'sudo systemctl reload app')],
    ['verify', renderHookScript(ctx, 'verify', "curl -fsS 'x'\nif true; then echo ok; fi")],
    ['verify with an unbalanced command', renderHookScript(ctx, 'verify', "if then ' \" `")],
    ['discard', renderDiscardScript(ctx, manifest(ctx.release, 'ready'), 'v1', "web2 failed: '$(x)'")],
    ['discard without data', renderDiscardScript(ctx, manifest(ctx.release, 'ready'), '', '')],
  ];

  test.each(cases(context('/srv/app')))('%s passes sh -n and bash -n', (_name, script) => {
    syntaxCheck('sh', script.text);
    syntaxCheck('sh', script.display);
    syntaxCheck('bash', script.text);
  });

  test.each(cases(hostile))('%s with hostile values passes sh -n', (_name, script) => {
    syntaxCheck('sh', script.text);
    syntaxCheck('sh', script.display);
  });
});

describe('hook script, run for real', () => {
  test('the command runs in the release directory with the TAGFLIP_* environment and the user env', async () => {
    const path = site();
    const ctx = context(path, {
      env: [
        { name: 'API_TOKEN', value: "t0k'en $(id)" },
        { name: 'EMPTY', value: '' },
      ],
    });
    const command = [
      'echo "pwd=$(pwd -P)"',
      'for name in TAGFLIP_RELEASE TAGFLIP_PREVIOUS_RELEASE TAGFLIP_RELEASE_PATH TAGFLIP_DEPLOY_PATH TAGFLIP_SHARED_PATH TAGFLIP_DATA_PATH TAGFLIP_HOST API_TOKEN EMPTY; do',
      '  eval "echo $name=\\$$name"',
      'done',
      'echo "tf_release=${tf_release-unset}"',
      'echo "tf_user_env=${tf_user_env-unset}"',
    ].join('\n');
    const run = await runShell(renderHookScript(ctx, 'activate', command).text);
    expect(run.code).toBe(0);
    expect(run.texts).toEqual(['step activate']);
    expect(run.output).toEqual([
      `pwd=${join(path, 'releases/v2')}`,
      'TAGFLIP_RELEASE=v2',
      'TAGFLIP_PREVIOUS_RELEASE=v1',
      `TAGFLIP_RELEASE_PATH=${join(path, 'releases/v2')}`,
      `TAGFLIP_DEPLOY_PATH=${path}`,
      `TAGFLIP_SHARED_PATH=${join(path, 'shared')}`,
      `TAGFLIP_DATA_PATH=${join(path, 'data/current')}`,
      'TAGFLIP_HOST=deploy@web1',
      "API_TOKEN=t0k'en $(id)",
      'EMPTY=',
      // The script's own variables are not exported to the hook, tf_user_env neither.
      'tf_release=unset',
      'tf_user_env=unset',
    ]);
  });

  test('a verify that succeeds: one step line, exit 0, its output streamed', async () => {
    const path = site();
    const run = await runShell(renderHookScript(context(path), 'verify', 'echo healthy; echo to-stderr >&2').text);
    expect(run).toMatchObject({ code: 0, texts: ['step verify'], output: ['healthy'] });
    expect(run.stderr).toBe('to-stderr\n');
  });

  test.each([
    ['activate', 3],
    ['verify', 1],
    ['verify', 42],
  ] as const)('%s exiting %i fails with the error control line and exit status 1', async (name, code) => {
    const path = site();
    const run = await runShell(renderHookScript(context(path), name, `echo before; exit ${code}`).text);
    expect(run.code).toBe(1);
    expect(run.texts).toEqual([`step ${name}`, `error ${name} ${code} ${name} exited with status ${code}`]);
    expect(run.output).toEqual(['before']);
  });

  test('a command killed by a signal is a failure (128 + the signal)', async () => {
    const path = site();
    const run = await runShell(renderHookScript(context(path), 'activate', 'kill -KILL $$').text);
    expect(run.code).toBe(1);
    expect(run.texts).toEqual(['step activate', 'error activate 137 activate exited with status 137']);
  });

  test('a command running past command-timeout is stopped: status 124 and the command-timeout message', async () => {
    const path = site();
    const run = await runShell(renderHookScript(context(path, { commandTimeout: 1 }), 'verify', 'echo started; sleep 5; echo not-reached').text);
    expect(run.code).toBe(1);
    expect(run.texts).toEqual(['step verify', 'error verify 124 verify ran longer than command-timeout (1 s) and was stopped']);
    expect(run.output).toEqual(['started']);
    expect(run.seconds).toBeLessThan(4);
  });

  test('activate past command-timeout says activate', async () => {
    const path = site();
    const run = await runShell(renderHookScript(context(path, { commandTimeout: 1 }), 'activate', 'sleep 5').text);
    expect(run.texts).toEqual(['step activate', 'error activate 124 activate ran longer than command-timeout (1 s) and was stopped']);
    expect(run.seconds).toBeLessThan(4);
  });

  test('a missing release directory fails before running the command', async () => {
    const path = site(['v1']);
    const marker = join(path, 'ran');
    const run = await runShell(renderHookScript(context(path), 'activate', `touch '${marker}'`).text);
    expect(run.code).toBe(1);
    expect(run.texts).toEqual(['step activate', `error activate 1 cannot enter ${join(path, 'releases/v2')}`]);
    expect(existsSync(marker)).toBe(false);
  });

  test('the command cannot read the script’s stdin (the rest of the session)', async () => {
    const path = site();
    const text = `${renderHookScript(context(path), 'activate', 'echo "read $(cat | wc -c) bytes"').text}\necho after-the-hook\n`;
    const run = await runShell(text);
    expect(run.code).toBe(0);
    expect(run.output).toEqual(['read 0 bytes', 'after-the-hook']);
  });

  test('the command text is not interpreted by the script itself (quotes, $(…), backticks)', async () => {
    const path = site();
    const marker = join(path, 'pwned');
    const command = `echo '$(touch ${marker})' "\\\`touch ${marker}\\\`"`;
    const run = await runShell(renderHookScript(context(path), 'activate', command).text);
    expect(run.code).toBe(0);
    expect(run.output).toEqual([`$(touch ${marker}) \`touch ${marker}\``]);
    expect(existsSync(marker)).toBe(false);
  });

  test('the hook leaves the deploy-path as it was: no records written', async () => {
    const path = site();
    symlinkSync('releases/v2', join(path, 'current'));
    await runShell(renderHookScript(context(path), 'verify', 'exit 1').text);
    expect(readdirSync(path).sort()).toEqual(['current', 'releases']);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
  });
});

describe('discard script, run for real', () => {
  /** v1 current (with data v1), v2 built and ready (with its data copy v2), one history line. */
  function builtSite(): { path: string; ctx: ScriptContext; built: Manifest; firstHistory: string } {
    const path = site(['v1', 'v2']);
    writeFileSync(join(path, 'releases/v2/app.py'), 'print(2)\n');
    symlinkSync('releases/v1', join(path, 'current'));
    for (const data of ['v1', 'v2']) mkdirSync(join(path, 'data/releases', data), { recursive: true });
    writeFileSync(join(path, 'data/releases/v2/Data.fs'), 'migrated\n');
    symlinkSync('releases/v1', join(path, 'data/current'));
    mkdirSync(join(path, '.tagflip/releases'), { recursive: true });
    const v1 = manifest('v1', 'active', '', { finished: '2024-06-01T09:00:00Z', activated: '2024-06-01T09:00:01Z', dataRelease: 'v1' });
    const built = manifest('v2', 'ready', 'v1', { finished: '2024-06-01T10:04:00Z', commit: 'abcdef0123456789abcdef0123456789abcdef01', dataRelease: 'v2' });
    writeFileSync(join(path, '.tagflip/releases/v1.json'), `${JSON.stringify(v1)}\n`);
    writeFileSync(join(path, '.tagflip/releases/v2.json'), `${JSON.stringify(built)}\n`);
    const firstHistory = JSON.stringify({ time: '2024-06-01T09:00:01Z', event: 'deploy', status: 'deployed', release: 'v1', previousRelease: '', host: 'deploy@web1', actor: 'octocat', runUrl: '' });
    writeFileSync(join(path, '.tagflip/history.jsonl'), `${firstHistory}\n`);
    return { path, ctx: context(path), built, firstHistory };
  }

  const historyLines = (path: string) => readFileSync(join(path, '.tagflip/history.jsonl'), 'utf8').split('\n').filter(Boolean);

  test('removes the release and its data copy, writes a failed manifest (failedStep barrier), appends a failed history line', async () => {
    const { path, ctx, built, firstHistory } = builtSite();
    const run = await runShell(renderDiscardScript(ctx, built, 'v2', 'deploy@web2 failed').text);
    expect(run.code).toBe(0);
    expect(run.texts).toEqual(['step discard']);
    expect(run.output).toEqual([]);
    expect(run.stderr).toBe('');

    expect(existsSync(join(path, 'releases/v2'))).toBe(false);
    expect(existsSync(join(path, 'data/releases/v2'))).toBe(false);
    // Everything else is as it was.
    expect(readdirSync(join(path, 'releases'))).toEqual(['v1']);
    expect(readdirSync(join(path, 'data/releases'))).toEqual(['v1']);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v1');
    expect(readlinkSync(join(path, 'data/current'))).toBe('releases/v1');
    expect(parseManifest(readFileSync(join(path, '.tagflip/releases/v1.json'), 'utf8'))?.state).toBe('active');

    const record = readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8');
    expect(record.endsWith('}\n')).toBe(true);
    expect(parseManifest(record)).toEqual({ ...built, state: 'failed', finished: expect.stringMatching(ISO_TIME), exitCode: null, failedStep: 'barrier' });
    expect(readdirSync(join(path, '.tagflip/releases')).sort()).toEqual(['v1.json', 'v2.json']);

    const lines = historyLines(path);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(firstHistory);
    expect(parseHistoryEntry(lines[1])).toEqual({
      time: expect.stringMatching(ISO_TIME),
      event: 'deploy',
      status: 'failed',
      release: 'v2',
      previousRelease: 'v1',
      host: 'deploy@web1',
      actor: 'octocat',
      runUrl: 'https://github.com/o/r/actions/runs/42',
    });
    expect(JSON.parse(lines[1])).toMatchObject({ failedStep: 'barrier', reason: 'deploy@web2 failed' });
  });

  test('without a data copy, data releases are left alone', async () => {
    const { path, ctx, built } = builtSite();
    const run = await runShell(renderDiscardScript(ctx, built, '', 'deploy@web3 failed').text);
    expect([run.code, run.texts]).toEqual([0, ['step discard']]);
    expect(existsSync(join(path, 'releases/v2'))).toBe(false);
    expect(readdirSync(join(path, 'data/releases')).sort()).toEqual(['v1', 'v2']);
    expect(readFileSync(join(path, 'data/releases/v2/Data.fs'), 'utf8')).toBe('migrated\n');
  });

  test('with no history yet, the history file is created with the one line', async () => {
    const { path, ctx, built } = builtSite();
    rmSync(join(path, '.tagflip/history.jsonl'));
    const run = await runShell(renderDiscardScript(ctx, built, 'v2', 'x').text);
    expect(run.code).toBe(0);
    const lines = historyLines(path);
    expect(lines).toHaveLength(1);
    expect(parseHistoryEntry(lines[0])).toMatchObject({ event: 'deploy', status: 'failed', release: 'v2' });
    // No temporary files are left next to the records.
    expect(readdirSync(join(path, '.tagflip')).sort()).toEqual(['history.jsonl', 'releases']);
    expect(readdirSync(join(path, '.tagflip/releases')).sort()).toEqual(['v1.json', 'v2.json']);
  });

  test('a release directory already gone is fine: the records are still written', async () => {
    const { path, ctx, built } = builtSite();
    rmSync(join(path, 'releases/v2'), { recursive: true });
    const run = await runShell(renderDiscardScript(ctx, built, 'v2', 'x').text);
    expect([run.code, run.texts]).toEqual([0, ['step discard']]);
    expect(parseManifest(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8'))?.state).toBe('failed');
  });

  test('refuses when current points to the release: error line, nothing removed, nothing written', async () => {
    const { path, ctx, built, firstHistory } = builtSite();
    rmSync(join(path, 'current'));
    symlinkSync('releases/v2', join(path, 'current'));
    const manifestBefore = readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8');
    const run = await runShell(renderDiscardScript(ctx, built, 'v2', 'deploy@web2 failed').text);
    expect(run.code).toBe(1);
    expect(run.texts).toEqual(['step discard', 'error discard 1 releases/v2 is current; it is not discarded']);
    expect(readFileSync(join(path, 'releases/v2/app.py'), 'utf8')).toBe('print(2)\n');
    expect(existsSync(join(path, 'data/releases/v2/Data.fs'))).toBe(true);
    expect(readFileSync(join(path, '.tagflip/releases/v2.json'), 'utf8')).toBe(manifestBefore);
    expect(historyLines(path)).toEqual([firstHistory]);
    expect(readlinkSync(join(path, 'current'))).toBe('releases/v2');
  });

  test('the reason is stored as given, never run', async () => {
    const { path, ctx, built } = builtSite();
    const marker = join(path, 'pwned');
    const reason = `web2 failed '$(touch ${marker})' \`touch ${marker}\``;
    const run = await runShell(renderDiscardScript(ctx, built, 'v2', reason).text);
    expect(run.code).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(JSON.parse(historyLines(path)[1]).reason).toBe(reason);
  });
});
