import type { HostFacts } from '../core/facts.js';
import { HostSession, explainFailure } from '../remote/host-session.js';
import type { Logger } from '../core/logger.js';
import { releasePath } from '../core/paths.js';
import { rollbackTarget } from '../core/plan.js';
import type { HostResult } from '../core/result.js';
import type { Settings } from '../core/settings.js';
import type { Transport } from '../remote/transport.js';

export interface HostDependencies {
  transport: Transport;
  logger: Logger;
  now?: () => Date;
}

/** What a command learns on a host as it goes, for the result if it fails. */
export interface HostRun {
  result: HostResult;
  facts: HostFacts | null;
}

/** A host's result before anything is known: failed until proven otherwise. */
export function emptyHostResult(host: string): HostResult {
  return { host, status: 'failed', release: '', previousRelease: '', releasePath: '', dataRelease: '', previousDataRelease: '', buildSeconds: 0, totalSeconds: 0, error: '' };
}

/**
 * A host failed: log why, and report what is current there, as read before
 * anything changed (null facts: nothing was read, so nothing is claimed).
 */
export function recordFailure(settings: Settings, result: HostResult, facts: HostFacts | null, error: unknown, logger: Logger): void {
  const explained = explainFailure(result.host, error);
  logger.error(explained.message);
  Object.assign(result, { status: 'failed', error: explained.message, ...(facts ? restingResult(settings, facts) : {}) });
}

/**
 * What a host reports when this step did not move its `current` (it failed
 * before the flip, was held back, was unchanged, or it was a dry run): what
 * runs there, and as previous-release the release a bare rollback would go
 * to. One rule for one host and for a fleet.
 */
export function restingResult(settings: Settings, facts: HostFacts): Pick<HostResult, 'release' | 'previousRelease' | 'releasePath' | 'dataRelease'> {
  return { release: facts.currentRelease, previousRelease: rollbackTarget(facts), releasePath: currentPath(settings, facts), dataRelease: facts.currentDataRelease };
}

/** Path of the release `current` points to, or '' when there is none. */
export function currentPath(settings: Settings, facts: HostFacts): string {
  return facts.currentRelease ? releasePath(settings.deployPath, facts.currentRelease) : '';
}

/**
 * Run a command's work on one host: connect, hand over the session, and turn
 * the outcome (or any failure) into the host's result. The session, and with
 * it the lock, always ends here.
 */
export async function runOnHost(
  settings: Settings,
  deps: HostDependencies,
  work: (host: HostSession, run: HostRun) => Promise<Partial<HostResult>>,
): Promise<HostResult> {
  const started = Date.now();
  const run: HostRun = { result: emptyHostResult(deps.transport.label), facts: null };
  let host: HostSession | null = null;
  try {
    host = await HostSession.start(deps.transport, deps.logger, settings);
    Object.assign(run.result, await work(host, run));
  } catch (error) {
    recordFailure(settings, run.result, run.facts, error, deps.logger);
  } finally {
    if (host) await host.close();
    else await deps.transport.close();
  }
  run.result.totalSeconds = (Date.now() - started) / 1000;
  return run.result;
}
