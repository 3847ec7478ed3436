/** What the tests of the rendered scripts share: a deploy of v3.0 over v2.9 with every input set, its records, and the flip of a deploy and of a rollback. */
import type { LockHolder, Manifest } from '../../src/core/manifest.js';
import type { OpenOptions, ScriptContext } from '../../src/remote/scripts.js';
import { TAG } from './script-runner.js';

export const CONTEXT: ScriptContext = {
  tag: TAG,
  host: 'deploy@web1.example.com',
  deployPath: '/srv/karl/customer-a',
  release: 'v3.0',
  previousRelease: 'v2.9',
  repository: 'https://github.com/example/app.git',
  ref: 'v3.0',
  build: 'python3 -m venv .\nbin/pip install -e .',
  sharedDirs: ['var/log', 'var/mailout'],
  sharedFiles: ['etc/production.cfg'],
  migrate: 'bin/evolve --data "$TAGFLIP_DATA_PATH"',
  dataPath: '/srv/karl/customer-a/data',
  commandTimeout: 3600,
  env: [
    { name: 'DATABASE_URL', value: 'postgres://app:hunter2@db/app', secret: true },
    { name: 'EMPTY', value: '' },
  ],
  actor: 'octocat',
  runUrl: 'https://github.com/example/app/actions/runs/42',
};

export function building(context: ScriptContext = CONTEXT): Manifest {
  return {
    release: context.release,
    state: 'building',
    commit: '',
    dataRelease: '',
    previousRelease: context.previousRelease,
    started: '2024-06-01T10:00:00Z',
    finished: '',
    activated: '',
    exitCode: null,
    failedStep: '',
    actor: context.actor,
    runUrl: context.runUrl,
    host: context.host,
  };
}

export const previousManifest: Manifest = {
  ...building({ ...CONTEXT, release: 'v2.9', previousRelease: 'v2.8' }),
  state: 'active',
  commit: '1111111111111111111111111111111111111111',
  finished: '2024-05-01T10:05:00Z',
  activated: '2024-05-01T10:05:01Z',
};

export const readyManifest: Manifest = { ...building(), state: 'ready', commit: 'abcdef0123456789abcdef0123456789abcdef01', finished: '2024-06-01T10:04:00Z' };

/** The release rolled away from, as a rollback hands it to the flip script. */
export const rolledBackManifest: Manifest = { ...readyManifest, state: 'rolled-back', activated: '2024-06-01T10:04:01Z' };

export const HOLDER: LockHolder = {
  command: 'deploy',
  release: 'v3.0',
  actor: 'octocat',
  runUrl: 'https://github.com/example/app/actions/runs/42',
  host: 'deploy@web1.example.com',
  since: '',
};

export const openOptions = (lock: OpenOptions['lock'] = 'yes'): OpenOptions => ({ lock, lockTimeout: 300, holder: HOLDER });

/** A deploy of v3.0 with migrate: data/current flips from v2.9 to v3.0 first. */
export const flipRecords = {
  active: { ...readyManifest, dataRelease: 'v3.0' },
  departed: { ...previousManifest, state: 'inactive' as const },
  event: 'deploy' as const,
  dataTarget: 'v3.0',
  dataBefore: 'v2.9',
};
/** The same without migrate: data/current is left alone. */
export const flipRecordsNoData = { ...flipRecords, active: readyManifest, dataTarget: '', dataBefore: '' };

/** The context of a rollback from v3.0 (current) to v2.9: the scripts see the target as the release. */
export const ROLLBACK_CONTEXT: ScriptContext = { ...CONTEXT, release: 'v2.9', previousRelease: 'v3.0' };
export const rollbackRecords = {
  active: { ...previousManifest, state: 'inactive' as const },
  departed: rolledBackManifest,
  event: 'rollback' as const,
  dataTarget: 'v2.9',
  dataBefore: 'v3.0',
};
