import { checkDrift } from './drift.js';
import type { HostFacts } from '../core/facts.js';
import { type HostDependencies, currentPath, runOnHost } from './host-run.js';
import { currentOutsideReleases, planPrune, rollbackTarget } from '../core/plan.js';
import type { HostResult, ReleaseInfo, StatusReport } from '../core/result.js';
import type { Settings } from '../core/settings.js';

/** Everything `command: status` says about a host, from its facts. Pure. */
export function statusReport(facts: HostFacts): StatusReport {
  const target = rollbackTarget(facts);
  const names = new Set([...facts.manifests.keys(), ...facts.releaseDirs]);
  const releases: ReleaseInfo[] = [...names].map((release) => {
    const manifest = facts.manifests.get(release);
    return {
      release,
      state: manifest?.state ?? 'unknown',
      commit: manifest?.commit ?? '',
      finished: manifest?.finished ?? '',
      actor: manifest?.actor ?? '',
      current: release === facts.currentRelease,
      rollbackTarget: release === target,
      adopted: Boolean(manifest?.adopted),
    };
  });
  // Newest first, as a log reads best; releases without a time last.
  const started = (release: string) => facts.manifests.get(release)?.started ?? '';
  releases.sort((a, b) => b.finished.localeCompare(a.finished) || started(b.release).localeCompare(started(a.release)) || b.release.localeCompare(a.release));
  return { current: facts.currentRelease, rollbackTarget: target, lockHolder: facts.lockHolder, releases };
}

/** command: status — read-only; does not take the lock, but says who holds it. */
export function statusOfHost(settings: Settings, deps: HostDependencies): Promise<HostResult> {
  return runOnHost(settings, deps, async (host, run) => {
    const facts = await host.open(host.context('', ''), 'report');
    run.facts = facts;
    const outside = currentOutsideReleases(facts, 'deploy, rollback and prune refuse to run until it is');
    if (outside) deps.logger.warning(`${host.host}: ${outside.message}: ${outside.remedy}`);
    const report = statusReport(facts);
    if (settings.drift) report.drift = await checkDrift(settings, host, facts);
    return { status: 'unchanged', release: report.current, previousRelease: report.rollbackTarget, releasePath: currentPath(settings, facts), dataRelease: facts.currentDataRelease, report };
  });
}

/** command: prune — retention on its own, under the lock. */
export function pruneHost(settings: Settings, deps: HostDependencies): Promise<HostResult> {
  return runOnHost(settings, deps, async (host, run) => {
    const context = host.context('', '');
    const facts = await host.open(context, settings.dryRun ? 'no' : 'yes');
    run.facts = facts;
    const plan = planPrune(facts, settings.keepReleases, [facts.currentRelease, rollbackTarget(facts)]);
    const outcome = { release: facts.currentRelease, previousRelease: rollbackTarget(facts), releasePath: currentPath(settings, facts), dataRelease: facts.currentDataRelease };
    if (settings.dryRun) {
      const data = plan.removeData.length > 0 ? ` and data releases ${plan.removeData.join(', ')}` : '';
      const unknown = plan.unknown.length > 0 ? `; would leave alone ${plan.unknown.join(', ')} (no record)` : '';
      deps.logger.info(`${host.host}: dry run: would remove ${plan.remove.join(', ') || 'nothing'}${data}; would keep ${plan.keep.join(', ') || 'nothing'}${unknown}`);
      return { ...outcome, status: 'dry-run' };
    }
    const removed = await host.prune(context, plan);
    if (removed.length === 0) deps.logger.info(`${host.host}: nothing to remove (keep-releases: ${settings.keepReleases})`);
    return { ...outcome, status: 'unchanged', removed };
  });
}
