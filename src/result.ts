/** What a run reports, whichever front end started it. */

export type HostStatus = 'deployed' | 'unchanged' | 'failed' | 'dry-run';

export interface HostResult {
  host: string;
  status: HostStatus;
  /** The release current when the run ended. */
  release: string;
  /** The release current before: the rollback target. */
  previousRelease: string;
  releasePath: string;
  buildSeconds: number;
  totalSeconds: number;
  error: string;
}

export interface RunResult {
  status: HostStatus;
  release: string;
  previousRelease: string;
  releasePath: string;
  hosts: HostResult[];
}

/** Fold per-host results into the step's outputs. */
export function summarize(hosts: HostResult[]): RunResult {
  const first = hosts[0];
  const failed = hosts.find((host) => host.status === 'failed');
  return {
    status: failed ? 'failed' : first.status,
    release: first.release,
    previousRelease: first.previousRelease,
    releasePath: first.releasePath,
    hosts,
  };
}

/** The job summary: one Markdown table, one row per host. */
export function renderSummary(result: RunResult, title: string): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ') || '–';
  const rows = result.hosts.map((host) =>
    [host.host, host.status, host.release, host.previousRelease, `${host.buildSeconds.toFixed(1)} s`, `${host.totalSeconds.toFixed(1)} s`, host.error]
      .map(cell)
      .join(' | '),
  );
  return [
    `### ${title}: ${result.status}`,
    '',
    '| host | status | release | previous | build | total | error |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((row) => `| ${row} |`),
    '',
  ].join('\n');
}

/** The `hosts` output: one object per host, keys named like the step's outputs. */
export function hostsOutput(hosts: readonly HostResult[]): string {
  return JSON.stringify(
    hosts.map((host) => ({
      host: host.host,
      status: host.status,
      release: host.release,
      'previous-release': host.previousRelease,
      'release-path': host.releasePath,
      'build-seconds': Math.round(host.buildSeconds * 10) / 10,
      'total-seconds': Math.round(host.totalSeconds * 10) / 10,
      error: host.error,
    })),
  );
}
