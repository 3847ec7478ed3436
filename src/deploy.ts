import { departedRecord } from './adopt.js';
import type { HostFacts } from './facts.js';
import { type FleetHost, attempt, runFleet, showDryRun } from './fleet.js';
import { type HostDependencies, restingResult } from './host-run.js';
import { HostSession } from './host-session.js';
import type { Logger } from './logger.js';
import type { Manifest } from './manifest.js';
import { dataLabel } from './paths.js';
import { type DeployPlan, dataTargetFor, factsAfterFlip, planDeploy, planPrune, rollbackTarget } from './plan.js';
import { inPool } from './pool.js';
import type { HostResult } from './result.js';
import { type FlipRecords, renderBuildScript, renderDiscardScript, renderFlipScript } from './scripts.js';
import type { Settings } from './settings.js';

/** Deploy one release to one host (a fleet of one). */
export async function deployToHost(settings: Settings, deps: HostDependencies): Promise<HostResult> {
  const [result] = await deployFleet(settings, [deps], deps.logger);
  return result;
}

/**
 * Deploy to every host of the step: all build (phases 1–8), then all flip, or
 * none does (9–11). A failing `activate` or `verify` flips every host back.
 */
export function deployFleet(settings: Settings, members: HostDependencies[], logger: Logger): Promise<HostResult[]> {
  return runFleet(settings, members, logger, {
    command: 'deploy',
    prepare: (hosts, phase) => phase('build', () => inPool(hosts, settings.maxParallel, (member) => attempt(settings, member, () => prepare(settings, member)))),
    afterHookFailure: 'flip back',
  });
}

/** Phases 1–8 on one host: connect, preflight, lock, facts, plan, build (and migrate). */
async function prepare(settings: Settings, member: FleetHost): Promise<void> {
  const { logger } = member.deps;
  const now = member.deps.now ?? (() => new Date());
  const host = await HostSession.start(member.deps.transport, logger, settings);
  member.host = host;
  const context = host.context(settings.release, '');
  const facts = await host.open(context, settings.dryRun ? 'no' : 'yes');
  member.facts = facts;
  const plan = planDeploy(settings.deployPath, settings.release, facts);
  context.previousRelease = plan.previousRelease;
  const currently = plan.action !== 'unchanged' && plan.previousRelease ? ` (current: ${plan.previousRelease})` : '';
  logger.info(`${host.host}: ${plan.reason}${currently}`);

  if (plan.action === 'unchanged') {
    // A dry run reports dry-run whatever it found, as README says.
    Object.assign(member.result, { ...restingResult(settings, facts), status: settings.dryRun ? 'dry-run' : 'unchanged' });
    member.stage = 'done';
    return;
  }
  const building = { ...buildingManifest(settings, plan, host.host, now()), dataRelease: settings.migrate ? plan.release : facts.currentDataRelease };
  const build = plan.action === 'build' ? renderBuildScript(context, building) : null;
  let active: Manifest;
  let dataTarget: string;
  const warnings: string[] = [];
  if (build) {
    active = { ...building, state: 'ready' };
    dataTarget = settings.migrate ? plan.release : '';
    if (!settings.dryRun) {
      const buildStarted = Date.now();
      try {
        const lines = await host.run('build', build, settings.commandTimeout * 2);
        const [finished = '', commit = ''] = lines.find((line) => line.kind === 'ready')?.args ?? [];
        active = { ...active, finished, commit };
      } finally {
        member.result.buildSeconds = (Date.now() - buildStarted) / 1000;
      }
    }
  } else {
    dataTarget = settings.rollbackData ? dataTargetFor(facts, plan.release) : '';
    active = { ...reactivatedManifest(plan, facts), dataRelease: dataTarget || facts.currentDataRelease };
    if (dataTarget) warnings.push(dataRollbackWarning(facts.currentDataRelease, dataTarget, dataLabel(settings.deployPath, settings.dataPath)));
  }
  // A current release tagflip has no record of is adopted by this flip (adopt.ts).
  const departed = departedRecord(facts, plan.previousRelease);
  const records = flipRecords(settings, plan, facts, active, departed, dataTarget);
  // The flip back goes to the release replaced, adopted or not.
  const previous = departed;
  member.change = {
    context,
    records,
    outcome: {
      status: 'deployed',
      release: plan.release,
      previousRelease: plan.previousRelease,
      releasePath: plan.releasePath,
      dataRelease: dataTarget || facts.currentDataRelease,
      previousDataRelease: dataTarget ? facts.currentDataRelease : '',
    },
    back: previous
      ? { active: previous, departed: { ...active, state: 'rolled-back' }, event: 'rollback', dataTarget: dataTarget ? facts.currentDataRelease : '', dataBefore: dataTarget }
      : null,
    discard: build ? (reason) => renderDiscardScript(context, active, settings.migrate ? plan.release : '', reason) : null,
    warnings,
  };
  if (settings.dryRun) {
    const removal = plan.removeStale ? ` after removing the incomplete releases/${plan.release}` : '';
    const flip = renderFlipScript(context, records);
    showDryRun(settings, member, `${plan.action} ${plan.release} in ${plan.releasePath}${removal}`, build ? [['build', build], ['flip', flip]] : [['flip', flip]]);
    member.stage = 'done';
    Object.assign(member.result, { ...restingResult(settings, facts), status: 'dry-run', warnings });
    return;
  }
  member.stage = 'ready';
}

/**
 * What the flip of a prepared host writes. Retention rides along with the flip
 * (one round trip); it keeps the release flipped away from, so a flip back
 * after activate or verify stays possible.
 */
function flipRecords(settings: Settings, plan: DeployPlan, facts: HostFacts, active: Manifest, departed: Manifest | null, dataTarget: string): FlipRecords {
  const after = factsAfterFlip(facts, active, departed, 'deploy', dataTarget);
  // The release flipped away from is kept by name: the history's rollback target
  // is another one when current was relinked by hand.
  const prune = planPrune(after, settings.keepReleases, [plan.release, plan.previousRelease, rollbackTarget(after)]);
  return { active, departed, event: 'deploy', dataTarget, dataBefore: facts.currentDataRelease, prune };
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


/** Said whenever data/current goes back to an older data release; `data` is data-path as messages name it (dataLabel). */
export function dataRollbackWarning(from: string, to: string, data: string): string {
  return `${data}/current goes back from data release ${from || '(none)'} to ${to}: data written since the migration to ${from || 'the current data'} is not in the restored data release ${to} (it stays in ${data}/releases/${from}). Set rollback-data: false to keep the current data.`;
}
