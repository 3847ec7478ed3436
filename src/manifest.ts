/** The release record kept on each host under .tagflip/. */

export type ReleaseState = 'building' | 'ready' | 'active' | 'inactive' | 'failed' | 'rolled-back';

const STATES: readonly ReleaseState[] = ['building', 'ready', 'active', 'inactive', 'failed', 'rolled-back'];

/** States of a release that may be activated. */
export const COMPLETE_STATES: readonly ReleaseState[] = ['ready', 'active', 'inactive'];

export interface Manifest {
  release: string;
  state: ReleaseState;
  commit: string;
  dataRelease: string;
  previousRelease: string;
  started: string;
  finished: string;
  activated: string;
  exitCode: number | null;
  failedStep: string;
  actor: string;
  runUrl: string;
  host: string;
}

export interface HistoryEntry {
  time: string;
  event: 'deploy' | 'rollback' | 'prune';
  status: string;
  release: string;
  previousRelease: string;
  host: string;
  actor: string;
  runUrl: string;
  exitCode?: number | null;
  failedStep?: string;
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
  };
}

/**
 * Values only the remote shell knows when it writes a record (the time, the
 * commit it exported, a failing step and its exit code) are written as
 * placeholders that the script's tf_fill replaces with sed. The replacements
 * are plain tokens (an ISO time, hex, digits, a step name), so the result is
 * valid JSON whatever the rest of the record holds.
 */
export const NOW = '@tagflip:now@';
export const COMMIT = '@tagflip:commit@';
export const STEP = '@tagflip:step@';
/** Stands for the exit code; rendered as a bare number, see renderRecord. */
export const CODE = '@tagflip:code@';

/** One JSON line, with placeholders as described above. */
export function renderRecord(record: object): string {
  return JSON.stringify(record).replace(/"@tagflip:code@"/g, CODE);
}
