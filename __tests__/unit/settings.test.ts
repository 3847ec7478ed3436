import { describe, expect, test } from '@jest/globals';
import type { RawInputs } from '../../src/core/inputs.js';
import { parseSettings } from '../../src/core/settings.js';
import { inputErrorOf } from './input-error.js';
import { TAG_CONTEXT, client, host, encrypted, rsaPem, generateKeys, sshInputs, expectedSsh } from './settings-fixtures.js';

generateKeys();

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
      'migrate-check': 'bin/evolve --check',
      'data-path': '/var/lib/app/data/',
      'rollback-data': 'False',
      env: 'A=1\r\n# comment\n\nB=x y = z\nC=\nD=\ttab',
      'command-timeout': '60',
      'connect-timeout': '600',
      'lock-timeout': '0',
      'keep-releases': '1000',
      'rollback-to': 'v1.2.2',
      'force-build': 'true',
      'drift-record': 'false',
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
      migrateCheck: 'bin/evolve --check',
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
      canary: 0,
      canaryWait: 0,
      drift: false,
      driftIgnore: [],
      driftRecord: false,
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
      "command: 'undeploy' is not a command; expected 'deploy', 'prepare', 'rollback', 'status', 'prune'",
    );
  });
});
