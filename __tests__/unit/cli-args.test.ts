import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../../src/cli/cli.js';
import { inputErrorOf } from './input-error.js';

const dir = mkdtempSync(join(tmpdir(), 'tagflip-cli-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function config(text: string): string {
  const path = join(dir, `config-${++files}.yml`);
  writeFileSync(path, text);
  return path;
}


describe('parseArgs: flags', () => {
  test('--name value pairs and the command', () => {
    expect(parseArgs(['deploy', '--hosts', 'deploy@web1', '--deploy-path', '/srv/app', '--release', 'v3.0'])).toEqual({
      command: 'deploy',
      hosts: 'deploy@web1',
      'deploy-path': '/srv/app',
      release: 'v3.0',
    });
  });

  test('--name=value, split at the first =', () => {
    expect(parseArgs(['--build=make install', '--env=A=1=2', '--release='])).toEqual({ build: 'make install', env: 'A=1=2', release: '' });
  });

  test('a value may hold spaces, newlines and start with a dash', () => {
    expect(parseArgs(['--build', 'make -j4\nmake install', '--user', '-x'])).toEqual({ build: 'make -j4\nmake install', user: '-x' });
  });

  test('no arguments: nothing', () => {
    expect(parseArgs([])).toEqual({});
  });

  test('the command may come anywhere', () => {
    expect(parseArgs(['--hosts', 'local', 'deploy', '--dry-run'])).toEqual({ hosts: 'local', command: 'deploy', 'dry-run': 'true' });
  });

  test('the command is passed on as given, for parseSettings to judge', () => {
    expect(parseArgs(['rollback'])).toEqual({ command: 'rollback' });
  });

  test('a flag given twice: the last wins', () => {
    expect(parseArgs(['--release', 'v1', '--release=v2'])).toEqual({ release: 'v2' });
  });

  test.each([
    [['--dry-run'], { 'dry-run': 'true' }],
    [['--dry-run', '--hosts', 'local'], { 'dry-run': 'true', hosts: 'local' }],
    [['--dry-run', 'false'], { 'dry-run': 'false' }],
    [['--dry-run=false'], { 'dry-run': 'false' }],
    [['--insecure-ignore-host-key'], { 'insecure-ignore-host-key': 'true' }],
    [['--insecure-ignore-host-key', '--dry-run'], { 'insecure-ignore-host-key': 'true', 'dry-run': 'true' }],
  ])('boolean flags without a value mean true: %j', (argv, expected) => {
    expect(parseArgs(argv)).toEqual(expected);
  });

  test.each([
    [['--dry-run', 'deploy', '--hosts', 'local'], { 'dry-run': 'true', command: 'deploy', hosts: 'local' }],
    [['--dry-run', 'rollback'], { 'dry-run': 'true', command: 'rollback' }],
    [['--insecure-ignore-host-key', 'status'], { 'insecure-ignore-host-key': 'true', command: 'status' }],
    [['--dry-run', 'TRUE', 'prune'], { 'dry-run': 'TRUE', command: 'prune' }],
  ])('a boolean flag never swallows the next word, unless it is true or false: %j', (argv, expected) => {
    expect(parseArgs(argv)).toEqual(expected);
  });

  test('a boolean flag before a word that is neither command nor boolean leaves it positional', () => {
    expect(inputErrorOf(() => parseArgs(['deploy', '--dry-run', 'yes'])).message).toBe('command: unexpected arguments: yes; expected one command');
  });

  test('a non-boolean flag at the end without a value is an error', () => {
    const error = inputErrorOf(() => parseArgs(['deploy', '--hosts']));
    expect(error.input).toBe('hosts');
    expect(error.message).toBe('hosts: has no value; expected --hosts VALUE (or --hosts=VALUE for a value starting with --)');
  });

  test.each([
    ['--nope', 'nope'],
    ['--nope=1', 'nope'],
    ['--help-me', 'help-me'],
    ['--', '--'],
    ['--=x', '--=x'],
  ])('unknown flag %s is an error', (arg, input) => {
    const error = inputErrorOf(() => parseArgs(['deploy', arg, 'value']));
    expect(error.input).toBe(input);
    expect(error.message).toContain(`'${arg}' is not an option; expected one of --command, --hosts,`);
    expect(error.message).toContain('--dry-run, --config');
  });

  test.each([
    ['--deploy-pth', 'deploy-pth', '--deploy-path'],
    ['--deploy-pth=/srv/app', 'deploy-pth', '--deploy-path'],
    ['--Hosts', 'Hosts', '--hosts'],
    ['--prot', 'prot', '--port'],
    ['--dryrun', 'dryrun', '--dry-run'],
    ['--jsno', 'jsno', '--json'],
    ['--verison', 'verison', '--version'],
    ['--hlep', 'hlep', '--help'],
  ])('a mistyped flag %s names the one meant instead of listing them all', (arg, input, meant) => {
    const error = inputErrorOf(() => parseArgs(['deploy', arg, 'value']));
    expect(error.input).toBe(input);
    expect(error.message).toBe(`${input}: '${arg}' is not an option; did you mean ${meant}?`);
  });

  test('a short flag allows one edit; the guess comes with the =VALUE form too', () => {
    expect(inputErrorOf(() => parseArgs(['--rof', 'x'])).message).toBe("rof: '--rof' is not an option; did you mean --ref?");
    expect(inputErrorOf(() => parseArgs(['status', '--hots=x'])).message).toBe("hots: '--hots=x' is not an option; did you mean --hosts?");
    expect(inputErrorOf(() => parseArgs(['--rxx', 'x'])).message).toContain("'--rxx' is not an option; expected one of --command,");
  });

  test('two positional arguments are an error', () => {
    const error = inputErrorOf(() => parseArgs(['deploy', 'now', 'please']));
    expect(error.input).toBe('command');
    expect(error.message).toBe('command: unexpected arguments: now please; expected one command');
  });

  test('a single-dash argument is positional', () => {
    expect(inputErrorOf(() => parseArgs(['deploy', '-x'])).message).toBe('command: unexpected arguments: -x; expected one command');
  });
});

describe('parseArgs: a flag the command does not use is refused', () => {
  test('rollback --release names the flag, the command, the flag to use instead and what rollback uses', () => {
    const error = inputErrorOf(() => parseArgs(['rollback', '--hosts', 'local', '--deploy-path', '/srv/app', '--release', 'v1.0']));
    expect(error.input).toBe('release');
    expect(error.message).toContain('release: --release is not used by rollback (to go to a named release: --rollback-to); expected only the inputs rollback uses: --hosts,');
    const uses = error.message.split('; expected ')[1];
    expect(uses).toContain('--rollback-to');
    expect(uses).not.toMatch(/--release\b/);
  });

  test.each([
    [['status', '--build', 'make'], 'build', '--build is not used by status'],
    [['status', '--dry-run'], 'dry-run', '--dry-run is not used by status'],
    [['status', '--lock-timeout', '5'], 'lock-timeout', '--lock-timeout is not used by status'],
    [['prune', '--repository', '/srv/git/app.git', '--build=make'], 'repository', '--repository, --build are not used by prune'],
    [['--command=prune', '--activate', 'true'], 'activate', '--activate is not used by prune'],
    [['deploy', '--rollback-to', 'v1'], 'rollback-to', '--rollback-to is not used by deploy'],
    [['--rollback-to', 'v1'], 'rollback-to', '--rollback-to is not used by deploy'],
  ])('%j is refused', (argv, input, problem) => {
    const error = inputErrorOf(() => parseArgs(argv));
    expect(error.input).toBe(input);
    expect(error.message).toContain(problem);
  });

  test.each([
    ['rollback', ['--rollback-to', 'v1', '--rollback-data', 'false', '--activate', 'make restart', '--verify', 'true', '--env', 'A=1', '--secret-env', 'B=2', '--keep-releases', '3', '--dry-run']],
    ['prune', ['--keep-releases', '3', '--dry-run', '--lock-timeout', '5', '--data-path', '/srv/data']],
    ['status', ['--hosts', 'web1', '--user', 'deploy', '--port', '2222', '--jump-host', 'bastion', '--host-fingerprint', 'x', '--connect-timeout', '5', '--max-parallel', '2']],
    ['deploy', ['--release', 'v1', '--build', 'make', '--migrate', 'true', '--shared-dirs', 'var', '--rollback-data', 'true', '--keep-releases', '2']],
  ])('%s takes the inputs it uses', (command, flags) => {
    expect(parseArgs([command, ...flags]).command).toBe(command);
  });

  test('a --config file may hold inputs the command does not use: one file serves every command', () => {
    const path = config('hosts: web1\ndeploy-path: /srv/app\nrepository: /srv/git/app.git\nbuild: make\n');
    expect(parseArgs(['status', '--config', path])).toEqual({ command: 'status', hosts: 'web1', 'deploy-path': '/srv/app', repository: '/srv/git/app.git', build: 'make' });
  });

  test('the command may come from the config file', () => {
    const path = config('command: status\n');
    expect(inputErrorOf(() => parseArgs(['--config', path, '--build', 'make'])).message).toContain('--build is not used by status');
  });

  test('an unknown command far from every command is left for parseSettings to name', () => {
    expect(parseArgs(['frobnicate', '--build', 'make'])).toEqual({ command: 'frobnicate', build: 'make' });
  });

  test.each([
    [['deplyo', '--hosts', 'local'], "command: 'deplyo' is not a command; did you mean deploy?"],
    [['--hosts', 'local', 'rollbak', '--rollback-to', 'v1'], "command: 'rollbak' is not a command; did you mean rollback?"],
    [['stauts'], "command: 'stauts' is not a command; did you mean status?"],
    [['--command=purne'], "command: 'purne' is not a command; did you mean prune?"],
  ])('a mistyped command %j names the one meant', (argv, message) => {
    const error = inputErrorOf(() => parseArgs(argv));
    expect(error.input).toBe('command');
    expect(error.message).toBe(message);
  });
});

describe('parseArgs: --config', () => {
  test('a YAML map of inputs is read; lists are joined with newlines; scalars become strings', () => {
    const path = config(
      [
        'hosts: deploy@web1',
        'deploy-path: /srv/app',
        'port: 2222',
        'dry-run: true',
        'command-timeout: 600',
        'env:',
        '  - A=1',
        '  - B=two words',
        'build: |',
        '  make',
        '  make install',
        'release: "1.10"',
      ].join('\n'),
    );
    expect(parseArgs(['deploy', '--config', path])).toEqual({
      command: 'deploy',
      hosts: 'deploy@web1',
      'deploy-path': '/srv/app',
      port: '2222',
      'dry-run': 'true',
      'command-timeout': '600',
      env: 'A=1\nB=two words',
      build: 'make\nmake install\n',
      release: '1.10',
    });
  });

  test('flags win over the file, wherever they stand', () => {
    const path = config('hosts: web1\nrelease: v1\nbuild: make\n');
    expect(parseArgs(['--release', 'v2', '--config', path, '--hosts=web2'])).toEqual({ hosts: 'web2', release: 'v2', build: 'make' });
  });

  test('--config=FILE works too, and config is not passed on as an input', () => {
    const path = config('hosts: web1\n');
    const raw = parseArgs([`--config=${path}`]);
    expect(raw).toEqual({ hosts: 'web1' });
    expect(raw).not.toHaveProperty('config');
  });

  test('an empty flag value still wins over the file', () => {
    const path = config('build: make\n');
    expect(parseArgs(['--config', path, '--build='])).toEqual({ build: '' });
  });

  test("--name '' clears what the file sets (the help says so)", () => {
    const path = config('repository: git@github.com:acme/app.git\nupload: dist/\n');
    expect(parseArgs(['--config', path, '--repository', ''])).toEqual({ repository: '', upload: 'dist/' });
  });

  test('an unknown input in the file is an error', () => {
    const path = config('hosts: web1\nhost: web2\n');
    const error = inputErrorOf(() => parseArgs(['--config', path]));
    expect(error.input).toBe('config');
    expect(error.message).toBe(`config: ${path} sets unknown input 'host'; did you mean hosts?`);
    const far = config('hosts: web1\nfrobnicate: x\n');
    expect(inputErrorOf(() => parseArgs(['--config', far])).message).toContain(`sets unknown input 'frobnicate'; expected input names: command, hosts,`);
  });

  test('config itself is not allowed inside the file', () => {
    const path = config(`config: ${path0()}\n`);
    expect(inputErrorOf(() => parseArgs(['--config', path])).message).toContain("sets unknown input 'config'");
  });

  test.each([
    ['a list', '- hosts: web1\n'],
    ['a scalar', 'just text\n'],
    ['an empty file', ''],
  ])('a file that is %s is not a map', (_what, text) => {
    const path = config(text);
    const error = inputErrorOf(() => parseArgs(['--config', path]));
    expect(error.message).toBe(`config: ${path} is not a YAML map; expected a YAML file mapping input names to values`);
  });

  test('a missing file is an error naming it', () => {
    const path = join(dir, 'missing.yml');
    const error = inputErrorOf(() => parseArgs(['--config', path]));
    expect(error.input).toBe('config');
    expect(error.message).toBe(`config: cannot read ${path} (ENOENT); expected a YAML file mapping input names to values`);
  });

  test('invalid YAML is an error', () => {
    const path = config('hosts: [web1\n');
    expect(inputErrorOf(() => parseArgs(['--config', path])).message).toBe(`config: ${path} is not valid YAML (line 2); expected a YAML file mapping input names to values`);
  });

  // An empty value (`build:`) is YAML null; it must mean "not given", not the text 'null'
  // (`release:` would otherwise deploy a release named "null", `build:` would run `null`).
  test('an empty value in the file means not given', () => {
    const raw = parseArgs(['--config', config('hosts: web1\nbuild:\nrelease: ~\n')]);
    expect(raw.build ?? '').toBe('');
    expect(raw.release ?? '').toBe('');
  });

  // Inputs are text, as in a workflow's `with:`; YAML's number typing must not change them.
  test('a release that looks like a number keeps its text', () => {
    const raw = parseArgs(['--config', config('release: 1.10\nhosts: web1\n')]);
    expect(raw.release).toBe('1.10');
  });

  // The config file holds secrets (private-key, passphrase, env); a YAML error must not
  // quote the offending line back into the log.
  test('a YAML error does not print a secret from the file', () => {
    const path = config('hosts: web1\nenv: TOKEN=hunter2-secret: x\n');
    const error = inputErrorOf(() => parseArgs(['--config', path]));
    expect(error.message).not.toContain('hunter2-secret');
  });
});

/** A path that exists, for the config-in-config case. */
function path0(): string {
  return config('hosts: web1\n');
}
