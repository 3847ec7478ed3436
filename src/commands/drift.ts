import { type DriftEntry, type DriftReport, driftReport, driftWithout, readDriftEntries } from '../core/drift.js';
import type { HostFacts } from '../core/facts.js';
import type { HostSession } from '../remote/host-session.js';
import { renderDriftScript } from '../remote/drift-scripts.js';
import type { Settings } from '../core/settings.js';
import { compileExcludes, excluderWithParents } from '../upload/exclude.js';

/**
 * command: status with drift, on one host whose facts are read: compare the
 * release that is current with the content recorded at the end of its build.
 * The host sends every path that differs; drift-ignore is applied here, with
 * upload-exclude's reading of the lines (a directory ignored ignores what is under it).
 */
export async function checkDrift(settings: Settings, host: HostSession, facts: HostFacts): Promise<DriftReport> {
  const release = facts.currentRelease;
  if (!release) return driftWithout('no current', '', 'no release is current');
  const lines = await host.run('drift', renderDriftScript(host.context(release, '')), settings.commandTimeout);
  const none = lines.find((line) => line.kind === 'drift-none');
  if (none) return driftWithout('no record', release, none.rest === 'no record' ? 'deployed before tagflip recorded content, or with drift-record: false' : none.rest);
  const failed = lines.find((line) => line.kind === 'drift-failed');
  if (failed) return driftWithout('failed', release, failed.rest);
  const entries = readDriftEntries(lines);
  if (!entries) return driftWithout('failed', release, 'the answer of the host was not whole');
  // As upload-exclude: .git is left out whatever the lines say.
  const excluded = excluderWithParents(compileExcludes(settings.driftIgnore));
  return driftReport(release, entries, (entry: DriftEntry) => excluded(entry.path, entry.isDir));
}
