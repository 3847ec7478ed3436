import { describe, expect, test } from '@jest/globals';
import { parseEnv } from '../../src/core/hook-env.js';
import type { RunContext } from '../../src/core/inputs.js';
import { parseSettings } from '../../src/core/settings.js';
import { inputErrorOf } from './input-error.js';
import { TAG_CONTEXT, SECRET, host, other, encrypted, generateKeys, knownHostsLine, sshInputs } from './settings-fixtures.js';

generateKeys();

type Overrides = Record<string, string | (() => string)>;
interface Row {
  input: string;
  what: string;
  overrides: Overrides;
  context?: RunContext;
}

const row = (input: string, what: string, overrides: Overrides, context?: RunContext): Row => ({ input, what, overrides, context });
const known = (text: () => string): Overrides => ({ 'known-hosts': text });

const HOSTILE: Row[] = [
  // release
  row('release', 'shell metacharacters', { release: 'v1;rm -rf /' }),
  row('release', 'command substitution', { release: '$(id)' }),
  row('release', 'backticks', { release: '`id`' }),
  row('release', 'a space', { release: 'v1 v2' }),
  row('release', 'a path', { release: '../x' }),
  row('release', 'a slash', { release: 'v1/x' }),
  row('release', "'.'", { release: '.' }),
  row('release', "'..'", { release: '..' }),
  row('release', "'current'", { release: 'current' }),
  row('release', 'a leading -', { release: '-v1' }),
  row('release', 'a leading .', { release: '.v1' }),
  row('release', 'empty without a tag', { release: '' }, {}),
  row('release', 'empty on a branch push', { release: '' }, { refType: 'branch', refName: 'main' }),
  row('release', 'a hostile tag from the context', { release: '' }, { refType: 'tag', refName: 'v1;id' }),
  row('release', '129 characters', { release: `v${'1'.repeat(128)}` }),
  row('release', 'a newline inside', { release: 'v1\nv2' }),
  row('release', 'a fullwidth dot', { release: 'v1．0' }),
  row('release', 'a Cyrillic e', { release: 'vе1' }),
  row('release', 'a NUL', { release: 'v1\0' }),
  // deploy-path
  row('deploy-path', 'not given', { 'deploy-path': '' }),
  row('deploy-path', 'relative', { 'deploy-path': 'srv/app' }),
  row('deploy-path', "'/'", { 'deploy-path': '/' }),
  row('deploy-path', "'//'", { 'deploy-path': '//' }),
  row('deploy-path', "a '..' segment", { 'deploy-path': '/srv/../etc' }),
  row('deploy-path', "a '.' segment", { 'deploy-path': '/srv/./app' }),
  row('deploy-path', "'//' inside", { 'deploy-path': '/srv//app' }),
  row('deploy-path', 'a space', { 'deploy-path': '/srv/my app' }),
  row('deploy-path', '$HOME', { 'deploy-path': '$HOME/app' }),
  row('deploy-path', 'a newline', { 'deploy-path': '/srv/app\n/x' }),
  row('deploy-path', 'a leading-dash segment', { 'deploy-path': '/srv/-rf' }),
  row('deploy-path', 'a quote', { 'deploy-path': "/srv/a'b" }),
  row('deploy-path', '1025 characters', { 'deploy-path': `/${'a'.repeat(1024)}` }),
  // hosts, port, user
  row('hosts', 'empty', { hosts: '' }),
  row('hosts', 'only separators', { hosts: ' , \n ' }),
  row('hosts', "'local' with another host", { hosts: 'local,deploy@127.0.0.1:2222' }),
  row('hosts', 'a host given twice', { hosts: 'deploy@127.0.0.1:2222\ndeploy@127.0.0.1:2222' }),
  row('hosts', "'user@'", { hosts: 'user@' }),
  row('hosts', 'port 0', { hosts: 'deploy@web1:0' }),
  row('hosts', 'port 65536', { hosts: 'deploy@web1:65536' }),
  row('hosts', "port '22x'", { hosts: 'deploy@web1:22x' }),
  row('hosts', 'an empty port', { hosts: 'deploy@web1:' }),
  row('hosts', 'an ssh option', { hosts: '-oProxyCommand=x' }),
  row('hosts', 'a space', { hosts: 'a b' }),
  row('hosts', 'an unclosed IPv6 bracket', { hosts: '[::1' }),
  row('hosts', 'brackets around a name', { hosts: 'deploy@[web1]' }),
  row('hosts', 'a bad user in the entry', { hosts: 'root;id@web1' }),
  row('hosts', 'two @', { hosts: 'a@b@web1' }),
  row('hosts', 'an underscore in the name', { hosts: 'deploy@web_1' }),
  row('hosts', 'no user anywhere', { hosts: 'web1', user: '' }),
  row('port', "'abc'", { port: 'abc' }),
  row('port', "'0'", { port: '0' }),
  row('port', "'65536'", { port: '65536' }),
  row('user', "'-x'", { user: '-x' }),
  row('user', "'root;id'", { user: 'root;id' }),
  row('user', 'a leading digit', { user: '1deploy' }),
  // repository, ref
  row('repository', "'-u'", { repository: '-u' }),
  row('repository', 'a relative path', { repository: 'relative/path' }),
  row('repository', "a './' path", { repository: './app.git' }),
  row('repository', 'a bare name', { repository: 'app' }),
  row('repository', "a '~/' path", { repository: '~/app.git' }),
  row('repository', 'a slash before the colon', { repository: 'srv/git:app' }),
  row('repository', 'scp form without a path', { repository: 'git@github.com:' }),
  row('repository', 'a scheme git does not fetch over', { repository: 'javascript://x/app.git' }),
  row('repository', 'ext:: with a command', { repository: 'ext::sh -c id' }),
  row('repository', 'ext:: remote helper', { repository: 'ext::sh' }),
  row('repository', 'fd:: remote helper', { repository: 'fd::17' }),
  row('repository', 'a space', { repository: 'https://example.com/a b.git' }),
  row('repository', 'a newline', { repository: 'https://example.com/a\nb.git' }),
  row('repository', 'a backtick', { repository: 'https://example.com/`id`.git' }),
  row('ref', "'a..b'", { ref: 'a..b' }),
  row('ref', "'-x'", { ref: '-x' }),
  row('ref', "'x.lock'", { ref: 'x.lock' }),
  row('ref', "'@{1}'", { ref: '@{1}' }),
  row('ref', "'main@{1}'", { ref: 'main@{1}' }),
  row('ref', "'a//b'", { ref: 'a//b' }),
  row('ref', 'a trailing /', { ref: 'main/' }),
  row('ref', 'a space', { ref: 'v1 v2' }),
  row('ref', "'HEAD^{}'", { ref: 'HEAD^{}' }),
  // env
  row('env', 'a name starting with a digit', { env: `1X=${SECRET}` }),
  row('env', 'a TAGFLIP_ name', { env: `TAGFLIP_RELEASE=${SECRET}` }),
  row('env', 'a name given twice', { env: `A=1\nA=${SECRET}` }),
  row('env', "a line without '='", { env: `A=1\n${SECRET}` }),
  row('env', 'an empty name', { env: `=${SECRET}` }),
  row('env', 'a dash in the name', { env: `A-B=${SECRET}` }),
  row('env', 'a control character in the value', { env: `A=${SECRET}\u0001` }),
  row('env', 'a carriage return inside the value', { env: `A=${SECRET}\rX` }),
  row('env', 'an escape in the value', { env: `A=\u001b[2J${SECRET}` }),
  row('secret-env', 'a name starting with a digit', { 'secret-env': `1X=${SECRET}` }),
  row('secret-env', "a line without '='", { 'secret-env': `A=1\n${SECRET}` }),
  row('secret-env', 'a control character in the value', { 'secret-env': `A=${SECRET}\u0001` }),
  row('secret-env', 'a TAGFLIP_ name', { 'secret-env': `TAGFLIP_HOST=${SECRET}` }),
  row('secret-env', 'a name env sets too', { env: 'TOKEN=public', 'secret-env': `TOKEN=${SECRET}` }),
  row('env', 'DEL in the value', { env: `A=${SECRET}\u007f` }),
  // numbers and booleans
  row('command-timeout', "'0'", { 'command-timeout': '0' }),
  row('command-timeout', "'-1'", { 'command-timeout': '-1' }),
  row('command-timeout', "'1.5'", { 'command-timeout': '1.5' }),
  row('command-timeout', "'abc'", { 'command-timeout': 'abc' }),
  row('command-timeout', 'huge', { 'command-timeout': '99999999999999999999' }),
  row('command-timeout', 'more than a week', { 'command-timeout': '604801' }),
  row('command-timeout', "'1e3'", { 'command-timeout': '1e3' }),
  row('connect-timeout', "'601'", { 'connect-timeout': '601' }),
  row('connect-timeout', "'0'", { 'connect-timeout': '0' }),
  row('dry-run', "'yes'", { 'dry-run': 'yes' }),
  row('insecure-ignore-host-key', "'1'", { 'insecure-ignore-host-key': '1' }),
  row('command', "'Rollback' (commands are lower case)", { command: 'Rollback' }),
  row('command', "'undeploy'", { command: 'undeploy' }),
  row('lock-timeout', "'-1'", { 'lock-timeout': '-1' }),
  row('lock-timeout', 'more than a day', { 'lock-timeout': '86401' }),
  row('lock-timeout', "'1.5'", { 'lock-timeout': '1.5' }),
  row('lock-timeout', "'abc'", { 'lock-timeout': 'abc' }),
  row('keep-releases', "'0'", { 'keep-releases': '0' }),
  row('keep-releases', "'-1'", { 'keep-releases': '-1' }),
  row('keep-releases', "'1001'", { 'keep-releases': '1001' }),
  row('keep-releases', "'2.5'", { 'keep-releases': '2.5' }),
  row('keep-releases', "'all'", { 'keep-releases': 'all' }),
  row('keep-releases', 'huge', { 'keep-releases': '99999999999' }),
  row('rollback-to', 'command substitution', { command: 'rollback', 'rollback-to': '$(id)' }),
  row('rollback-to', "'current'", { command: 'rollback', 'rollback-to': 'current' }),
  row('rollback-to', "'..'", { command: 'rollback', 'rollback-to': '..' }),
  row('rollback-to', 'a path', { command: 'rollback', 'rollback-to': '../v1' }),
  row('rollback-to', 'a leading -', { command: 'rollback', 'rollback-to': '-v1' }),
  row('rollback-to', 'a space', { command: 'rollback', 'rollback-to': 'v1 v2' }),
  row('command', 'shell text', { command: 'deploy; id' }),
  row('build', 'a NUL byte', { build: 'make\0' }),
  row('migrate', 'a NUL byte', { migrate: 'bin/evolve\0' }),
  row('migrate', 'longer than 64 KiB', { migrate: 'x'.repeat(65537) }),
  // shared paths, data
  row('shared-dirs', 'an absolute path', { 'shared-dirs': '/var/log' }),
  row('shared-dirs', "a '..' segment", { 'shared-dirs': 'var/../../etc' }),
  row('shared-files', 'shell text', { 'shared-files': 'etc/$(id).cfg' }),
  row('shared-files', 'nested in a shared dir', { 'shared-dirs': 'etc', 'shared-files': 'etc/app.cfg' }),
  row('data-path', 'relative', { 'data-path': 'data' }),
  row('data-path', "'/'", { 'data-path': '/' }),
  row('data-path', "a '..' segment", { 'data-path': '/srv/app/../../etc' }),
  row('data-path', 'a space', { 'data-path': '/srv/my data' }),
  row('rollback-data', "'yes'", { 'rollback-data': 'yes' }),
  row('rollback-data', "'0'", { 'rollback-data': '0' }),
  row('build', 'longer than 64 KiB', { build: 'x'.repeat(65537) }),
  // private key and passphrase
  row('private-key', 'missing for an ssh host', { 'private-key': '' }),
  row('private-key', 'only whitespace', { 'private-key': ' \n ' }),
  row('private-key', 'garbage text', { 'private-key': `not a key ${SECRET}` }),
  row('private-key', 'a public key', { 'private-key': () => host.publicLine }),
  row('private-key', 'a BEGIN line around garbage', {
    'private-key': `-----BEGIN OPENSSH PRIVATE KEY-----\n${SECRET}\n-----END OPENSSH PRIVATE KEY-----\n`,
  }),
  row('passphrase', 'an encrypted key without passphrase', { 'private-key': () => encrypted.privateKey }),
  row('passphrase', 'an encrypted key with the wrong passphrase', { 'private-key': () => encrypted.privateKey, passphrase: SECRET }),
  // host keys
  row('known-hosts', 'a line without a key', known(() => '[127.0.0.1]:2222 ssh-ed25519')),
  row('known-hosts', 'an unknown key type', known(() => `[127.0.0.1]:2222 ssh-foo ${host.blob}`)),
  row('known-hosts', 'a key that is not base64', known(() => '[127.0.0.1]:2222 ssh-ed25519 AAAA$$$$not-base64')),
  row('known-hosts', 'a key of another type than named', known(() => `[127.0.0.1]:2222 ssh-rsa ${host.blob}`)),
  row('known-hosts', 'an unknown marker', known(() => `@trusted [127.0.0.1]:2222 ssh-ed25519 ${host.blob}`)),
  row('known-hosts', 'a line for another host only', known(() => `[10.0.0.1]:2222 ssh-ed25519 ${host.blob}`)),
  row('known-hosts', 'a line for another port only', known(() => `127.0.0.1 ssh-ed25519 ${host.blob}`)),
  row('known-hosts', 'only a revoked line for the host', known(() => `@revoked [127.0.0.1]:2222 ssh-ed25519 ${host.blob}`)),
  row('known-hosts', 'only a negated pattern', known(() => `![127.0.0.1]:2222,* ssh-ed25519 ${host.blob}`)),
  row('known-hosts', 'missing, no fingerprint', { 'known-hosts': '' }),
  row('known-hosts', 'only comments', { 'known-hosts': '# nothing here\n' }),
  row('host-fingerprint', "'MD5:aa:bb'", { 'host-fingerprint': 'MD5:aa:bb' }),
  row('host-fingerprint', 'too short', { 'host-fingerprint': 'SHA256:abc' }),
  row('host-fingerprint', 'padded base64', { 'host-fingerprint': `SHA256:${'A'.repeat(42)}=` }),
];

function resolve(overrides: Overrides): Record<string, string> {
  return Object.fromEntries(Object.entries(overrides).map(([name, value]) => [name, typeof value === 'function' ? value() : value]));
}

describe('parseSettings: hostile and malformed values', () => {
  test('the table has at least 30 rows', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(30);
  });

  test.each(HOSTILE.map((r) => [r.input, r.what, r] as const))('%s: %s is refused', (input, _what, r) => {
    const raw = { ...sshInputs(), ...resolve(r.overrides) };
    const error = inputErrorOf(() => parseSettings(raw, r.context ?? TAG_CONTEXT));
    expect(error.input).toBe(input);
    expect(error.message.startsWith(`${input}: `)).toBe(true);
    expect(error.message).toContain('; expected ');
  });

  test('a bad value is shown escaped, so it cannot forge a log line', () => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), release: 'v1\n::error::forged' }, TAG_CONTEXT));
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain(String.raw`'v1\n::error::forged'`);
  });

  test('a long bad value is cut at 80 characters', () => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), release: `-${'x'.repeat(200)}` }, TAG_CONTEXT));
    expect(error.message).toContain(`'-${'x'.repeat(79)}…'`);
    expect(error.message).not.toContain('x'.repeat(80));
  });

  test('the reason names the context when the release is missing', () => {
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), release: '' }, { refType: 'branch', refName: 'main' })).message).toBe(
      'release: not given, and this run was triggered by a branch (main); expected a release name, or a run triggered by a tag push (the tag is then the release)',
    );
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), release: '' }, {})).message).toContain('triggered by no tag');
  });

  test('the known-hosts message names the host it needs', () => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), 'known-hosts': `127.0.0.1 ssh-ed25519 ${host.blob}` }, TAG_CONTEXT));
    expect(error.message).toBe(
      "known-hosts: no line names [127.0.0.1]:2222; expected known_hosts lines from 'ssh-keyscan -p 2222 127.0.0.1' (checked against the server), or host-fingerprint",
    );
  });

  test('a malformed known_hosts line is reported with its line number', () => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), 'known-hosts': `# c\n${knownHostsLine()}\nbroken-line\n` }, TAG_CONTEXT));
    expect(error.message).toContain("line 3 is not 'hosts key-type base64-key'");
  });
});

describe('secrets never appear in error messages', () => {
  const envRows = HOSTILE.filter((r) => r.input === 'env' || r.input === 'secret-env');
  test.each(envRows.map((r) => [r.input, r.what, r] as const))('%s: %s', (_input, _what, r) => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), ...resolve(r.overrides) }, TAG_CONTEXT));
    expect(error.message).not.toContain(SECRET);
    expect(error.message).toMatch(/line \d|env sets too/);
  });

  test('env errors name the line and the variable, not the value', () => {
    expect(inputErrorOf(() => parseEnv(`A=1\nB=2\nA=${SECRET}`)).message).toBe('env: line 3 sets A a second time; expected each name once');
    expect(inputErrorOf(() => parseEnv(`X=${SECRET}\u0007`)).message).toBe('env: line 1 (X) has a control character in its value; expected printable values');
  });

  const keyRows = HOSTILE.filter((r) => r.input === 'private-key' || r.input === 'passphrase');
  test.each(keyRows.map((r) => [r.input, r.what, r] as const))('%s: %s', (_input, _what, r) => {
    const raw = { ...sshInputs(), ...resolve(r.overrides) };
    const error = inputErrorOf(() => parseSettings(raw, TAG_CONTEXT));
    const secrets = [SECRET, raw.passphrase, ...raw['private-key'].split('\n').map((line) => line.trim())].filter((text) => text && text.length > 8);
    for (const secret of secrets) expect(error.message).not.toContain(secret);
  });

  test('passphrase messages tell a missing passphrase from a wrong one', () => {
    const missing = inputErrorOf(() => parseSettings({ ...sshInputs(), 'private-key': encrypted.privateKey }, TAG_CONTEXT));
    expect(missing.message).toBe('passphrase: not given, but private-key is encrypted; expected its passphrase in the passphrase input');
    const wrong = inputErrorOf(() => parseSettings({ ...sshInputs(), 'private-key': encrypted.privateKey, passphrase: 'wrong' }, TAG_CONTEXT));
    expect(wrong.message).toBe('passphrase: does not decrypt private-key; expected the passphrase of private-key');
  });

  test('a key of another host does not leak into the message either', () => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), 'private-key': `${other.privateKey.slice(0, 200)}` }, TAG_CONTEXT));
    expect(error.input).toBe('private-key');
    for (const line of other.privateKey.split('\n').slice(1, 3)) expect(error.message).not.toContain(line.slice(0, 20));
  });
});

describe('secret-env', () => {
  test('given to the hooks after env, its values marked secret; env values are not', () => {
    const settings = parseSettings({ ...sshInputs(), env: 'APP_ENV=production\nWORKERS=4', 'secret-env': `API_TOKEN=${SECRET}\n# a comment\nDB_PASSWORD= spaced ` }, TAG_CONTEXT);
    expect(settings.env).toEqual([
      { name: 'APP_ENV', value: 'production' },
      { name: 'WORKERS', value: '4' },
      { name: 'API_TOKEN', value: SECRET, secret: true },
      { name: 'DB_PASSWORD', value: ' spaced ', secret: true },
    ]);
  });

  test('a name in both env and secret-env is refused, naming secret-env and the name, not the value', () => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), env: 'A=1\nTOKEN=x', 'secret-env': `TOKEN=${SECRET}` }, TAG_CONTEXT));
    expect(error.message).toBe('secret-env: sets TOKEN, which env sets too; expected each name in env or in secret-env, not in both');
  });

  test('its own errors name secret-env', () => {
    expect(inputErrorOf(() => parseEnv(`A=1\nA=${SECRET}`, 'secret-env')).message).toBe('secret-env: line 2 sets A a second time; expected each name once');
  });
});
