/**
 * `tagflip --help`, `tagflip <command> --help` and `--version` (issue 13): the
 * texts come from action.yml, so these tests read action.yml too and check the
 * help says what it says, for exactly the inputs each command uses.
 */
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { type InputDocs, commandSummaries, readInputDocs, renderCommandHelp, renderMainHelp, rewordForCli } from '../../src/cli/help.js';
import { CLI_REWORDING, runCli } from '../../src/cli/cli.js';
import { COMMANDS, COMMAND_INPUTS } from '../../src/core/inputs.js';
import { VERSION } from '../../src/core/version.js';

const action = YAML.parse(readFileSync('action.yml', 'utf8')) as { inputs: Record<string, { description: string; default?: string; required?: boolean }> };
const oneLine = (text: string) => text.replace(/\s+/g, ' ');

async function cli(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env: { HOME: '/nonexistent', USER: 'deploy' } });
  return { code, stdout, stderr };
}

/** The help's entry for one input: its heading line and the indented lines under it. */
function entryOf(help: string, input: string): string {
  const lines = help.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`  --${input} `) || line === `  --${input}`);
  if (start < 0) return '';
  const end = lines.findIndex((line, index) => index > start && !line.startsWith('      '));
  return lines.slice(start, end).join('\n');
}

describe('readInputDocs', () => {
  test('is action.yml: every input with its description, default and whether required', () => {
    const docs = readInputDocs();
    expect(Object.keys(docs)).toEqual(Object.keys(action.inputs));
    for (const [name, input] of Object.entries(action.inputs)) {
      expect(docs[name]).toEqual({ description: input.description, ...(input.default !== undefined ? { default: input.default } : {}), ...(input.required ? { required: true } : {}) });
    }
  });
});

describe('tagflip --help', () => {
  test('one line per command, from the command input of action.yml', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    const commandLines = lines.slice(lines.indexOf('commands:') + 1, lines.indexOf('commands:') + 1 + COMMANDS.length);
    expect(commandLines).toEqual([
      '  deploy    build the release and flip to it, or only flip it where it is prepared',
      '  prepare   build the release up to ready on every host and flip nothing',
      '  rollback  flip back to the previous release, or to --rollback-to',
      '  status    report releases and the lock, change nothing',
      '  prune     apply --keep-releases now',
    ]);
    expect(stdout).toContain('--json');
    expect(stdout).toContain('--version');
    expect(stdout).toContain('tagflip <command> --help');
  });

  test('-h is --help; with no arguments at all the same text goes to stderr and the exit code is 2', async () => {
    expect((await cli(['-h'])).stdout).toBe((await cli(['--help'])).stdout);
    const bare = await cli([]);
    expect(bare).toEqual({ code: 2, stdout: '', stderr: (await cli(['--help'])).stdout });
  });

  test('the summaries change when action.yml does: they are read, not copied', () => {
    const docs: InputDocs = { command: { description: '`deploy` (ship it), `rollback` (undo it), `status` (look), `prune` (tidy up `keep-releases`)' }, 'keep-releases': { description: 'x' } };
    expect(commandSummaries(docs)).toEqual({ deploy: 'ship it', prepare: '', rollback: 'undo it', status: 'look', prune: 'tidy up --keep-releases' });
    expect(renderMainHelp(docs)).toContain('  rollback  undo it\n');
  });

  test('every command has a summary in action.yml', () => {
    for (const [command, summary] of Object.entries(commandSummaries(readInputDocs()))) expect(`${command}: ${summary}`).toMatch(/^\w+: \S/);
  });
});

describe('tagflip <command> --help', () => {
  test.each(COMMANDS)('%s lists exactly the inputs it uses, each with its description from action.yml', async (command) => {
    const { code, stdout } = await cli([command, '--help']);
    expect(code).toBe(0);
    expect(stdout.startsWith(`usage: tagflip ${command} `)).toBe(true);
    const listed = [...stdout.matchAll(/^ {2}--([a-z-]+)/gm)].map((match) => match[1]);
    expect(listed.sort()).toEqual(COMMAND_INPUTS[command].filter((name) => name !== 'command').sort());
    for (const name of listed) {
      // The description as the CLI says it, with `input` written as the flag --input, wrapped at 80 columns.
      const description = rewordForCli(name, action.inputs[name].description, CLI_REWORDING).replace(/`([a-z-]+)`/g, (quoted, input: string) => (input in action.inputs && input !== 'command' ? `--${input}` : quoted));
      expect(oneLine(entryOf(stdout, name))).toContain(oneLine(description));
    }
    // Lines fit a terminal, but for a word longer than a line.
    expect(stdout.split('\n').filter((line) => line.length > 80 && line.trim().includes(' '))).toEqual([]);
  });

  test('defaults and required inputs are marked; boolean flags take no VALUE', async () => {
    const rollback = (await cli(['rollback', '--help'])).stdout;
    expect(rollback).toContain('\n  --rollback-to VALUE  (default: previous)\n');
    expect(rollback).toContain('\n  --hosts VALUE  (required)\n');
    expect(rollback).toContain('\n  --dry-run  (default: false)\n');
    expect(rollback).toContain('\n  --keep-releases VALUE  (default: 5)\n');
    expect(rollback).not.toMatch(/--release VALUE|--build VALUE/);
    expect(rollback).toContain('rollback: flip back to the previous release, or to --rollback-to.');
  });

  test('the CLI adds where else a value may come from: @FILE, a TAGFLIP_ variable, ~/.ssh', async () => {
    const deploy = (await cli(['deploy', '--help'])).stdout;
    for (const name of ['private-key', 'passphrase', 'env', 'secret-env']) {
      expect(oneLine(entryOf(deploy, name))).toContain(`--${name} @FILE reads it from a file. Or set TAGFLIP_${name.toUpperCase().replace('-', '_')}.`);
    }
    expect(oneLine(entryOf(deploy, 'private-key'))).toContain('~/.ssh/id_ed25519');
    expect(oneLine(entryOf(deploy, 'known-hosts'))).toContain('--known-hosts @FILE reads it from a file.');
    expect(oneLine(entryOf(deploy, 'known-hosts'))).toContain('~/.ssh/known_hosts');
    expect(deploy).toContain('give secrets by @FILE');
  });

  test.each(COMMANDS)('%s speaks of flags, files and this machine: never the runner, its workspace, ${{ }} or secrets.* (issue 22)', async (command) => {
    const help = oneLine((await cli([command, '--help'])).stdout);
    expect(help).not.toMatch(/runner|workspace|GITHUB_WORKSPACE|\$\{\{|secrets\.|webfactory|the step\b/i);
  });

  test('one truth per input: where ssh-config comes from, what upload is relative to, the order of the key sources', async () => {
    const deploy = (await cli(['deploy', '--help'])).stdout;
    const sshConfig = oneLine(entryOf(deploy, 'ssh-config'));
    expect(sshConfig).toContain('(relative to the current directory)');
    expect(sshConfig).toContain('Without it: ~/.ssh/config when it exists.');
    expect(sshConfig).not.toContain('Not set');
    expect(oneLine(entryOf(deploy, 'upload'))).toContain('Relative to the current directory.');
    // The order sshSetup and parseSettings try them in, said once.
    const key = oneLine(entryOf(deploy, 'private-key'));
    expect(key).toContain("Without it: the host's IdentityFile in ~/.ssh/config, else the ssh-agent at SSH_AUTH_SOCK, else the first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa.");
    expect(key.match(/SSH_AUTH_SOCK/g)).toHaveLength(1);
    // action.yml gives the action's sources in the same order.
    expect(oneLine(action.inputs['private-key'].description)).toMatch(/Not set: a host's `IdentityFile` from ssh-config, else the ssh-agent at `SSH_AUTH_SOCK`/);
  });

  test('--config: a flag wins over the file, and an empty one clears what the file sets', async () => {
    expect((await cli(['--help'])).stdout).toContain("--name '' (or --name=) clears a value the file sets");
  });

  test('a CLI rewording that action.yml no longer matches is an error, not a silent return of the action\'s words', () => {
    expect(() => rewordForCli('upload', 'A path on the runner.', { upload: [['on the RUNNER', 'on this machine']] }))
      .toThrow('action.yml\'s text of upload no longer says "on the RUNNER": update the CLI\'s rewording of it (src/cli/cli.ts)');
  });

  test('a renamed or reworded input in action.yml shows in the help as it is', () => {
    const docs: InputDocs = { command: { description: '`status` (look)' }, hosts: { description: 'Where to look.', required: true }, port: { description: 'The port.', default: '2222' } };
    const help = renderCommandHelp('status', docs, {}, new Set());
    expect(help).toContain('  --hosts VALUE  (required)\n      Where to look.\n  --port VALUE  (default: 2222)\n      The port.\n');
  });

  test('the help names the command meant when one is mistyped, and fails with 2', async () => {
    const run = await cli(['deplyo', '--help']);
    expect(run).toEqual({ code: 2, stdout: '', stderr: "error: command: 'deplyo' is not a command; did you mean deploy?\n" });
  });

  test('the command is found among the flags, whatever stands before it', async () => {
    expect((await cli(['--hosts', 'status', 'prune', '--help'])).stdout).toMatch(/^usage: tagflip prune /);
    expect((await cli(['--dry-run', 'rollback', '-h'])).stdout).toMatch(/^usage: tagflip rollback /);
    expect((await cli(['status', '--deploy-pth', '/x', '--help'])).stdout).toMatch(/^usage: tagflip status /);
  });
});

describe('tagflip --version', () => {
  test("prints package.json's version", async () => {
    const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
    expect(VERSION).toBe(version);
    expect(await cli(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});
