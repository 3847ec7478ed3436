/** What the settings tests share: a valid ssh deploy (every test changes one thing of it) and real keys for it. */
import { afterAll, beforeAll } from '@jest/globals';
import type { RunContext } from '../../src/core/inputs.js';
import type { Settings } from '../../src/core/settings.js';
import { type GeneratedKey, KeyDir } from './keygen.js';

export const TAG_CONTEXT: RunContext = { refType: 'tag', refName: 'v3.0' };
export const SECRET = 'S3cr3t-Value-42';

const keys = new KeyDir();
export let client: GeneratedKey;
export let host: GeneratedKey;
export let other: GeneratedKey;
export let encrypted: GeneratedKey;
export let rsaPem: GeneratedKey;

/** Makes the keys before the calling file's tests, and removes them after. */
export function generateKeys(): void {
  beforeAll(() => {
    client = keys.generate('client');
    host = keys.generate('host');
    other = keys.generate('other');
    encrypted = keys.generate('encrypted', { passphrase: 'secretpass' });
    rsaPem = keys.generate('rsa-pem', { type: 'rsa', pem: true });
  });
  afterAll(() => keys.cleanup());
}

export const knownHostsLine = () => `[127.0.0.1]:2222 ssh-ed25519 ${host.blob}`;

/** A valid ssh deploy; every table row changes one thing. */
export function sshInputs(): Record<string, string> {
  return {
    hosts: 'deploy@127.0.0.1:2222',
    'private-key': client.privateKey,
    'known-hosts': `${knownHostsLine()}\n`,
    'deploy-path': '/srv/karl/customer-a',
  };
}

export function expectedSsh(): Settings {
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
    migrateCheck: '',
    dataPath: '/srv/karl/customer-a/data',
    rollbackData: true,
    env: [],
    commandTimeout: 3600,
    connectTimeout: 30,
    lockTimeout: 300,
    keepReleases: 5,
    rollbackTo: '',
    forceBuild: false,
    canary: 0,
    canaryWait: 0,
    drift: false,
    driftIgnore: [],
    driftRecord: true,
    dryRun: false,
    actor: '',
    runUrl: '',
  };
}
