/**
 * Drift: what differs between the release that serves and the content recorded
 * at the end of its build (host/tree-list.sh, host/drift.sh). Pure: the host's
 * answer in, a report out.
 */
import type { ControlLine } from './control-line.js';

/** How many paths of each kind a report names (the counts are always whole). */
export const DRIFT_SHOWN = 50;

export interface DriftList {
  count: number;
  /** The first DRIFT_SHOWN paths, in byte order; a directory's ends with '/'. */
  paths: string[];
}

export interface DriftReport {
  /** clean: as recorded; drifted: something differs; no record: built before drift was recorded (or without it); failed: the check could not run. */
  state: 'clean' | 'drifted' | 'no record' | 'no current' | 'failed';
  release: string;
  added: DriftList;
  changed: DriftList;
  removed: DriftList;
  /** Paths that differ but drift-ignore leaves out. */
  ignored: number;
  /** Why, for no record and failed. */
  reason: string;
}

/** One path that differs, as the host sent it: its bytes, and whether it is a directory. */
export interface DriftEntry {
  kind: 'added' | 'changed' | 'removed';
  /** The path as text (showPath), without a directory's '/'. */
  path: string;
  isDir: boolean;
}

const KINDS: Record<string, DriftEntry['kind']> = { a: 'added', c: 'changed', r: 'removed' };

/**
 * A path's bytes as text for a log, a summary and JSON: UTF-8 when it is
 * valid, with control characters and backslashes escaped (\xNN, \\), so that a
 * name cannot forge a log line; otherwise each byte outside printable ASCII as \xNN.
 */
export function showPath(bytes: Buffer): string {
  const hex = (code: number) => `\\x${code.toString(16).padStart(2, '0')}`;
  let text: string | null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    text = null;
  }
  if (text !== null) return text.replace(/[\u0000-\u001f\u007f\\]/g, (char) => (char === '\\' ? '\\\\' : hex(char.charCodeAt(0))));
  return [...bytes].map((code) => (code === 0x5c ? '\\\\' : code >= 0x20 && code < 0x7f ? String.fromCharCode(code) : hex(code))).join('');
}

/** The paths that differ, from the drift phase's control lines; null when the answer is not whole. */
export function readDriftEntries(lines: readonly ControlLine[]): DriftEntry[] | null {
  const done = lines.find((line) => line.kind === 'drift-done');
  if (!done) return null;
  const bytes = Buffer.from(lines.filter((line) => line.kind === 'drift-part').map((line) => line.rest).join(''), 'base64');
  if (String(bytes.length) !== done.args[0]) return null;
  const entries: DriftEntry[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0, start);
    if (end < 0) end = bytes.length;
    const record = bytes.subarray(start, end);
    start = end + 1;
    const kind = KINDS[String.fromCharCode(record[0])];
    if (!kind || record[1] !== 0x20) return null;
    let path = record.subarray(2);
    const isDir = path.length > 1 && path[path.length - 1] === 0x2f;
    if (isDir) path = path.subarray(0, -1);
    entries.push({ kind, path: showPath(path), isDir });
  }
  return entries;
}

/** A report from the entries that are not ignored. */
export function driftReport(release: string, entries: readonly DriftEntry[], ignored: (entry: DriftEntry) => boolean): DriftReport {
  const kept = entries.filter((entry) => !ignored(entry));
  const list = (kind: DriftEntry['kind']): DriftList => {
    const paths = kept.filter((entry) => entry.kind === kind).map((entry) => (entry.isDir ? `${entry.path}/` : entry.path));
    return { count: paths.length, paths: paths.slice(0, DRIFT_SHOWN) };
  };
  const report = { release, added: list('added'), changed: list('changed'), removed: list('removed'), ignored: entries.length - kept.length, reason: '' };
  return { ...report, state: kept.length > 0 ? 'drifted' : 'clean' };
}

/** A report that says only why nothing was compared. */
export function driftWithout(state: 'no record' | 'no current' | 'failed', release: string, reason: string): DriftReport {
  const none = { count: 0, paths: [] };
  return { state, release, added: none, changed: none, removed: none, ignored: 0, reason };
}

/** The report in words, for the log and the CLI: a line, then the paths of each kind. */
export function renderDrift(report: DriftReport): string[] {
  if (report.state === 'no current') return ['  drift: no current release'];
  if (report.state === 'no record') return [`  drift: no record for ${report.release} (${report.reason}): deploy it again to record its content`];
  if (report.state === 'failed') return [`  drift: not checked: ${report.reason}`];
  const ignored = report.ignored > 0 ? ` (${report.ignored} ignored by drift-ignore)` : '';
  if (report.state === 'clean') return [`  drift: ${report.release} is as deployed${ignored}`];
  const lines = [`  drift: ${report.release}: ${driftCounts(report)}${ignored}`];
  for (const [word, list] of [['added', report.added], ['changed', report.changed], ['removed', report.removed]] as const) {
    lines.push(...list.paths.map((path) => `    ${word} ${path}`));
    if (list.count > list.paths.length) lines.push(`    … and ${list.count - list.paths.length} more ${word}`);
  }
  return lines;
}

/** "2 added, 1 changed, 0 removed" */
export function driftCounts(report: DriftReport): string {
  return `${report.added.count} added, ${report.changed.count} changed, ${report.removed.count} removed`;
}

/** The drift of a host in the `hosts` output. */
export function driftRow(report: DriftReport): object {
  return {
    state: report.state,
    release: report.release,
    added: report.added,
    changed: report.changed,
    removed: report.removed,
    ignored: report.ignored,
    ...(report.reason ? { reason: report.reason } : {}),
  };
}
