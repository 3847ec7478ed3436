import type { HostFacts } from './facts.js';
import { type HostDependencies, currentPath, runOnHost } from './host-run.js';
import type { Logger } from './logger.js';
import type { Manifest } from './manifest.js';
import { type DeployPlan, dataTargetFor, factsAfterFlip, planDeploy, planPrune, rollbackTarget } from './plan.js';
import type { HostResult } from './result.js';
import { type RenderedScript, type ScriptContext, renderBuildScript, renderFlipScript } from './scripts.js';
import type { Settings } from './settings.js';

/**
 * Deploy one release to one host: connect, preflight, lock and facts, plan,
 * build, flip, prune. Each phase is one round trip on one remote shell.
 */
export function deployToHost(settings: Settings, deps: HostDependencies): Promise<HostResult> {
  const { logger } = deps;
  const now = deps.now ?? (() => new Date());
  return runOnHost(settings, deps, async (host, run) => {
    const context = host.context(settings.release, '');
    const facts = await host.open(context, settings.dryRun ? 'no' : 'yes');
    run.facts = facts;
    const plan = planDeploy(settings.deployPath, settings.release, facts);
    context.previousRelease = plan.previousRelease;
    const currently = plan.action !== 'unchanged' && plan.previousRelease ? ` (current: ${plan.previousRelease})` : '';
    logger.info(`${host.host}: ${plan.reason}${currently}`);

    const data = { dataRelease: facts.currentDataRelease, previousDataRelease: '' };
    if (plan.action === 'unchanged') {
      return { ...data, status: 'unchanged', release: plan.release, previousRelease: rollbackTarget(facts), releasePath: plan.releasePath };
    }
    const building = { ...buildingManifest(settings, plan, host.host, now()), dataRelease: settings.migrate ? plan.release : facts.currentDataRelease };
    const warnings: string[] = [];
    if (settings.dryRun) {
      showDryRun(logger, host.host, plan, context, building, facts);
      return { ...data, status: 'dry-run', release: facts.currentRelease, previousRelease: plan.previousRelease, releasePath: currentPath(settings, facts) };
    }

    let active: Manifest;
    let dataTarget = '';
    if (plan.action === 'build') {
      const buildStarted = Date.now();
      const lines = await host.run('build', renderBuildScript(context, building), settings.commandTimeout * 2);
      run.result.buildSeconds = (Date.now() - buildStarted) / 1000;
      const [finished = '', commit = ''] = lines.find((line) => line.kind === 'ready')?.args ?? [];
      active = { ...building, state: 'ready', finished, commit };
      dataTarget = settings.migrate ? plan.release : '';
    } else {
      dataTarget = settings.rollbackData ? dataTargetFor(facts, plan.release) : '';
      active = { ...reactivatedManifest(plan, facts), dataRelease: dataTarget || facts.currentDataRelease };
      if (dataTarget) warnings.push(dataRollbackWarning(facts.currentDataRelease, dataTarget));
    }
    warnings.forEach((warning) => logger.warning(`${host.host}: ${warning}`));
    const departed = departedManifest(facts, plan.previousRelease);
    const flip = renderFlipScript(context, { active, departed, event: 'deploy', dataTarget, dataBefore: facts.currentDataRelease });
    await host.run('flip', flip, 60);
    logger.info(`${host.host}: current -> releases/${plan.release}${dataTarget ? `, data/current -> releases/${dataTarget}` : ''}`);
    const after = factsAfterFlip(facts, active, departed, 'deploy', dataTarget);
    const removed = await host.prune(context, planPrune(after, settings.keepReleases, [plan.release, rollbackTarget(after)]));
    return {
      status: 'deployed',
      release: plan.release,
      previousRelease: plan.previousRelease,
      releasePath: plan.releasePath,
      dataRelease: after.currentDataRelease,
      previousDataRelease: dataTarget ? facts.currentDataRelease : '',
      removed,
      warnings,
    };
  });
}

/** The record of the release being replaced, now inactive (null when it has none). */
function departedManifest(facts: HostFacts, release: string): Manifest | null {
  const manifest = facts.manifests.get(release);
  return manifest ? { ...manifest, state: 'inactive' } : null;
}

/** The record of a complete release that is activated again without a rebuild. */
function reactivatedManifest(plan: DeployPlan, facts: HostFacts): Manifest {
  return { ...facts.manifests.get(plan.release)!, previousRelease: plan.previousRelease };
}

function buildingManifest(settings: Settings, plan: DeployPlan, host: string, started: Date): Manifest {
  return {
    release: plan.release,
    state: 'building',
    commit: '',
    dataRelease: '',
    previousRelease: plan.previousRelease,
    started: started.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    finished: '',
    activated: '',
    exitCode: null,
    failedStep: '',
    actor: settings.actor,
    runUrl: settings.runUrl,
    host,
  };
}

function showDryRun(logger: Logger, host: string, plan: DeployPlan, context: ScriptContext, building: Manifest, facts: HostFacts): void {
  const removal = plan.removeStale ? ` after removing the incomplete releases/${plan.release}` : '';
  logger.info(`${host}: dry run: would ${plan.action} ${plan.release} in ${plan.releasePath}${removal}; nothing is changed`);
  const active = plan.action === 'build' ? { ...building, state: 'ready' as const } : reactivatedManifest(plan, facts);
  const scripts: [string, RenderedScript][] = [];
  if (plan.action === 'build') scripts.push(['build', renderBuildScript(context, building)]);
  const dataTarget = plan.action === 'build' && context.migrate ? plan.release : '';
  const records = { active, departed: departedManifest(facts, plan.previousRelease), event: 'deploy' as const, dataTarget, dataBefore: facts.currentDataRelease };
  scripts.push(['flip', renderFlipScript(context, records)]);
  for (const [name, script] of scripts) {
    logger.startGroup(`${name} script for ${host} (dry run, not run)`);
    script.display.split('\n').forEach((line) => logger.info(line));
    logger.endGroup();
  }
}

/** Said whenever data/current goes back to an older data release. */
export function dataRollbackWarning(from: string, to: string): string {
  return `data/current goes back from data release ${from || '(none)'} to ${to}: data written since the migration to ${from || 'the current data'} is not in the restored data release ${to} (it stays in data/releases/${from}). Set rollback-data: false to keep the current data.`;
}
