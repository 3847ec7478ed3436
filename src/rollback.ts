import { type HostDependencies, currentPath, runOnHost } from './host-run.js';
import { dataLabel, releasePath } from './paths.js';
import { dataRollbackWarning } from './deploy.js';
import { dataTargetFor, factsAfterFlip, planPrune, planRollback, rollbackTarget } from './plan.js';
import type { HostResult } from './result.js';
import { renderFlipScript } from './scripts.js';
import type { Settings } from './settings.js';

/**
 * Roll back one host (SPEC, "Rollback"): flip `current` to rollback-to, or to
 * the release that was current before, with no rebuild.
 */
export function rollbackHost(settings: Settings, deps: HostDependencies): Promise<HostResult> {
  const { logger } = deps;
  return runOnHost(settings, deps, async (host, run) => {
    const facts = await host.open(host.context('', ''), settings.dryRun ? 'no' : 'yes');
    run.facts = facts;
    const plan = planRollback(facts, settings.rollbackTo);
    logger.info(`${host.host}: ${plan.reason}`);
    const data = { dataRelease: facts.currentDataRelease, previousDataRelease: '' };
    if (plan.action === 'unchanged') {
      return { ...data, status: 'unchanged', release: plan.target, previousRelease: rollbackTarget(facts), releasePath: currentPath(settings, facts) };
    }
    const context = host.context(plan.target, plan.from);
    const wanted = dataTargetFor(facts, plan.target);
    const dataTarget = settings.rollbackData ? wanted : '';
    const warnings: string[] = [];
    const dataPath = dataLabel(settings.deployPath, settings.dataPath);
    if (dataTarget) warnings.push(dataRollbackWarning(facts.currentDataRelease, dataTarget, dataPath));
    if (wanted && !dataTarget) {
      warnings.push(`rollback-data is false: ${dataPath}/current stays at ${facts.currentDataRelease}, although ${plan.target} was running with data release ${wanted}`);
    }
    const target = { ...facts.manifests.get(plan.target)!, dataRelease: dataTarget || facts.currentDataRelease };
    const from = facts.manifests.get(plan.from);
    const departed = from ? { ...from, state: plan.fromState } : null;
    // Retention rides along with the flip, as on a deploy.
    const after = factsAfterFlip(facts, target, departed, 'rollback', dataTarget);
    const prune = planPrune(after, settings.keepReleases, [plan.target, rollbackTarget(after)]);
    const flip = renderFlipScript(context, { active: target, departed, event: 'rollback', dataTarget, dataBefore: facts.currentDataRelease, prune });
    if (settings.dryRun) {
      host.showDryRun(`flip current to releases/${plan.target}`, [['flip', flip]]);
      return { ...data, status: 'dry-run', release: plan.from, previousRelease: rollbackTarget(facts), releasePath: currentPath(settings, facts), warnings };
    }
    warnings.forEach((warning) => logger.warning(`${host.host}: ${warning}`));
    const removed = host.reportRemoved(await host.run('flip', flip, 600));
    logger.info(`${host.host}: current -> releases/${plan.target} (${plan.from} is now ${plan.fromState})`);
    return {
      status: 'rolled-back',
      release: plan.target,
      previousRelease: plan.from,
      releasePath: releasePath(settings.deployPath, plan.target),
      dataRelease: after.currentDataRelease,
      previousDataRelease: dataTarget ? facts.currentDataRelease : '',
      removed,
      warnings,
    };
  });
}
