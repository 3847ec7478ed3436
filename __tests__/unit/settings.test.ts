import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseEnv } from '../../src/core/hook-env.js';
import { type RawInputs, type RunContext, parseSharedPaths } from '../../src/core/inputs.js';
import { type Settings, parseSettings } from '../../src/core/settings.js';
import { type GeneratedKey, KeyDir } from './keygen.js';
import { inputErrorOf } from './input-error.js';

const TAG_CONTEXT: RunContext = { refType: 'tag', refName: 'v3.0' };
const SECRET = 'S3cr3t-Value-42';

const keys = new KeyDir();
let client: GeneratedKey;
let host: GeneratedKey;
let other: GeneratedKey;
let encrypted: GeneratedKey;
let rsaPem: GeneratedKey;

beforeAll(() => {
  client = keys.generate('client');
  host = keys.generate('host');
  other = keys.generate('other');
  encrypted = keys.generate('encrypted', { passphrase: 'secretpass' });
  rsaPem = keys.generate('rsa-pem', { type: 'rsa', pem: true });
});
afterAll(() => keys.cleanup());

const knownHostsLine = () => `[127.0.0.1]:2222 ssh-ed25519 ${host.blob}`;

/** A valid ssh deploy; every table row changes one thing. */
function sshInputs(): Record<string, string> {
  return {
    hosts: 'deploy@127.0.0.1:2222',
    'private-key': client.privateKey,
    'known-hosts': `${knownHostsLine()}\n`,
    'deploy-path': '/srv/karl/customer-a',
  };
}

function expectedSsh(): Settings {
  const target = { kind: 'ssh', label: 'deploy@127.0.0.1:2222', host: '127.0.0.1', port: 2222, user: 'deploy' } as const;
  return {
    command: 'deploy',
    frontEnd: 'action',
    targets: [target],
    jumpHost: null,
    maxParallel: 16,
    activate: '',
    verify: '',
    auth: { kind: 'key', privateKey: client.privateKey, passphrase: '', from: 'the private-key input' },
    knownHosts: [{ patterns: ['[127.0.0.1]:2222'], keyType: 'ssh-ed25519', key: host.blob, revoked: false, line: 1 }],
    hostFingerprints: [],
    insecureIgnoreHostKey: false,
    deployPath: '/srv/karl/customer-a',
    release: 'v3.0',
    repository: '',
    ref: 'v3.0',
    upload: '',
    uploadExclude: [],
    build: '',
    sharedDirs: [],
    sharedFiles: [],
    migrate: '',
    dataPath: '/srv/karl/customer-a/data',
    rollbackData: true,
    env: [],
    commandTimeout: 3600,
    connectTimeout: 30,
    lockTimeout: 300,
    keepReleases: 5,
    rollbackTo: '',
    forceBuild: false,
    dryRun: false,
    actor: '',
    runUrl: '',
  };
}


describe('parseSettings: valid inputs', () => {
  test('local host with only the required inputs gets every default', () => {
    expect(parseSettings({ hosts: 'local', 'deploy-path': '/srv/app' }, TAG_CONTEXT)).toEqual({
      ...expectedSsh(),
      targets: [{ kind: 'local', label: 'local' }],
      auth: null,
      knownHosts: [],
      deployPath: '/srv/app',
      dataPath: '/srv/app/data',
    });
  });

  test('local host needs neither a key nor known-hosts', () => {
    const settings = parseSettings({ hosts: 'local', 'deploy-path': '/srv/app', release: 'v1' });
    expect(settings.targets[0]).toEqual({ kind: 'local', label: 'local' });
    expect(settings.release).toBe('v1');
    expect(settings.ref).toBe('v1');
  });

  test('ssh host with a real key and a known_hosts line', () => {
    expect(parseSettings(sshInputs(), TAG_CONTEXT)).toEqual(expectedSsh());
  });

  test('every input given explicitly', () => {
    const raw: RawInputs = {
      command: 'deploy',
      hosts: ' web1.example.com \n',
      user: 'deploy_user',
      port: '2200',
      'private-key': client.privateKey,
      passphrase: '',
      'known-hosts': `# scanned\n[web1.example.com]:2200 ssh-ed25519 ${host.blob} comment\n`,
      'host-fingerprint': '',
      'insecure-ignore-host-key': 'false',
      'deploy-path': '/srv/app/customer-a/',
      release: 'v1.2.3-rc.1+build.5',
      repository: 'https://github.com/example/app.git',
      ref: 'refs/tags/v1.2.3-rc.1',
      upload: '',
      'upload-exclude': '',
      build: 'make\nmake install\n',
      'shared-dirs': 'var/log\nvar/mailout/\n',
      'shared-files': ' etc/production.cfg , .env',
      migrate: 'bin/evolve --data "$TAGFLIP_DATA_PATH"',
      'data-path': '/var/lib/app/data/',
      'rollback-data': 'False',
      env: 'A=1\r\n# comment\n\nB=x y = z\nC=\nD=\ttab',
      'command-timeout': '60',
      'connect-timeout': '600',
      'lock-timeout': '0',
      'keep-releases': '1000',
      'rollback-to': 'v1.2.2',
      'force-build': 'true',
      'dry-run': 'TRUE',
    };
    const target = { kind: 'ssh', label: 'deploy_user@web1.example.com:2200', host: 'web1.example.com', port: 2200, user: 'deploy_user' };
    expect(parseSettings(raw, { actor: 'octo\ncat', runUrl: 'https://github.com/o/r/actions/runs/1' })).toEqual({
      command: 'deploy',
      frontEnd: 'action',
      targets: [target],
      jumpHost: null,
      maxParallel: 16,
      activate: '',
      verify: '',
      auth: { kind: 'key', privateKey: client.privateKey, passphrase: '', from: 'the private-key input' },
      knownHosts: [{ patterns: ['[web1.example.com]:2200'], keyType: 'ssh-ed25519', key: host.blob, revoked: false, line: 2 }],
      hostFingerprints: [],
      insecureIgnoreHostKey: false,
      deployPath: '/srv/app/customer-a',
      release: 'v1.2.3-rc.1+build.5',
      repository: 'https://github.com/example/app.git',
      ref: 'refs/tags/v1.2.3-rc.1',
      upload: '',
      uploadExclude: [],
      build: 'make\nmake install\n',
      sharedDirs: ['var/log', 'var/mailout'],
      sharedFiles: ['etc/production.cfg', '.env'],
      migrate: 'bin/evolve --data "$TAGFLIP_DATA_PATH"',
      dataPath: '/var/lib/app/data',
      rollbackData: false,
      env: [
        { name: 'A', value: '1' },
        { name: 'B', value: 'x y = z' },
        { name: 'C', value: '' },
        { name: 'D', value: '\ttab' },
      ],
      commandTimeout: 60,
      connectTimeout: 600,
      lockTimeout: 0,
      keepReleases: 1000,
      rollbackTo: 'v1.2.2',
      forceBuild: true,
      dryRun: true,
      actor: 'octo cat',
      runUrl: 'https://github.com/o/r/actions/runs/1',
    });
  });

  test('an explicit release wins over the tag, and ref defaults to it', () => {
    const settings = parseSettings({ ...sshInputs(), release: '2024-06-01.1' }, TAG_CONTEXT);
    expect([settings.release, settings.ref]).toEqual(['2024-06-01.1', '2024-06-01.1']);
  });

  test('a release of exactly 128 characters is accepted', () => {
    const release = `v${'1'.repeat(127)}`;
    expect(parseSettings({ ...sshInputs(), release }).release).toBe(release);
  });

  test.each([
    ['/srv/app/', '/srv/app'],
    ['/srv/app///', '/srv/app'],
    ['/srv/a.b_c+d@e%f,g=h:i~j-k', '/srv/a.b_c+d@e%f,g=h:i~j-k'],
    ['  /srv/app  ', '/srv/app'],
  ])('deploy-path %j is read as %j', (value, expected) => {
    expect(parseSettings({ ...sshInputs(), 'deploy-path': value }, TAG_CONTEXT).deployPath).toBe(expected);
  });

  test.each([
    ['web1', 'deploy', '', { label: 'deploy@web1', host: 'web1', port: 22, user: 'deploy' }],
    ['web1', 'deploy', '2222', { label: 'deploy@web1:2222', host: 'web1', port: 2222, user: 'deploy' }],
    ['ops@web1:2200', 'deploy', '2222', { label: 'ops@web1:2200', host: 'web1', port: 2200, user: 'ops' }],
    ['ops@web1:22', '', '', { label: 'ops@web1', host: 'web1', port: 22, user: 'ops' }],
    ['ops@[::1]:2200', '', '', { label: 'ops@[::1]:2200', host: '::1', port: 2200, user: 'ops' }],
    ['ops@[::1]', '', '', { label: 'ops@[::1]', host: '::1', port: 22, user: 'ops' }],
    ['web1,\n', 'deploy', '', { label: 'deploy@web1', host: 'web1', port: 22, user: 'deploy' }],
  ])('hosts %j (user %j, port %j) is %j', (hosts, user, port, expected) => {
    const raw = { ...sshInputs(), hosts, user, port, 'known-hosts': '', 'insecure-ignore-host-key': 'true' };
    expect(parseSettings(raw, TAG_CONTEXT).targets[0]).toEqual({ kind: 'ssh', ...expected });
  });

  test('host-fingerprint instead of known-hosts', () => {
    const fingerprint = `SHA256:${'A'.repeat(43)}`;
    const settings = parseSettings({ ...sshInputs(), 'known-hosts': '', 'host-fingerprint': `${fingerprint}, SHA256:${'b'.repeat(43)}` }, TAG_CONTEXT);
    // With one host, a bare fingerprint is bound to it.
    expect(settings.hostFingerprints).toEqual([
      { host: '127.0.0.1', port: 2222, fingerprint },
      { host: '127.0.0.1', port: 2222, fingerprint: `SHA256:${'b'.repeat(43)}` },
    ]);
    expect(settings.knownHosts).toEqual([]);
  });

  test('insecure-ignore-host-key instead of known-hosts', () => {
    const settings = parseSettings({ ...sshInputs(), 'known-hosts': '', 'insecure-ignore-host-key': 'true' }, TAG_CONTEXT);
    expect(settings.insecureIgnoreHostKey).toBe(true);
  });

  test('an encrypted key with its passphrase', () => {
    const settings = parseSettings({ ...sshInputs(), 'private-key': encrypted.privateKey, passphrase: 'secretpass' }, TAG_CONTEXT);
    expect(settings.auth).toEqual({ kind: 'key', privateKey: encrypted.privateKey, passphrase: 'secretpass', from: 'the private-key input' });
  });

  test('a PEM RSA key', () => {
    expect(rsaPem.privateKey).toContain('-----BEGIN RSA PRIVATE KEY-----');
    expect(parseSettings({ ...sshInputs(), 'private-key': rsaPem.privateKey }, TAG_CONTEXT).auth).toMatchObject({ kind: 'key', privateKey: rsaPem.privateKey });
  });

  test('a known_hosts line for port 22 names the bare host', () => {
    const raw = { ...sshInputs(), hosts: 'deploy@127.0.0.1', 'known-hosts': `127.0.0.1 ssh-ed25519 ${host.blob}` };
    expect(parseSettings(raw, TAG_CONTEXT).targets[0]).toEqual({ kind: 'ssh', label: 'deploy@127.0.0.1', host: '127.0.0.1', port: 22, user: 'deploy' });
  });

  test('a build of only whitespace is no build', () => {
    expect(parseSettings({ ...sshInputs(), build: ' \n\t\n' }, TAG_CONTEXT).build).toBe('');
  });

  test('booleans accept true/True/TRUE and false/False/FALSE', () => {
    for (const [value, expected] of [['true', true], ['True', true], ['TRUE', true], ['false', false], ['False', false], ['FALSE', false]] as const) {
      expect(parseSettings({ ...sshInputs(), 'dry-run': value }, TAG_CONTEXT).dryRun).toBe(expected);
    }
  });

  test('timeouts at their limits', () => {
    const settings = parseSettings({ ...sshInputs(), 'command-timeout': '604800', 'connect-timeout': '1' }, TAG_CONTEXT);
    expect([settings.commandTimeout, settings.connectTimeout]).toEqual([604800, 1]);
  });
});

describe('parseSettings: commands and the inputs of rollback, retention and the lock', () => {
  test.each(['rollback', 'status', 'prune'] as const)('%s needs no release: release and ref are empty, even on a tag push', (command) => {
    const settings = parseSettings({ ...sshInputs(), command }, TAG_CONTEXT);
    expect(settings).toEqual({ ...expectedSsh(), command, release: '', ref: '' });
  });

  test.each(['rollback', 'status', 'prune'] as const)('%s on a branch push (no tag) is fine', (command) => {
    const settings = parseSettings({ ...sshInputs(), command }, { refType: 'branch', refName: 'main' });
    expect([settings.command, settings.release, settings.ref]).toEqual([command, '', '']);
  });

  test.each(['rollback', 'status', 'prune'] as const)('%s ignores release and ref inputs', (command) => {
    const settings = parseSettings({ ...sshInputs(), command, release: 'v9', ref: 'main' }, TAG_CONTEXT);
    expect([settings.release, settings.ref]).toEqual(['', '']);
  });

  test('deploy is the default command', () => {
    expect(parseSettings(sshInputs(), TAG_CONTEXT).command).toBe('deploy');
    expect(parseSettings({ ...sshInputs(), command: ' deploy\n' }, TAG_CONTEXT).command).toBe('deploy');
  });

  test.each([
    ['', ''],
    ['previous', ''],
    [' previous ', ''],
    ['v2.9', 'v2.9'],
    ['2024-06-01.1', '2024-06-01.1'],
    ['v1.2.3-rc.1+build.5', 'v1.2.3-rc.1+build.5'],
    [`v${'1'.repeat(127)}`, `v${'1'.repeat(127)}`],
  ])('rollback-to %j is %j', (value, expected) => {
    expect(parseSettings({ ...sshInputs(), command: 'rollback', 'rollback-to': value }, TAG_CONTEXT).rollbackTo).toBe(expected);
  });

  test.each([
    ['', 300],
    ['0', 0],
    ['1', 1],
    ['86400', 86400],
  ])('lock-timeout %j is %j seconds', (value, expected) => {
    expect(parseSettings({ ...sshInputs(), 'lock-timeout': value }, TAG_CONTEXT).lockTimeout).toBe(expected);
  });

  test.each([
    ['', 5],
    ['1', 1],
    ['2', 2],
    ['1000', 1000],
    ['0007', 7],
  ])('keep-releases %j keeps %j', (value, expected) => {
    expect(parseSettings({ ...sshInputs(), command: 'prune', 'keep-releases': value }, TAG_CONTEXT).keepReleases).toBe(expected);
  });

  test('the error messages of the new inputs', () => {
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), 'keep-releases': '0' }, TAG_CONTEXT)).message).toBe(
      "keep-releases: '0' is not a number of releases to keep; expected a whole number from 1 to 1000 (current and the rollback target are always kept)",
    );
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), 'lock-timeout': '86401' }, TAG_CONTEXT)).message).toBe(
      "lock-timeout: '86401' is not a number of seconds; expected a whole number from 0 to 86400",
    );
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), command: 'rollback', 'rollback-to': 'a b' }, TAG_CONTEXT)).message).toBe(
      "rollback-to: 'a b' is not a release name; expected 'previous' (the default) or the name of a release on the host, e.g. v2.9",
    );
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), command: 'undeploy' }, TAG_CONTEXT)).message).toBe(
      "command: 'undeploy' is not a command; expected 'deploy', 'rollback', 'status', 'prune'",
    );
  });
});

describe('parseSharedPaths: shared-dirs and shared-files', () => {
  const EXPECTED = "relative paths inside the release, one a line, such as 'var/log' or 'etc/app.cfg'";
  const CHARACTERS = `${EXPECTED}; letters, digits and . _ + @ % , = : ~ - (no segment starting with -)`;

  test.each([
    ['nothing', '', '', { dirs: [], files: [] }],
    ['only blank lines and separators', ' \n\n , \r\n', ' ,, ', { dirs: [], files: [] }],
    ['one a line', 'var/log\nvar/mailout', 'etc/production.cfg', { dirs: ['var/log', 'var/mailout'], files: ['etc/production.cfg'] }],
    ['comma separated, in the order given', 'var/mailout, var/log', 'b.cfg,a.cfg', { dirs: ['var/mailout', 'var/log'], files: ['b.cfg', 'a.cfg'] }],
    ['trimmed, CRLF lines', '  var/log \r\n\tvar/run\t', '', { dirs: ['var/log', 'var/run'], files: [] }],
    ['trailing slashes dropped', 'var/log/\nvar/run///', '', { dirs: ['var/log', 'var/run'], files: [] }],
    ['dot files and every allowed character', '.cache', '.env\netc/a_b+c@d%e=f:g~h-i.cfg', { dirs: ['.cache'], files: ['.env', 'etc/a_b+c@d%e=f:g~h-i.cfg'] }],
    ['siblings that share a prefix are not nested', 'var/log\nvar/logs', 'var/log.cfg', { dirs: ['var/log', 'var/logs'], files: ['var/log.cfg'] }],
    ['a name that only starts like a reserved one', '.github', '.gitignore\nsub/.git', { dirs: ['.github'], files: ['.gitignore', 'sub/.git'] }],
    ['a path of exactly 512 characters', `${'a'.repeat(255)}/${'b'.repeat(256)}`, '', { dirs: [`${'a'.repeat(255)}/${'b'.repeat(256)}`], files: [] }],
  ])('%s', (_what, dirs, files, expected) => {
    expect(parseSharedPaths(dirs, files)).toEqual(expected);
  });

  test('through parseSettings: shared-dirs and shared-files land in the settings', () => {
    const settings = parseSettings({ ...sshInputs(), 'shared-dirs': 'var/log\n', 'shared-files': 'etc/app.cfg' }, TAG_CONTEXT);
    expect([settings.sharedDirs, settings.sharedFiles]).toEqual([['var/log'], ['etc/app.cfg']]);
  });

  const relative = (input: string, path: string) => `${input}: '${path}' is not a relative path inside the release; expected ${EXPECTED}`;
  const characters = (input: string, path: string) => `${input}: '${path}' has characters or segments a shared path cannot have; expected ${CHARACTERS}`;

  test.each([
    ['an absolute dir', '/var/log', '', relative('shared-dirs', '/var/log')],
    ['an absolute file', '', '/etc/passwd', relative('shared-files', '/etc/passwd')],
    ["'..'", '..', '', relative('shared-dirs', '..')],
    ["a leading '..'", '../shared', '', relative('shared-dirs', '../shared')],
    ["a '..' inside", 'var/../../etc', '', relative('shared-dirs', 'var/../../etc')],
    ["a trailing '..'", 'var/..', '', relative('shared-dirs', 'var/..')],
    ["'.'", '.', '', relative('shared-dirs', '.')],
    ["a '.' segment", '', 'etc/./app.cfg', relative('shared-files', 'etc/./app.cfg')],
    ['an empty segment', 'var//log', '', characters('shared-dirs', 'var//log')],
    ['a space', 'var/my log', '', characters('shared-dirs', 'var/my log')],
    ['command substitution', '', 'etc/$(id).cfg', characters('shared-files', 'etc/$(id).cfg')],
    ['backticks', '', '`id`', characters('shared-files', '`id`')],
    ['a semicolon', 'var;rm -rf ~', '', characters('shared-dirs', 'var;rm -rf ~')],
    ['a glob', 'var/*', '', characters('shared-dirs', 'var/*')],
    ['a glob bracket', 'var/[ab]', '', characters('shared-dirs', 'var/[ab]')],
    ['a question mark', 'var/lo?', '', characters('shared-dirs', 'var/lo?')],
    ['a quote', '', "it's.cfg", characters('shared-files', "it's.cfg")],
    ['a double quote', 'a"b', '', characters('shared-dirs', 'a\\"b')],
    ['a backslash', 'a\\b', '', characters('shared-dirs', 'a\\\\b')],
    ['a tab inside', 'var/\tlog', '', characters('shared-dirs', 'var/\\tlog')],
    ['a NUL', 'var/log\0', '', characters('shared-dirs', 'var/log\\u0000')],
    ['an escape sequence', '\u001b[2Jvar', '', characters('shared-dirs', '\\u001b[2Jvar')],
    ['a non-ASCII letter', 'vаr/log', '', characters('shared-dirs', 'vаr/log')],
    ['a leading -', '-rf', '', characters('shared-dirs', '-rf')],
    ['a segment starting with -', '', 'etc/--help', characters('shared-files', 'etc/--help')],
    ['513 characters', 'a'.repeat(513), '', characters('shared-dirs', `${'a'.repeat(80)}…`)],
    ['.git', '.git', '', `shared-dirs: '.git' is reserved; expected ${EXPECTED}`],
    ['inside .git', '', '.git/config', `shared-files: '.git/config' is reserved; expected ${EXPECTED}`],
    ['the source archive', '', '.tagflip-source.tar', `shared-files: '.tagflip-source.tar' is reserved; expected ${EXPECTED}`],
    ['a dir given twice', 'var/log\nvar/log/', '', "shared-dirs: 'var/log' is given twice; expected each path once, in shared-dirs or shared-files"],
    ['a path both a dir and a file', 'etc', 'etc', "shared-files: 'etc' is given twice; expected each path once, in shared-dirs or shared-files"],
    ['a dir inside a dir', 'var\nvar/log', '', `shared-dirs: 'var/log' is inside 'var'; expected ${EXPECTED}, none inside another`],
    ['a dir around an earlier dir', 'var/log\nvar', '', `shared-dirs: 'var/log' is inside 'var'; expected ${EXPECTED}, none inside another`],
    ['a file inside a dir', 'etc', 'etc/app.cfg', `shared-files: 'etc/app.cfg' is inside 'etc'; expected ${EXPECTED}, none inside another`],
    ['a file inside a file', '', 'etc/app.cfg\netc/app.cfg/x', `shared-files: 'etc/app.cfg/x' is inside 'etc/app.cfg'; expected ${EXPECTED}, none inside another`],
  ])('%s is refused', (_what, dirs, files, message) => {
    const error = inputErrorOf(() => parseSharedPaths(dirs, files));
    expect(error.message).toBe(message);
    expect(error.input).toBe(message.slice(0, message.indexOf(':')));
  });

  test('parseSettings refuses the same, naming the input, before anything else is used', () => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), 'shared-files': '../../etc/passwd' }, TAG_CONTEXT));
    expect(error.message).toBe(relative('shared-files', '../../etc/passwd'));
  });

  // The issue: "absolute paths and `..` are refused". '/' is absolute, but the trailing
  // slashes are stripped first, which leaves '', and an empty entry is skipped: `shared-dirs: /`
  // is silently ignored (nothing is shared) instead of refused.
  test.each(['/', '//', ' / '])('shared-dirs %j (the root, an absolute path) is refused, not ignored', (value) => {
    expect(inputErrorOf(() => parseSharedPaths(value, '')).input).toBe('shared-dirs');
  });
});

describe('parseSettings: data-path, migrate and rollback-data', () => {
  test.each([
    ['', '/srv/karl/customer-a/data'],
    ['  ', '/srv/karl/customer-a/data'],
    ['/var/lib/app/data', '/var/lib/app/data'],
    ['/var/lib/app/data///', '/var/lib/app/data'],
    ['/srv/karl/customer-a/data', '/srv/karl/customer-a/data'],
    [' /data ', '/data'],
  ])('data-path %j is %j', (value, expected) => {
    expect(parseSettings({ ...sshInputs(), 'data-path': value }, TAG_CONTEXT).dataPath).toBe(expected);
  });

  test('the default follows deploy-path, trailing slash and all', () => {
    expect(parseSettings({ ...sshInputs(), 'deploy-path': '/srv/x//' }, TAG_CONTEXT).dataPath).toBe('/srv/x/data');
  });

  test.each([
    ['relative', 'data', "data-path: 'data' is not an absolute path of plain characters"],
    ['$HOME', '$HOME/data', "data-path: '$HOME/data' is not an absolute path of plain characters"],
    ['a newline', '/srv/data\n/x', "data-path: '/srv/data\\n/x' is not an absolute path of plain characters"],
    ["'/'", '/', "data-path: '/' has an empty, '.', '..' or '-'-leading segment, or is '/'"],
    ["a '..' segment", '/srv/../etc', "data-path: '/srv/../etc' has an empty, '.', '..' or '-'-leading segment, or is '/'"],
    ["'//' inside", '/srv//data', "data-path: '/srv//data' has an empty, '.', '..' or '-'-leading segment, or is '/'"],
    ['a leading-dash segment', '/srv/-data', "data-path: '/srv/-data' has an empty, '.', '..' or '-'-leading segment, or is '/'"],
    ['1025 characters', `/${'d'.repeat(1024)}`, 'data-path: longer than 1024 characters'],
  ])('data-path %s is refused as data-path, like deploy-path', (_what, value, problem) => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), 'data-path': value }, TAG_CONTEXT));
    expect(error.input).toBe('data-path');
    expect(error.message).toBe(`${problem}; expected an absolute path such as '/srv/app/customer-a' (letters, digits and . _ + @ % , = : ~ - only)`);
  });

  // data-path is where data/releases/<tag> and data/current live. Set to deploy-path itself,
  // the migrate step's data copy is releases/<tag>, the release it has just built: the build
  // script removes it, copies the previous release's code (current/) in its place and flips
  // current to that. Nothing refuses such a data-path.
  test('data-path equal to deploy-path is refused', () => {
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), 'data-path': '/srv/karl/customer-a/' }, TAG_CONTEXT)).input).toBe('data-path');
  });

  test.each([
    ['', true],
    ['true', true],
    ['True', true],
    ['TRUE', true],
    ['false', false],
    ['False', false],
    ['FALSE', false],
    [' false\n', false],
  ])('rollback-data %j is %j', (value, expected) => {
    expect(parseSettings({ ...sshInputs(), command: 'rollback', 'rollback-data': value }, TAG_CONTEXT).rollbackData).toBe(expected);
  });

  test.each(['yes', 'no', '0', '1', 'on', 'tru', 'true false'])('rollback-data %j is refused', (value) => {
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), 'rollback-data': value }, TAG_CONTEXT)).message).toBe(
      `rollback-data: '${value}' is not a boolean; expected 'true' or 'false'`,
    );
  });

  test('migrate is kept as given (a shell script); only whitespace is no migrate', () => {
    const script = '  bin/evolve --data "$TAGFLIP_DATA_PATH"\n';
    expect(parseSettings({ ...sshInputs(), migrate: script }, TAG_CONTEXT).migrate).toBe(script);
    expect(parseSettings({ ...sshInputs(), migrate: ' \n\t' }, TAG_CONTEXT).migrate).toBe('');
  });
});

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

describe('repository: the forms the host can fetch', () => {
  test.each([
    'https://github.com/acme/app.git',
    'http://git.internal/app.git',
    'ssh://git@github.com:22/acme/app.git',
    'git://git.internal/app.git',
    'git+ssh://git@github.com/acme/app.git',
    'file:///srv/git/app.git',
    'git@github.com:acme/app.git',
    'github.com:acme/app.git',
    'git@[2001:db8::1]:acme/app.git',
    '/srv/git/app.git',
  ])('%s is accepted as given', (repository) => {
    expect(parseSettings({ ...sshInputs(), repository }, TAG_CONTEXT).repository).toBe(repository);
  });

  test('a relative path is refused before connecting, naming the input and the forms', () => {
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), repository: 'relative/path' }, TAG_CONTEXT)).message).toBe(
      "repository: 'relative/path' is a relative path, which the host would resolve against an unknown directory; expected a git URL the host can fetch: 'https://…', 'ssh://…', 'file:///path', 'git@host:path', or an absolute path on the host such as '/srv/git/app.git'",
    );
  });
});

describe('upload', () => {
  const base = { hosts: 'local', 'deploy-path': '/srv/app', release: 'v1' };

  test('relative to the workspace, absolute as given; upload-exclude as lines', () => {
    const settings = parseSettings({ ...base, upload: 'build/', 'upload-exclude': 'node_modules/\n# comment\n\n*.log\r\n' }, { workspace: '/home/runner/work/app/app' });
    expect(settings.upload).toBe('/home/runner/work/app/app/build');
    expect(settings.uploadExclude).toEqual(['node_modules/', '*.log']);
    expect(parseSettings({ ...base, upload: '/tmp/site/../dist' }).upload).toBe('/tmp/dist');
  });

  test('refused together with repository, naming the input', () => {
    expect(() => parseSettings({ ...base, upload: 'dist', repository: 'https://example.com/app.git' })).toThrow(
      "upload: is set together with repository (https://example.com/app.git); a release has one source; expected either upload (files from the runner) or repository (fetched by each host), not both",
    );
  });

  test('ignored by the commands that ship nothing', () => {
    expect(parseSettings({ ...base, command: 'status', upload: 'dist' }).upload).toBe('');
  });
});
