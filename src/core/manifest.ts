/** The release record kept on each host under .tagflip/. */

export type ReleaseState = 'building' | 'ready' | 'active' | 'inactive' | 'failed' | 'rolled-back';

const STATES: readonly ReleaseState[] = ['building', 'ready', 'active', 'inactive', 'failed', 'rolled-back'];

/** States of a release that may be activated. */
export const COMPLETE_STATES: readonly ReleaseState[] = ['ready', 'active', 'inactive'];

/**
 * What a release was made from (SPEC step 4: one release name, one content):
 * a git ref and the commit it resolved to, or the SHA-256 of an upload's
 * content list. Releases whose build fetched the code itself have none.
 */
export type ReleaseSource = { kind: 'git'; ref: string; commit: string } | { kind: 'upload'; sha256: string };

export interface Manifest {
  release: string;
  state: ReleaseState;
  commit: string;
  /** Absent in records of releases built without a source tagflip knows, and in those of older tagflips. */
  source?: ReleaseSource;
  dataRelease: string;
  /** Set when migrate-check said the data was up to date: dataRelease is the one that was current, used with no copy and no migration. */
  dataReused?: true;
  previousRelease: string;
  started: string;
  finished: string;
  activated: string;
  exitCode: number | null;
  failedStep: string;
  actor: string;
  runUrl: string;
  host: string;
  /**
   * Set on a release tagflip did not build but found current on its first flip
   * (made by hand, by Capistrano): when it was adopted. Absent otherwise.
   */
  adopted?: string;
}

export interface HistoryEntry {
  time: string;
  /** adopt: a release made without tagflip was current before this host's first flip (see adopt.ts). */
  event: 'adopt' | 'deploy' | 'rollback' | 'prune';
  status: string;
  release: string;
  previousRelease: string;
  host: string;
  actor: string;
  runUrl: string;
  exitCode?: number | null;
  failedStep?: string;
  /** With event prune: the releases removed (directory and record, or only the record of a failed one). */
  removed?: string[];
  /** With event prune: the data releases removed. */
  removedData?: string[];
}

/** Who holds the deploy lock of a deploy-path (.tagflip/lock.json). */
export interface LockHolder {
  command: string;
  release: string;
  actor: string;
  runUrl: string;
  host: string;
  since: string;
}

/** How every history record tagflip writes begins (its first key is the time). */
const RECORD_START = '{"time":';

/**
 * Read one line of history.jsonl; null for anything tagflip did not write.
 * Records are appended, so a crash may leave a torn last line, and the next
 * record is then appended to it: that record, after the torn part, is still
 * read. (A JSON string cannot hold the start marker unescaped.)
 */
export function parseHistoryEntry(text: string): HistoryEntry | null {
  const last = text.lastIndexOf(RECORD_START);
  const record = parseObject(text) ?? (last > 0 ? parseObject(text.slice(last)) : null);
  if (!record || !['adopt', 'deploy', 'rollback', 'prune'].includes(record.event as string) || typeof record.status !== 'string') return null;
  const text_ = (key: string): string => (typeof record[key] === 'string' ? (record[key] as string) : '');
  return {
    time: text_('time'),
    event: record.event as HistoryEntry['event'],
    status: record.status,
    release: text_('release'),
    previousRelease: text_('previousRelease'),
    host: text_('host'),
    actor: text_('actor'),
    runUrl: text_('runUrl'),
    ...(Array.isArray(record.removed) ? { removed: record.removed.filter((name): name is string => typeof name === 'string') } : {}),
    ...(Array.isArray(record.removedData) ? { removedData: record.removedData.filter((name): name is string => typeof name === 'string') } : {}),
  };
}

/** Read .tagflip/lock.json; null when it is missing or not ours. */
export function parseLockHolder(text: string): LockHolder | null {
  const record = parseObject(text);
  if (!record) return null;
  const text_ = (key: string): string => (typeof record[key] === 'string' ? (record[key] as string) : '');
  return { command: text_('command'), release: text_('release'), actor: text_('actor'), runUrl: text_('runUrl'), host: text_('host'), since: text_('since') };
}

/** A lock holder in words, for log lines and errors. */
export function describeHolder(holder: LockHolder | null): string {
  if (!holder) return 'another run (no details recorded)';
  const what = [holder.command, holder.release].filter(Boolean).join(' ') || 'a run';
  const who = holder.actor ? ` by ${holder.actor}` : '';
  const where = holder.runUrl ? ` (${holder.runUrl})` : holder.host ? ` from ${holder.host}` : '';
  const since = holder.since ? `, since ${holder.since}` : '';
  return `${what}${who}${where}${since}`;
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A record that knows only its name and state; every other field empty. */
export function blankManifest(release: string, state: ReleaseState): Manifest {
  return { release, state, commit: '', dataRelease: '', previousRelease: '', started: '', finished: '', activated: '', exitCode: null, failedStep: '', actor: '', runUrl: '', host: '' };
}

/** Read a manifest written by tagflip; anything else (hand-edited, truncated) is ignored. */
export function parseManifest(text: string): Manifest | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const record = value as Record<string, unknown>;
  const text_ = (key: string): string => (typeof record[key] === 'string' ? (record[key] as string) : '');
  if (!text_('release') || !STATES.includes(record.state as ReleaseState)) return null;
  return {
    release: text_('release'),
    state: record.state as ReleaseState,
    commit: text_('commit'),
    dataRelease: text_('dataRelease'),
    previousRelease: text_('previousRelease'),
    started: text_('started'),
    finished: text_('finished'),
    activated: text_('activated'),
    exitCode: typeof record.exitCode === 'number' ? record.exitCode : null,
    failedStep: text_('failedStep'),
    actor: text_('actor'),
    runUrl: text_('runUrl'),
    host: text_('host'),
    ...(text_('adopted') ? { adopted: text_('adopted') } : {}),
    ...(record.dataReused === true ? { dataReused: true as const } : {}),
    ...sourceField(record.source),
  };
}

/** A recorded source as tagflip writes it; anything else reads as none. */
function sourceField(value: unknown): { source?: ReleaseSource } {
  if (typeof value !== 'object' || value === null) return {};
  const record = value as Record<string, unknown>;
  if (record.kind === 'git' && typeof record.ref === 'string' && typeof record.commit === 'string') {
    return { source: { kind: 'git', ref: record.ref, commit: record.commit } };
  }
  if (record.kind === 'upload' && typeof record.sha256 === 'string' && record.sha256) return { source: { kind: 'upload', sha256: record.sha256 } };
  return {};
}

/**
 * Values only the remote shell knows when it writes a record (the time, the
 * commit it exported, a failing step and its exit code) are written as
 * placeholders that the script's tf_fill replaces with sed. The replacements
 * are plain tokens (an ISO time, hex, digits, a step name), so the result is
 * valid JSON whatever the rest of the record holds. REASON, the message of a
 * failure, is free text: tf_fill escapes it for JSON and splices it in without sed.
 */
export const NOW = '@tagflip:now@';
export const COMMIT = '@tagflip:commit@';
export const STEP = '@tagflip:step@';
export const REASON = '@tagflip:reason@';
/** When the build finished, as the host's clock says it when it writes the ready record (renderBuildScript). */
export const FINISHED = '@tagflip:finished@';
/** Stands for the exit code; rendered as a bare number, see renderRecord. */
export const CODE = '@tagflip:code@';

/** One JSON line, with placeholders as described above. */
export function renderRecord(record: object): string {
  return JSON.stringify(record).replace(/"@tagflip:code@"/g, CODE);
}
