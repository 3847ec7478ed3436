/**
 * Hostile and malformed inputs (issue 6), through the bundled action run as the
 * runner runs it: `node dist/index.js` with INPUT_<NAME> variables (upper case,
 * hyphens kept) and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.
 *
 * Every case changes one input of a deploy that would otherwise go ahead:
 * - 'local': `hosts: local` into a deploy-path that does not exist yet (a
 *   skipped check would create it and build there);
 * - 'ssh': a generated key and a known_hosts line for [127.0.0.1]:1, where
 *   nothing listens (a skipped check would try to connect).
 * The value must be refused before anything happens: exit 1, one
 * `::error::bad input: <input>: …; expected …` line, no outputs, no summary,
 * nothing created, no connection attempted, and no secret in the log.
 *
 * (A NUL byte cannot be passed in an environment variable, so the NUL cases
 * live in the unit tests of parseSettings.)
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runnerView } from '../support/runner-commands.js';
import { RUNNER_ENV } from '../support/dist-action.js';

/** The bundled action (jest runs from the project root). */
const ACTION = resolve('dist/index.js');
const PASSPHRASE = 'c0rrect-h0rse-b4ttery';
const WRONG_PASSPHRASE = 'wr0ng-passphrase-9f1c';
const ENV_SECRET = 'envS3cret-4b7e9d';
const ENV_SECRET_2 = 'envS3cret-second-77aa';

interface Keys {
  /** An unencrypted ed25519 client key. */
  client: string;
  /** An ed25519 client key encrypted with PASSPHRASE (ssh-keygen -N). */
  encrypted: string;
  /** A public key line (what people paste into the wrong secret). */
  publicLine: string;
  /** The base64 blob of the "server's" host key. */
  hostBlob: string;
}

const root = mkdtempSync(join(tmpdir(), 'tagflip-hostile-'));
let keys: Keys;

beforeAll(() => {
  const keyDir = join(root, 'keys');
  mkdirSync(keyDir);
  const generate = (name: string, passphrase = '') => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', `${name}@hostile-test`, '-f', join(keyDir, name)]);
    return { privateKey: readFileSync(join(keyDir, name), 'utf8'), publicLine: readFileSync(join(keyDir, `${name}.pub`), 'utf8').trim() };
  };
  const client = generate('client');
  const encrypted = generate('encrypted', PASSPHRASE);
  const host = generate('host');
  keys = { client: client.privateKey, encrypted: encrypted.privateKey, publicLine: client.publicLine, hostBlob: host.publicLine.split(' ')[1] };
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Where one case runs: `site` (the deploy-path) is inside `dir`, and does not exist yet. */
interface CaseDirs {
  dir: string;
  site: string;
}

type Base = 'local' | 'ssh';

const knownHostsLine = () => `[127.0.0.1]:1 ssh-ed25519 ${keys.hostBlob}`;

function baseInputs(base: Base, { site }: CaseDirs): Record<string, string> {
  const common = { 'deploy-path': site, release: 'v1', build: 'echo building; touch built' };
  if (base === 'local') return { ...common, hosts: 'local' };
  return { ...common, hosts: 'deploy@127.0.0.1:1', 'private-key': keys.client, 'known-hosts': `${knownHostsLine()}\n`, 'connect-timeout': '5' };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  output: string;
  summary: string;
}

function runAction(inputs: Record<string, string>, dirs: CaseDirs, env: Record<string, string> = {}): Run {
  const files = mkdtempSync(join(root, 'runner-'));
  const outputFile = join(files, 'output');
  const summaryFile = join(files, 'summary');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  const inputEnv = Object.fromEntries(Object.entries(inputs).map(([name, value]) => [`INPUT_${name.toUpperCase()}`, value]));
  const run = spawnSync(process.execPath, [ACTION], {
    env: {
      PATH: process.env.PATH,
      HOME: dirs.dir,
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      ...RUNNER_ENV,
      GITHUB_REF_TYPE: 'tag',
      GITHUB_REF_NAME: 'v1',
      ...inputEnv,
      ...env,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const result = { code: run.status, stdout: run.stdout, stderr: run.stderr, output: readFileSync(outputFile, 'utf8'), summary: readFileSync(summaryFile, 'utf8') };
  rmSync(files, { recursive: true, force: true });
  return result;
}

let caseCount = 0;
function caseDirs(): CaseDirs {
  caseCount += 1;
  const dir = join(root, `case-${caseCount}`);
  mkdirSync(dir);
  return { dir, site: join(dir, 'site') };
}

/** What must never reach the log: key body lines, the passphrase, env values. */
function secretsIn(inputs: Record<string, string>): string[] {
  const secrets: string[] = [];
  for (const line of (inputs['private-key'] ?? '').split('\n')) {
    const trimmed = line.trim();
    // The BEGIN/END armour is not secret; everything between is.
    if (trimmed.length >= 8 && !trimmed.startsWith('-----')) secrets.push(trimmed);
  }
  if (inputs.passphrase) secrets.push(inputs.passphrase);
  // env values are not secrets, but none is ever echoed by an error either.
  for (const line of [inputs.env ?? '', inputs['secret-env'] ?? ''].join('\n').split('\n')) {
    const value = line.includes('=') ? line.slice(line.indexOf('=') + 1) : line;
    if (value.trim().length >= 6) secrets.push(value.trim());
  }
  return secrets;
}

interface Case {
  input: string;
  what: string;
  base: Base;
  /** The inputs that differ from the base (functions see the case's directories). */
  change: (dirs: CaseDirs) => Record<string, string>;
  env?: Record<string, string>;
}

const c = (input: string, what: string, base: Base, change: Case['change'], env?: Record<string, string>): Case => ({ input, what, base, change, env });
const set = (values: Record<string, string>) => () => values;

const HOSTILE: Case[] = [
  // release
  c('release', 'shell metacharacters', 'local', ({ dir }) => ({ release: `v1;touch ${dir}/pwned` })),
  c('release', 'command substitution', 'local', set({ release: '$(id)' })),
  c('release', 'a path out of releases/', 'local', set({ release: '../escape' })),
  c('release', "the reserved name 'current'", 'local', set({ release: 'current' })),
  c('release', "'..'", 'local', set({ release: '..' })),
  c('release', 'a leading dash', 'local', set({ release: '-rf' })),
  c('release', '129 characters', 'local', set({ release: `v${'1'.repeat(128)}` })),
  c('release', 'a newline inside', 'local', set({ release: 'v1\n::warning::forged' })),
  c('release', 'a Cyrillic look-alike letter', 'local', set({ release: 'vе1' })),
  c('release', 'empty on a branch push', 'local', set({ release: '' }), { GITHUB_REF_TYPE: 'branch', GITHUB_REF_NAME: 'main' }),
  c('release', 'empty, and a hostile tag pushed', 'local', set({ release: '' }), { GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: 'v1$(id)' }),
  // deploy-path
  c('deploy-path', 'relative', 'local', set({ 'deploy-path': 'site' })),
  c('deploy-path', "'/'", 'local', set({ 'deploy-path': '/' })),
  c('deploy-path', "a '..' segment", 'local', ({ dir }) => ({ 'deploy-path': `${dir}/site/../escaped` })),
  c('deploy-path', "an empty segment ('//')", 'local', ({ dir }) => ({ 'deploy-path': `${dir}//site` })),
  c('deploy-path', 'a space', 'local', ({ dir }) => ({ 'deploy-path': `${dir}/my site` })),
  c('deploy-path', 'command substitution', 'local', ({ dir }) => ({ 'deploy-path': `${dir}/$(touch pwned)` })),
  c('deploy-path', 'a quote', 'local', ({ dir }) => ({ 'deploy-path': `${dir}/a'b` })),
  c('deploy-path', 'a newline inside', 'local', ({ dir }) => ({ 'deploy-path': `${dir}/site\n${dir}/other` })),
  c('deploy-path', 'a segment starting with -', 'local', ({ dir }) => ({ 'deploy-path': `${dir}/-rf` })),
  c('deploy-path', 'longer than 1024 characters', 'local', ({ dir }) => ({ 'deploy-path': `${dir}/${'a'.repeat(1030)}` })),
  // data-path
  c('data-path', 'relative', 'local', set({ 'data-path': 'data' })),
  c('data-path', 'inside releases/', 'local', ({ site }) => ({ 'data-path': `${site}/releases/data` })),
  c('data-path', 'deploy-path itself', 'local', ({ site }) => ({ 'data-path': site })),
  c('data-path', 'around deploy-path', 'local', ({ dir }) => ({ 'data-path': dir })),
  c('data-path', 'a space', 'local', ({ dir }) => ({ 'data-path': `${dir}/da ta` })),
  // hosts
  c('hosts', 'empty', 'local', set({ hosts: '' })),
  c('hosts', 'only separators', 'local', set({ hosts: ' ,\n, ' })),
  c('hosts', "'local' with an ssh host", 'ssh', set({ hosts: 'local, deploy@127.0.0.1:1' })),
  c('hosts', 'an ssh option as a host', 'ssh', set({ hosts: '-oProxyCommand=touch /tmp/pwned' })),
  c('hosts', 'the same host twice', 'ssh', set({ hosts: 'deploy@127.0.0.1:1\ndeploy@127.0.0.1:1' })),
  c('hosts', 'port 0 in the entry', 'ssh', set({ hosts: 'deploy@127.0.0.1:0' })),
  c('hosts', 'an unclosed IPv6 bracket', 'ssh', set({ hosts: 'deploy@[::1:1' })),
  c('hosts', 'an underscore in the host name', 'ssh', set({ hosts: 'deploy@web_1:1' })),
  c('hosts', 'shell text as the user', 'ssh', set({ hosts: 'root;id@127.0.0.1:1' })),
  c('hosts', '257 entries', 'ssh', set({ hosts: Array.from({ length: 257 }, (_, index) => `deploy@web${index}`).join(',') })),
  c('hosts', 'no user in the entry nor the user input', 'ssh', set({ hosts: '127.0.0.1:1', user: '' })),
  // user
  c('user', 'an ssh option', 'ssh', set({ hosts: '127.0.0.1:1', user: '-oProxyCommand=id' })),
  c('user', 'shell text', 'ssh', set({ hosts: '127.0.0.1:1', user: 'root;id' })),
  c('user', '33 characters', 'ssh', set({ hosts: '127.0.0.1:1', user: 'a'.repeat(33) })),
  // port
  c('port', 'not a number', 'ssh', set({ hosts: 'deploy@127.0.0.1', port: 'ssh' })),
  c('port', '0', 'ssh', set({ hosts: 'deploy@127.0.0.1', port: '0' })),
  c('port', '65536', 'ssh', set({ hosts: 'deploy@127.0.0.1', port: '65536' })),
  c('port', 'shell text', 'ssh', set({ hosts: 'deploy@127.0.0.1', port: '22;id' })),
  // jump-host
  c('jump-host', "'local'", 'ssh', set({ 'jump-host': 'local' })),
  c('jump-host', 'port 0', 'ssh', set({ 'jump-host': 'ops@bastion:0' })),
  c('jump-host', 'an ssh option', 'ssh', set({ 'jump-host': '-oProxyCommand=id' })),
  c('jump-host', 'two bastions', 'ssh', set({ 'jump-host': 'ops@bastion1,ops@bastion2' })),
  c('known-hosts', 'no line for the jump host', 'ssh', set({ 'jump-host': 'ops@bastion.example.com:2200' })),
  // shared-dirs and shared-files
  c('shared-dirs', 'an absolute path', 'local', set({ 'shared-dirs': '/var/log' })),
  c('shared-dirs', "'..' out of the release", 'local', set({ 'shared-dirs': 'var/../../../etc' })),
  c('shared-dirs', 'command substitution', 'local', set({ 'shared-dirs': 'var/$(id)' })),
  c('shared-dirs', "'.git'", 'local', set({ 'shared-dirs': '.git' })),
  c('shared-dirs', 'the same path twice', 'local', set({ 'shared-dirs': 'var/log\nvar/log/' })),
  c('shared-files', 'a glob', 'local', set({ 'shared-files': 'etc/*.cfg' })),
  c('shared-files', "'..' out of the release", 'local', set({ 'shared-files': '../secrets.cfg' })),
  c('shared-files', 'inside a shared dir', 'local', set({ 'shared-dirs': 'etc', 'shared-files': 'etc/app.cfg' })),
  c('shared-files', 'a leading dash', 'local', set({ 'shared-files': '-rf' })),
  // env
  c('env', 'a name given twice', 'local', set({ env: `API_TOKEN=${ENV_SECRET}\nAPI_TOKEN=${ENV_SECRET_2}` })),
  c('env', 'a name starting with a digit', 'local', set({ env: `1TOKEN=${ENV_SECRET}` })),
  c('env', 'a TAGFLIP_ name', 'local', set({ env: `TAGFLIP_RELEASE=${ENV_SECRET}` })),
  c('env', 'a tf_ name (the scripts’ own)', 'local', set({ env: `tf_release=${ENV_SECRET}` })),
  c('env', 'IFS', 'local', set({ env: `OK=${ENV_SECRET_2}\nIFS=${ENV_SECRET}` })),
  c('env', 'BASH_ENV', 'local', set({ env: `BASH_ENV=${ENV_SECRET}` })),
  c('env', 'an escape sequence in the value', 'local', set({ env: `TOKEN=${ENV_SECRET}\u001b[2J` })),
  c('env', 'a line without =', 'local', set({ env: `TOKEN=${ENV_SECRET_2}\n${ENV_SECRET}` })),
  c('env', 'a dash in the name', 'local', set({ env: `API-TOKEN=${ENV_SECRET}` })),
  // secret-env
  c('secret-env', 'a name starting with a digit', 'local', set({ 'secret-env': `1TOKEN=${ENV_SECRET}` })),
  c('secret-env', 'a name env sets too', 'local', set({ env: 'TOKEN=public', 'secret-env': `TOKEN=${ENV_SECRET}` })),
  c('secret-env', 'a control character in the value', 'local', set({ 'secret-env': `TOKEN=${ENV_SECRET}\u0007` })),
  // repository and ref
  c('repository', 'an option', 'local', set({ repository: '--upload-pack=touch /tmp/pwned' })),
  c('repository', 'the ext:: remote helper', 'local', set({ repository: 'ext::sh -c touch% /tmp/pwned' })),
  c('repository', 'the fd:: remote helper', 'local', set({ repository: 'fd::17' })),
  c('repository', 'a relative path', 'local', set({ repository: 'relative/path' })),
  c('repository', 'a space', 'local', set({ repository: 'https://example.com/a b.git' })),
  c('repository', 'backticks', 'local', set({ repository: 'https://example.com/`id`.git' })),
  c('repository', 'longer than 2048 characters', 'local', set({ repository: `https://example.com/${'a'.repeat(2048)}.git` })),
  c('ref', "'..' inside", 'local', set({ repository: 'https://example.com/app.git', ref: 'v1..v2' })),
  c('ref', 'an option', 'local', set({ repository: 'https://example.com/app.git', ref: '--output=/tmp/pwned' })),
  c('ref', 'a reflog expression', 'local', set({ repository: 'https://example.com/app.git', ref: 'main@{1}' })),
  c('ref', 'a .lock suffix', 'local', set({ repository: 'https://example.com/app.git', ref: 'v1.lock' })),
  c('ref', 'a peel expression', 'local', set({ repository: 'https://example.com/app.git', ref: 'HEAD^{}' })),
  // command
  c('command', 'capitalised', 'local', set({ command: 'Deploy' })),
  c('command', 'shell text', 'local', set({ command: 'deploy; id' })),
  c('command', 'unknown', 'local', set({ command: 'undeploy' })),
  // timeouts and counts
  c('command-timeout', '0', 'local', set({ 'command-timeout': '0' })),
  c('command-timeout', 'negative', 'local', set({ 'command-timeout': '-1' })),
  c('command-timeout', 'a fraction', 'local', set({ 'command-timeout': '1.5' })),
  c('command-timeout', 'more than a week', 'local', set({ 'command-timeout': '604801' })),
  c('command-timeout', 'huge', 'local', set({ 'command-timeout': '99999999999999999999' })),
  c('connect-timeout', '0', 'ssh', set({ 'connect-timeout': '0' })),
  c('connect-timeout', 'over 600', 'ssh', set({ 'connect-timeout': '601' })),
  c('connect-timeout', 'a word', 'ssh', set({ 'connect-timeout': 'forever' })),
  c('lock-timeout', 'negative', 'local', set({ 'lock-timeout': '-1' })),
  c('lock-timeout', 'over a day', 'local', set({ 'lock-timeout': '86401' })),
  c('lock-timeout', 'exponent notation', 'local', set({ 'lock-timeout': '1e3' })),
  c('keep-releases', '0', 'local', set({ 'keep-releases': '0' })),
  c('keep-releases', "'all'", 'local', set({ 'keep-releases': 'all' })),
  c('keep-releases', 'over 1000', 'local', set({ 'keep-releases': '1001' })),
  c('max-parallel', '0', 'ssh', set({ 'max-parallel': '0' })),
  c('max-parallel', '257', 'ssh', set({ 'max-parallel': '257' })),
  c('max-parallel', 'a word', 'local', set({ 'max-parallel': 'x' })),
  c('max-parallel', 'a fraction', 'local', set({ 'max-parallel': '1.5' })),
  // rollback-to (with command: rollback)
  c('rollback-to', 'command substitution', 'local', set({ command: 'rollback', 'rollback-to': '$(id)' })),
  c('rollback-to', "'current'", 'local', set({ command: 'rollback', 'rollback-to': 'current' })),
  c('rollback-to', 'a path', 'local', set({ command: 'rollback', 'rollback-to': '../v1' })),
  // booleans
  c('dry-run', "'yes'", 'local', set({ 'dry-run': 'yes' })),
  c('dry-run', "'1'", 'local', set({ 'dry-run': '1' })),
  c('insecure-ignore-host-key', "'1'", 'ssh', set({ 'insecure-ignore-host-key': '1' })),
  c('insecure-ignore-host-key', "'yes please'", 'ssh', set({ 'insecure-ignore-host-key': 'yes please' })),
  c('rollback-data', "'no'", 'local', set({ command: 'rollback', 'rollback-data': 'no' })),
  c('rollback-data', "'0'", 'local', set({ 'rollback-data': '0' })),
  // hook scripts
  c('build', 'longer than 64 KiB', 'local', set({ build: `echo ${'x'.repeat(65536)}` })),
  c('migrate', 'longer than 64 KiB', 'local', set({ migrate: `echo ${'x'.repeat(65536)}` })),
  c('activate', 'longer than 64 KiB', 'local', set({ activate: `echo ${'x'.repeat(65536)}` })),
  c('verify', 'longer than 64 KiB', 'local', set({ verify: `echo ${'x'.repeat(65536)}` })),
  // private-key
  c('private-key', 'missing', 'ssh', set({ 'private-key': '' })),
  c('private-key', 'garbage', 'ssh', set({ 'private-key': `not a key at all ${ENV_SECRET}` })),
  c('private-key', 'a public key instead of a private one', 'ssh', () => ({ 'private-key': keys.publicLine })),
  c('private-key', 'armour around garbage', 'ssh', set({ 'private-key': `-----BEGIN OPENSSH PRIVATE KEY-----\n${ENV_SECRET}${ENV_SECRET_2}\n-----END OPENSSH PRIVATE KEY-----` })),
  c('private-key', 'a truncated key', 'ssh', () => ({ 'private-key': keys.client.split('\n').slice(0, 4).join('\n') })),
  // passphrase
  c('passphrase', 'wrong, for an encrypted key', 'ssh', () => ({ 'private-key': keys.encrypted, passphrase: WRONG_PASSPHRASE })),
  c('passphrase', 'missing, for an encrypted key', 'ssh', () => ({ 'private-key': keys.encrypted })),
  // known-hosts
  c('known-hosts', 'one word', 'ssh', set({ 'known-hosts': 'garbage' })),
  c('known-hosts', 'a line without a key', 'ssh', set({ 'known-hosts': '[127.0.0.1]:1 ssh-ed25519' })),
  c('known-hosts', 'an unknown key type', 'ssh', () => ({ 'known-hosts': `[127.0.0.1]:1 ssh-foo ${keys.hostBlob}` })),
  c('known-hosts', 'a key that is not base64', 'ssh', set({ 'known-hosts': '[127.0.0.1]:1 ssh-ed25519 AAAA$$$$not-base64' })),
  c('known-hosts', 'an unknown marker', 'ssh', () => ({ 'known-hosts': `@trusted ${knownHostsLine()}` })),
  c('known-hosts', 'a line for another port only', 'ssh', () => ({ 'known-hosts': `127.0.0.1 ssh-ed25519 ${keys.hostBlob}` })),
  c('known-hosts', 'only a revoked line', 'ssh', () => ({ 'known-hosts': `@revoked ${knownHostsLine()}` })),
  c('known-hosts', 'missing, and no fingerprint', 'ssh', set({ 'known-hosts': '' })),
  // host-fingerprint
  c('host-fingerprint', 'an MD5 fingerprint', 'ssh', set({ 'known-hosts': '', 'host-fingerprint': 'MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48' })),
  c('host-fingerprint', 'too short', 'ssh', set({ 'known-hosts': '', 'host-fingerprint': 'SHA256:abc' })),
  c('host-fingerprint', 'shell text after it', 'ssh', set({ 'known-hosts': '', 'host-fingerprint': `SHA256:${'A'.repeat(43)};id` })),
];

describe('the two bases go ahead when nothing is changed (so every case below is a real refusal)', () => {
  test('local: the deploy runs and creates deploy-path', () => {
    const dirs = caseDirs();
    const run = runAction(baseInputs('local', dirs), dirs);
    expect(run.code).toBe(0);
    expect(existsSync(join(dirs.site, 'current/built'))).toBe(true);
    expect(run.output).toContain('status<<');
  });

  test('ssh: the run tries to connect to 127.0.0.1:1 and fails there, not on an input', () => {
    const dirs = caseDirs();
    const run = runAction(baseInputs('ssh', dirs), dirs);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/::error::deploy@127\.0\.0\.1:1: connect failed/);
    expect(run.stdout).not.toContain('bad input');
  });
});

describe('hostile and malformed inputs are refused before anything happens', () => {
  test('the table has at least 40 distinct cases, across every input', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(40);
    expect(new Set(HOSTILE.map((row) => `${row.input}: ${row.what}`)).size).toBe(HOSTILE.length);
    const covered = new Set(HOSTILE.map((row) => row.input));
    for (const input of [
      'release',
      'deploy-path',
      'data-path',
      'hosts',
      'user',
      'port',
      'jump-host',
      'shared-dirs',
      'shared-files',
      'env',
      'secret-env',
      'repository',
      'ref',
      'command',
      'command-timeout',
      'connect-timeout',
      'lock-timeout',
      'keep-releases',
      'max-parallel',
      'rollback-to',
      'dry-run',
      'insecure-ignore-host-key',
      'rollback-data',
      'private-key',
      'passphrase',
      'known-hosts',
      'host-fingerprint',
    ]) {
      expect([input, covered.has(input)]).toEqual([input, true]);
    }
  });

  test.each(HOSTILE.map((row) => [row.input, row.what, row] as const))('%s: %s', (input, _what, row) => {
    const dirs = caseDirs();
    const inputs = { ...baseInputs(row.base, dirs), ...row.change(dirs) };
    const run = runAction(inputs, dirs, row.env);

    expect(run.code).toBe(1);
    const errors = run.stdout.split('\n').filter((line) => line.startsWith('::error::'));
    expect(errors).toHaveLength(1);
    expect(errors[0].startsWith(`::error::bad input: ${input}: `)).toBe(true);
    expect(errors[0]).toContain('expected');
    // Refused before any connection: no phase was started.
    expect(run.stdout).not.toContain('::group::');
    // Only status: failed, and the error in the summary, for a later job to read; nothing created.
    expect(run.output).toMatch(/^status<<(\S+)\nfailed\n\1\n$/);
    expect(run.summary).toContain(`bad input: ${input}: `);
    expect(existsSync(dirs.site)).toBe(false);
    expect(readdirSync(dirs.dir)).toEqual([]);
    // No secret outside the lines that register it as one.
    const logged = [...run.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::')), run.stderr, run.summary].join('\n');
    for (const secret of secretsIn(inputs)) expect(logged).not.toContain(secret);
  });

  test('the secrets of the key cases are registered with ::add-mask:: before the error', () => {
    const dirs = caseDirs();
    const inputs = { ...baseInputs('ssh', dirs), 'private-key': keys.encrypted, passphrase: WRONG_PASSPHRASE, 'secret-env': `TOKEN=${ENV_SECRET}\n1BAD=${ENV_SECRET_2}` };
    const run = runAction(inputs, dirs);
    const lines = run.stdout.split('\n');
    const errorAt = lines.findIndex((line) => line.startsWith('::error::'));
    expect(lines[errorAt]).toBe('::error::bad input: passphrase: does not decrypt private-key; expected the passphrase of private-key');
    const masked = lines.slice(0, errorAt).filter((line) => line.startsWith('::add-mask::')).map((line) => line.slice('::add-mask::'.length));
    for (const secret of [WRONG_PASSPHRASE, ENV_SECRET, ENV_SECRET_2, ...secretsIn({ 'private-key': keys.encrypted })]) expect(masked).toContain(secret);
  });

  test('a bad value is shown escaped on one line: it cannot forge a workflow command', () => {
    const dirs = caseDirs();
    const run = runAction({ ...baseInputs('local', dirs), release: 'v1\n::set-output name=status::deployed' }, dirs);
    expect(run.code).toBe(1);
    expect(run.stdout.split('\n').filter((line) => line.startsWith('::set-output'))).toEqual([]);
    expect(run.stdout).toContain(String.raw`::error::bad input: release: 'v1\n::set-output name=status::deployed' is not a valid release name`);
  });
});

describe('inputs that look risky but are fine', () => {
  // env reaches the hooks only: a PATH for the build does not change which
  // mkdir, sed or timeout tagflip's own scripts run.
  test('env PATH=… applies to the build, not to tagflip’s own script', () => {
    const dirs = caseDirs();
    const path = '/opt/custom/bin:/usr/local/bin:/usr/bin:/bin';
    const run = runAction({ ...baseInputs('local', dirs), env: `PATH=${path}`, build: 'printf %s "$PATH" > path.txt' }, dirs);
    expect(run.code).toBe(0);
    expect(readFileSync(join(dirs.site, 'current/path.txt'), 'utf8')).toBe(path);
  });

  // The action reads every input with core.getInput, which trims it: a
  // passphrase that begins or ends with a space can never decrypt its key.
  test('a passphrase with surrounding spaces is used as given', () => {
    const dirs = caseDirs();
    const keyDir = mkdtempSync(join(root, 'spaced-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', ' spaced passphrase ', '-f', join(keyDir, 'key')]);
    const run = runAction({ ...baseInputs('ssh', dirs), 'private-key': readFileSync(join(keyDir, 'key'), 'utf8'), passphrase: ' spaced passphrase ' }, dirs);
    expect(run.stdout).not.toContain('bad input');
    expect(run.stdout).toMatch(/::error::deploy@127\.0\.0\.1:1: connect failed/);
  });
});

describe('a host’s output cannot drive the runner', () => {
  // A single host's lines are logged as printed: each would be a workflow
  // command to the runner, were it not inside a stop-commands block.
  const HOST_LINES = [
    '::add-mask::host-mask',
    '::error::host-error',
    '::set-output name=status::host-output',
    '::stop-commands::host-token',
    '::host-token::',
    '::warning::host-warning',
    '  ::notice::host-notice',
    '##[error]host-legacy',
  ];

  test('workflow commands printed by the build are inert; tagflip’s own groups, masks and errors still work', () => {
    const dirs = caseDirs();
    const build = `${HOST_LINES.map((line) => `echo '${line}'`).join('; ')}; exit 3`;
    const run = runAction({ ...baseInputs('local', dirs), build, 'secret-env': `TOKEN=${ENV_SECRET}` }, dirs);
    expect(run.code).toBe(1);
    const stdout = run.stdout.split('\n');
    // Printed, as the build printed them…
    for (const line of HOST_LINES) expect(stdout).toContain(line);
    // …but never obeyed.
    const { obeyed, openBlock } = runnerView(run.stdout);
    for (const line of HOST_LINES) expect(obeyed).not.toContain(line.trimStart());
    // (The debug log of the build script names them too, escaped as data.)
    expect(obeyed.filter((line) => line.includes('host-') && !line.startsWith('::debug::'))).toEqual([]);
    expect(obeyed.filter((line) => line.startsWith('::stop-commands::'))).toEqual(expect.arrayContaining([expect.stringMatching(/^::stop-commands::tagflip-[0-9a-f]{32}$/)]));
    expect(openBlock).toBe('');
    expect(obeyed).toContain(`::add-mask::${ENV_SECRET}`);
    expect(obeyed).toContain('::group::build · local');
    expect(obeyed).toContain('::endgroup::');
    const errors = obeyed.filter((line) => line.startsWith('::error::'));
    expect(errors).toEqual([expect.stringMatching(/^::error::local: build failed: build exited with status 3\b/)]);
    expect(run.output).toMatch(/^status<<.*\nfailed\n/m);
  });
});
