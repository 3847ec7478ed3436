/**
 * The prelude's functions run for real in /bin/sh on a rendered script's
 * header: tf_hook (a hook under timeout, in a process group of its own, with
 * the user env) and tf_fill (the records with their placeholders filled in).
 */
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NOW, REASON, parseManifest } from '../../src/core/manifest.js';
import { type ScriptContext, renderBuildScript, renderFlipScript } from '../../src/remote/scripts.js';
import { quote } from '../../src/remote/shell.js';
import { hostFile } from '../support/host-files.js';
import { CONTEXT, building, flipRecords, readyManifest } from './script-fixtures.js';

/** A rendered script's header (its assignments), then the prelude as its file holds it: tf_fill and friends defined. */
function headerAndPrelude(text: string): string {
  const prelude = hostFile('prelude.sh');
  const end = text.indexOf(`\n${prelude}\n`);
  expect(end).toBeGreaterThan(0);
  return `${text.slice(0, end)}\n${prelude}\n`;
}

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
