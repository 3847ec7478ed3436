/** What a run reports, whichever front end started it. */

import { type DriftReport, driftCounts, driftRow, renderDrift } from './drift.js';
import type { LockHolder, ReleaseState } from './manifest.js';
import { markdownText } from './markdown.js';
import type { StageName } from './stages.js';

export type HostStatus = 'deployed' | 'prepared' | 'unchanged' | 'rolled-back' | 'failed' | 'unknown' | 'dry-run';

/** One release on a host, as `command: status` reports it. */
export interface ReleaseInfo {
  release: string;
  /** unknown: a directory tagflip has no record of (made by hand or another tool); retention leaves it alone. */
  state: ReleaseState | 'unknown';
  commit: string;
  finished: string;
  actor: string;
  current: boolean;
  rollbackTarget: boolean;
  /** Made without tagflip, recorded when tagflip first flipped away from it. */
  adopted: boolean;
}

/** What `command: status` found on a host. */
export interface StatusReport {
  current: string;
  rollbackTarget: string;
  lockHolder: LockHolder | null;
  releases: ReleaseInfo[];
  /** With drift: true. */
  drift?: DriftReport;
}

export interface HostResult {
  host: string;
  status: HostStatus;
  /** The release current when the run ended; with status unknown, the release current before the flip whose answer never came. */
  release: string;
  /** With status unknown: the release current may be now (the flip was sent; its answer never came). */
  unconfirmedRelease?: string;
  /** The release current before: the rollback target. */
  previousRelease: string;
  releasePath: string;
  /** The data release data/current points to at the end, and the one before ('' without data). */
  dataRelease: string;
  previousDataRelease: string;
  buildSeconds: number;
  totalSeconds: number;
  error: string;
  /** With upload: the bytes sent to this host (only what changed, plus two lists). */
  uploadBytes?: number;
  /** Releases removed by retention during this run. */
  removed?: string[];
  /** With command: status. */
  report?: StatusReport;
  /** What the user must know even when all went well (e.g. data rolled back). */
  warnings?: string[];
  /** Why a person must look at this host now (NEEDS ATTENTION: what it runs, what failed). */
  attention?: string;
  /** With command: prepare, the release built (or found) ready here, waiting for its switch. */
  preparedRelease?: string;
  /** With canary: the stage this host was in (canary first, then rest). */
  stage?: StageName;
}

/** The step's outputs: a host's, folded over every host (summarize). */
export interface RunResult extends Pick<HostResult, 'status' | 'release' | 'previousRelease' | 'releasePath' | 'dataRelease' | 'previousDataRelease'> {
  /** False when the step must fail. */
  ok: boolean;
  hosts: HostResult[];
}

/** Fold per-host results into the step's outputs. */
export function summarize(hosts: HostResult[], command = 'deploy'): RunResult {
  // The outputs name what most hosts run; an unreachable host has nothing to say.
  const first = hosts.find((host) => host.release) ?? hosts[0];
  // Any host that needs attention, or failed, fails the step: failed wins over rolled-back.
  const failed = hosts.some((host) => host.status === 'failed');
  // A host whose flip went unanswered leaves the step's outcome unknown: that wins over everything.
  const unknown = hosts.some((host) => host.status === 'unknown');
  const rolledBack = hosts.some((host) => host.status === 'rolled-back');
  // With several hosts, the most telling status wins: one host deployed (or rolled back) means current changed.
  const deployed = command === 'deploy' && hosts.some((host) => host.status === 'deployed');
  // A prepare that built anywhere prepared the step, though the release is current on some host.
  const prepared = hosts.some((host) => host.status === 'prepared');
  const status = unknown ? 'unknown' : failed ? 'failed' : command === 'deploy' && rolledBack ? 'rolled-back' : deployed ? 'deployed' : rolledBack ? 'rolled-back' : prepared ? 'prepared' : first.status;
  return {
    // A deploy that ended rolled back (verify failed) failed, though every host is consistent.
    ok: !failed && !unknown && !(command === 'deploy' && rolledBack),
    status,
    release: first.release,
    previousRelease: first.previousRelease,
    releasePath: first.releasePath,
    dataRelease: first.dataRelease,
    previousDataRelease: first.previousDataRelease,
    hosts,
  };
}

/**
 * The job summary: one Markdown table, one row per host. Every text from a host
 * or an input (host, releases, errors, warnings, the title) is masked by `mask`
 * first, then escaped (markdownText): an escape could split a secret that the
 * masking of the finished text would then miss.
 */
export function renderSummary(result: RunResult, title: string, mask: (text: string) => string = (text) => text): string {
  const text = (value: string) => markdownText(mask(value));
  const cell = (value: string) => text(value) || '–';
  // A column for the bytes sent only when something was uploaded.
  const uploaded = result.hosts.some((host) => host.uploadBytes !== undefined);
  const sent = (host: HostResult) => (uploaded ? [host.uploadBytes === undefined ? '–' : `${(host.uploadBytes / 1e6).toFixed(1)} MB`] : []);
  const release = (host: HostResult) => (host.unconfirmedRelease ? `${host.release ? text(host.release) : '(none)'} or ${text(host.unconfirmedRelease)}` : cell(host.release));
  // A stage column with a canary, a prepared column after a prepare: only when they say something.
  const staged = result.hosts.some((host) => host.stage);
  const stage = (host: HostResult) => (staged ? [host.stage ?? '–'] : []);
  const preparing = result.hosts.some((host) => host.preparedRelease !== undefined);
  const preparedCell = (host: HostResult) => (preparing ? [cell(host.preparedRelease ?? '')] : []);
  // status and the figures are tagflip's own words: nothing to escape.
  const rows = result.hosts.map((host) =>
    [cell(host.host), ...stage(host), host.status, release(host), cell(host.previousRelease), ...preparedCell(host), `${host.buildSeconds.toFixed(1)} s`, ...sent(host), `${host.totalSeconds.toFixed(1)} s`, cell(host.error)].join(' | '),
  );
  const extra = (names: string[]) => ({ head: names.map((name) => ` ${name} |`).join(''), rule: names.map(() => ' --- |').join('') });
  const before = extra(staged ? ['stage'] : []);
  const after = extra(preparing ? ['prepared'] : []);
  const attention = result.hosts.filter((host) => host.attention).map((host) => text(host.host));
  return [
    `### ${text(title)}: ${result.status}${attention.length > 0 ? ` (NEEDS ATTENTION: ${attention.join(', ')})` : ''}`,
    '',
    `| host |${before.head} status | release | previous |${after.head} build |${uploaded ? ' sent |' : ''} total | error |`,
    `| --- |${before.rule} --- | --- | --- |${after.rule} --- |${uploaded ? ' --- |' : ''} --- | --- |`,
    ...rows.map((row) => `| ${row} |`),
    '',
    ...result.hosts.flatMap((host) => (host.attention ? [`> [!CAUTION]\n> ${text(host.attention)}\n`] : [])),
    ...result.hosts.flatMap((host) => (host.warnings ?? []).map((warning) => `> [!WARNING]\n> ${text(host.host)}: ${text(warning)}\n`)),
    ...driftSection(result.hosts, text),
  ].join('\n');
}

/** With status and drift: a table of each host's drift, then the paths of those that drifted. */
function driftSection(hosts: readonly HostResult[], text: (value: string) => string): string[] {
  const checked = hosts.filter((host) => host.report?.drift);
  if (checked.length === 0) return [];
  const state = (drift: DriftReport) => (drift.state === 'drifted' ? driftCounts(drift) : drift.state === 'clean' ? 'clean: as deployed' : `${drift.state}${drift.reason ? `: ${text(drift.reason)}` : ''}`);
  const rows = checked.map((host) => `| ${text(host.host)} | ${text(host.report!.drift!.release) || '–'} | ${state(host.report!.drift!)} |`);
  const details = checked.flatMap((host) => {
    const drift = host.report!.drift!;
    if (drift.state !== 'drifted') return [];
    const lines = renderDrift(drift).slice(1).map((line) => `- ${text(line.trim())}`);
    return [`<details><summary>${text(host.host)}: ${driftCounts(drift)}</summary>`, '', ...lines, '', '</details>', ''];
  });
  return ['#### Drift', '', '| host | release | drift |', '| --- | --- | --- |', ...rows, '', ...details];
}

/**
 * The job summary of a step that stopped before it had a result: `message`
 * (masked already) escaped like every text of renderSummary.
 */
export function renderStoppedSummary(title: string, message: string, refused: boolean): string {
  const remedy = refused ? '\n\nThe input was refused before any connection: nothing changed on any host.' : '';
  return `### ${markdownText(title)}: failed\n\n${markdownText(message)}${remedy}\n`;
}

/** The `hosts` output: one object per host, keys named like the step's outputs. */
export function hostsOutput(hosts: readonly HostResult[]): string {
  return JSON.stringify(hostRows(hosts));
}

/** The rows of the `hosts` output (the CLI's --json prints them as they are). */
export function hostRows(hosts: readonly HostResult[]): object[] {
  return hosts.map((host) => ({
    host: host.host,
    ...(host.stage ? { stage: host.stage } : {}),
    status: host.status,
    release: host.release,
    ...(host.preparedRelease !== undefined ? { 'prepared-release': host.preparedRelease } : {}),
    ...(host.unconfirmedRelease ? { 'unconfirmed-release': host.unconfirmedRelease } : {}),
    'previous-release': host.previousRelease,
    'release-path': host.releasePath,
    'data-release': host.dataRelease,
    'previous-data-release': host.previousDataRelease,
    'build-seconds': Math.round(host.buildSeconds * 10) / 10,
    'total-seconds': Math.round(host.totalSeconds * 10) / 10,
    ...(host.uploadBytes !== undefined ? { 'upload-bytes': host.uploadBytes } : {}),
    error: host.error,
    ...(host.attention ? { attention: host.attention } : {}),
    ...(host.removed && host.removed.length > 0 ? { removed: host.removed } : {}),
    ...(host.report?.drift ? { drift: driftRow(host.report.drift) } : {}),
  }));
}

/** The `releases` output of command: status: one object per host. */
export function releasesOutput(hosts: readonly HostResult[]): string {
  return JSON.stringify(releaseRows(hosts));
}

export function releaseRows(hosts: readonly HostResult[]): object[] {
  return hosts.map((host) => ({
    host: host.host,
    current: host.report?.current ?? '',
    'rollback-target': host.report?.rollbackTarget ?? '',
    lock: host.report?.lockHolder ?? null,
    releases: (host.report?.releases ?? []).map((release) => ({
      release: release.release,
      state: release.state,
      commit: release.commit,
      finished: release.finished,
      actor: release.actor,
      current: release.current,
      'rollback-target': release.rollbackTarget,
      adopted: release.adopted,
    })),
    error: host.error,
  }));
}

/** command: status in words, for the log and the CLI: one line per release, in columns. */
export function renderStatus(host: HostResult): string[] {
  const report = host.report;
  if (!report) {
    // The error itself is in the log already (both front ends log it as it happens): name what failed, once, and point there.
    const own = host.error.startsWith(`${host.host}: `) ? host.error.slice(host.host.length + 2) : host.error;
    const what = /^[\w -]*? failed\b/.exec(own)?.[0];
    return [`${host.host}: no status${what ? `: ${what} (the error is in the log)` : ''}`];
  }
  const lines = [
    `${host.host}: current ${report.current || '(none)'}, rollback target ${report.rollbackTarget || '(none)'}`,
    report.lockHolder ? `  locked by ${describeHolderBrief(report.lockHolder)}` : '  not locked',
  ];
  if (report.drift) lines.push(...renderDrift(report.drift));
  if (report.releases.length === 0) return lines;
  const rows = report.releases.map((release) => {
    const marks = [release.current && 'current', release.rollbackTarget && 'rollback target', release.adopted && 'adopted'].filter(Boolean).join(', ');
    // An empty value shows as '-', so that every column stays under its heading.
    return [release.release, release.state, release.commit.slice(0, 12), release.finished, release.actor].map((value) => value || '-').concat(marks ? `<- ${marks}` : '');
  });
  const table = [['release', 'state', 'commit', 'finished', 'actor', ''], ...rows];
  const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
  return lines.concat(table.map((row) => `  ${row.map((value, column) => value.padEnd(widths[column])).join('  ')}`.trimEnd()));
}

function describeHolderBrief(holder: LockHolder): string {
  return [holder.command, holder.release, holder.actor && `by ${holder.actor}`, holder.runUrl, holder.since && `since ${holder.since}`].filter(Boolean).join(' ');
}
