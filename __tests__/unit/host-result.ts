import type { HostResult } from '../../src/core/result.js';

/** A deployed host's result (v2.9 -> v3.0 on deploy@web1), with `changes` applied. */
export function host(changes: Partial<HostResult> = {}): HostResult {
  return {
    host: 'deploy@web1',
    status: 'deployed',
    release: 'v3.0',
    previousRelease: 'v2.9',
    releasePath: '/srv/app/releases/v3.0',
    dataRelease: '',
    previousDataRelease: '',
    buildSeconds: 12.345,
    totalSeconds: 14,
    error: '',
    ...changes,
  };
}
