/**
 * The CLI's secrets off its command line (issue 10, item 1): every user of the
 * runner can read a process's arguments, so --private-key, --passphrase, --env
 * and --secret-env take @FILE or a TAGFLIP_ variable, and a secret written on
 * the command line itself draws a warning.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandLineSecretWarnings, parseArgs, runCli, variableFor, withDefaults } from '../../src/cli/cli.js';
import { inputErrorOf } from './input-error.js';

const dir = mkdtempSync(join(tmpdir(), 'tagflip-cli-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function file(text: string): string {
  const path = join(dir, `file-${++files}`);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** An environment with an empty home (no ~/.ssh to fill from) and a user. */
const baseEnv = (more: Record<string, string> = {}): NodeJS.ProcessEnv => ({ HOME: dir, USER: 'deploy', ...more });

/** What withDefaults makes of `argv` in `env`, for the inputs that may be secrets. */
function secretInputs(argv: string[], env: NodeJS.ProcessEnv = baseEnv()) {
  const filled = withDefaults(parseArgs(argv), env);
  return { 'private-key': filled['private-key'], passphrase: filled.passphrase, env: filled.env, 'secret-env': filled['secret-env'] };
}

describe('@FILE', () => {
  test('--passphrase, --env and --secret-env read their file; a passphrase loses its final newline, nothing else does', () => {
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n';
    const argv = ['--private-key', `@${file(key)}`, '--passphrase', `@${file('c0rrect horse\n')}`, '--env', `@${file('APP_ENV=production\nWORKERS=4\n')}`, `--secret-env=@${file('DB_PASSWORD=hunter2\n')}`];
    expect(secretInputs(argv)).toEqual({ 'private-key': key, passphrase: 'c0rrect horse', env: 'APP_ENV=production\nWORKERS=4\n', 'secret-env': 'DB_PASSWORD=hunter2\n' });
  });

  test('a passphrase file written without a newline, or with CRLF, gives the passphrase itself', () => {
    expect(secretInputs(['--passphrase', `@${file('s3cret')}`]).passphrase).toBe('s3cret');
    expect(secretInputs(['--passphrase', `@${file('s3cret\r\n')}`]).passphrase).toBe('s3cret');
  });

  test('@FILE in the --config file works the same', () => {
    const config = file(`passphrase: "@${file('from-config\n')}"\nsecret-env: "@${file('A=1\n')}"\n`);
    expect(secretInputs(['--config', config])).toMatchObject({ passphrase: 'from-config', 'secret-env': 'A=1\n' });
  });

  test('a file that cannot be read is an error naming the input and the file, never its content', () => {
    const error = inputErrorOf(() => secretInputs(['--secret-env', `@${join(dir, 'missing')}`]));
    expect(error.input).toBe('secret-env');
    expect(error.message).toBe(`secret-env: cannot read ${join(dir, 'missing')}: ENOENT; expected --secret-env @FILE naming a readable file`);
  });
});

describe('an empty @FILE (issue 22)', () => {
  test('--known-hosts @EMPTY is refused, not replaced by ~/.ssh/known_hosts: no host key to check against, and how to make one', async () => {
    const home = mkdtempSync(join(dir, 'home-'));
    const ssh = join(home, '.ssh');
    mkdirSync(ssh);
    writeFileSync(join(ssh, 'known_hosts'), 'web1.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n');
    const empty = file('\n');
    let stderr = '';
    const code = await runCli(['status', '--hosts', 'web1.example.com', '--deploy-path', '/srv/app', '--known-hosts', `@${empty}`], { stdout: () => undefined, stderr: (text) => (stderr += text), env: { HOME: home, USER: 'deploy' } });
    expect(code).toBe(2);
    expect(stderr).toBe(
      `error: known-hosts: ${empty} is empty: there is no host key to check the hosts against; expected known_hosts lines in it, e.g. from 'ssh-keyscan -p PORT HOST > FILE', ` +
        "checked against the fingerprint the server prints for 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' (or leave --known-hosts out to use ~/.ssh/known_hosts)\n",
    );
  });

  test('--private-key @EMPTY is refused too; an empty --env or --secret-env file is just no variables', () => {
    const empty = file('');
    expect(inputErrorOf(() => secretInputs(['--private-key', `@${empty}`])).message).toMatch(new RegExp(`^private-key: ${empty} is empty: there is no key in it; expected `));
    expect(secretInputs(['--env', `@${empty}`, '--secret-env', `@${empty}`])).toMatchObject({ env: '', 'secret-env': '' });
  });
});

describe('TAGFLIP_ variables', () => {
  test('each input is read from TAGFLIP_<NAME> when neither a flag nor the config file gives it', () => {
    expect(['private-key', 'passphrase', 'env', 'secret-env'].map(variableFor)).toEqual(['TAGFLIP_PRIVATE_KEY', 'TAGFLIP_PASSPHRASE', 'TAGFLIP_ENV', 'TAGFLIP_SECRET_ENV']);
    const env = baseEnv({ TAGFLIP_PRIVATE_KEY: 'key text', TAGFLIP_PASSPHRASE: 'pass\n', TAGFLIP_ENV: 'A=1', TAGFLIP_SECRET_ENV: 'B=2\nC=3' });
    // A variable's value is taken as it is: not trimmed, and @ is no file name there.
    expect(secretInputs([], env)).toEqual({ 'private-key': 'key text', passphrase: 'pass\n', env: 'A=1', 'secret-env': 'B=2\nC=3' });
    expect(secretInputs([], baseEnv({ TAGFLIP_PASSPHRASE: '@not-a-file' })).passphrase).toBe('@not-a-file');
  });

  test('a flag, even an empty one, or the config file wins over the variable', () => {
    const env = () => baseEnv({ TAGFLIP_PASSPHRASE: 'from-variable', TAGFLIP_SECRET_ENV: 'A=variable' });
    expect(secretInputs(['--passphrase', `@${file('from-file')}`], env()).passphrase).toBe('from-file');
    expect(secretInputs(['--passphrase='], env()).passphrase).toBe('');
    expect(secretInputs(['--config', file('secret-env: A=config\n')], env())['secret-env']).toBe('A=config');
  });

  test('read once, then removed from the environment: no child of the CLI (a local hook) inherits it', () => {
    const env = baseEnv({ TAGFLIP_PASSPHRASE: 'p', TAGFLIP_SECRET_ENV: 'A=1', TAGFLIP_DEBUG: '1' });
    secretInputs(['--passphrase', `@${file('q')}`], env);
    expect(env).toEqual(baseEnv({ TAGFLIP_DEBUG: '1' }));
  });
});

describe('a secret written on the command line draws a warning', () => {
  test('--private-key, --passphrase and --secret-env given literally: one warning each, naming the safe ways; no value in it', () => {
    const flags = { 'private-key': '-----BEGIN…', passphrase: 'hunter2', 'secret-env': 'A=hunter3', env: 'APP_ENV=production', hosts: 'web1' };
    expect(commandLineSecretWarnings(flags)).toEqual([
      '--private-key is written on the command line, where every user of this machine can read it (ps); use --private-key @FILE or the TAGFLIP_PRIVATE_KEY variable instead',
      '--passphrase is written on the command line, where every user of this machine can read it (ps); use --passphrase @FILE or the TAGFLIP_PASSPHRASE variable instead',
      '--secret-env is written on the command line, where every user of this machine can read it (ps); use --secret-env @FILE or the TAGFLIP_SECRET_ENV variable instead',
    ]);
  });

  test('@FILE, an empty value and --env (not a secret) draw none', () => {
    expect(commandLineSecretWarnings({ 'private-key': '@/k', passphrase: '', 'secret-env': '@/s', env: 'A=1' })).toEqual([]);
  });

  test('runCli prints it on stderr before anything else, also when the run then stops at a bad input', async () => {
    const stderr: string[] = [];
    const code = await runCli(['deploy', '--hosts', 'local', '--secret-env', 'DB_PASSWORD=hunter2'], { stdout: () => undefined, stderr: (text) => stderr.push(text), env: baseEnv() });
    expect(code).toBe(2);
    expect(stderr).toEqual([
      'warning: --secret-env is written on the command line, where every user of this machine can read it (ps); use --secret-env @FILE or the TAGFLIP_SECRET_ENV variable instead\n',
      expect.stringMatching(/^error: release: not given/),
    ]);
  });

  test('secrets from the --config file or a variable draw none', async () => {
    const stderr: string[] = [];
    const io = { stdout: () => undefined, stderr: (text: string) => stderr.push(text), env: baseEnv({ TAGFLIP_PASSPHRASE: 'p' }) };
    await runCli(['deploy', '--hosts', 'local', '--config', file('secret-env: A=1\n')], io);
    expect(stderr.filter((line) => line.startsWith('warning:'))).toEqual([]);
  });

  test('--help says how to keep secrets off the command line; deploy --help says it for each input', async () => {
    const help = async (argv: string[]) => {
      let text = '';
      await runCli(argv, { stdout: (out) => (text += out), stderr: () => undefined, env: baseEnv() });
      return text.replace(/\s+/g, ' ');
    };
    expect(await help(['--help'])).toContain('Every user of this machine can read a command line (ps): give secrets by @FILE or a TAGFLIP_ variable');
    const deploy = await help(['deploy', '--help']);
    for (const name of ['private-key', 'passphrase', 'env', 'secret-env', 'known-hosts']) expect(deploy).toContain(`--${name} @FILE reads it from a file.`);
    for (const variable of ['TAGFLIP_PRIVATE_KEY', 'TAGFLIP_PASSPHRASE', 'TAGFLIP_ENV', 'TAGFLIP_SECRET_ENV']) expect(deploy).toContain(`Or set ${variable}.`);
  });
});
