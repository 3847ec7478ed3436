import { departedRecord } from '../core/adopt.js';
import { dataRollbackWarning } from './deploy.js';
import { type FleetHost, attempt, fail, runFleet, showDryRun } from './fleet.js';
import { type HostDependencies, restingResult } from './host-run.js';
import { HostSession } from '../remote/host-session.js';
import type { Logger } from '../core/logger.js';
import { dataLabel, releasePath } from '../core/paths.js';
import { type RollbackPlan, dataTargetFor, factsAfterFlip, planFleetRollback, planPrune, rollbackTarget } from '../core/plan.js';
import { inPool } from '../core/pool.js';
import type { HostResult } from '../core/result.js';
import { type FlipRecords, renderFlipScript } from '../remote/scripts.js';
import type { Settings } from '../core/settings.js';

/**
 * Roll back every host of the step (SPEC, "Rollback"): the deploy's shape with
 * another first phase. Every host is read (and locked) first, then one target
 * is decided for all; then all flip or none does, and `activate` and `verify`
 * run as after a deploy. If they fail, the hosts stay on the target.
 */
export function rollbackFleet(settings: Settings, members: HostDependencies[], logger: Logger): Promise<HostResult[]> {
  return runFleet(settings, members, logger, {
    command: 'rollback',
    prepare: (hosts, phase) => phase('plan', () => prepare(settings, hosts, logger)),
    afterHookFailure: 'stay',
  });
}

/** Connect, preflight, lock and read every host; then decide one target and get each host ready for it. */
async function prepare(settings: Settings, hosts: FleetHost[], logger: Logger): Promise<void> {
  await inPool(hosts, settings.maxParallel, (member) => attempt(settings, member, () => open(settings, member)));
  // A host that cannot be reached or locked stops the rollback (the barrier holds the others back).
  if (hosts.some((member) => member.stage === 'failed')) return;

  const decision = planFleetRollback(
    hosts.map((member) => ({ host: member.result.host, facts: member.facts! })),
    settings.rollbackTo,
  );
  if (decision.kind === 'refused') {
    if (hosts.length > 1) logger.error(`rollback refused: ${decision.refusal.message}; ${decision.refusal.remedy}`);
    hosts.forEach((member, i) => {
      const error = decision.errors[i];
      if (error) fail(settings, member, error);
    });
    return;
  }
  if (hosts.length > 1) logger.info(`rollback target for all ${hosts.length} hosts: ${decision.target}`);
  hosts.forEach((member, i) => ready(settings, member, decision.plans[i]));
}

/** Phases 1–3 on one host: connect, preflight, lock (not in a dry run), facts. */
async function open(settings: Settings, member: FleetHost): Promise<void> {
  const host = await HostSession.start(member.deps.transport, member.deps.logger, settings);
  member.host = host;
  member.facts = await host.open(host.context('', ''), settings.dryRun ? 'no' : 'yes');
}

/**
 * Get one host ready to flip to the fleet's target. A host already on it is
 * left alone: no flip, and no activate or verify (it already serves that
 * release; tagflip runs the hooks only where it moved current).
 */
function ready(settings: Settings, member: FleetHost, plan: RollbackPlan): void {
  const host = member.host!;
  const facts = member.facts!;
  const { logger } = member.deps;
  logger.info(`${host.host}: ${plan.reason}`);
  if (plan.action === 'unchanged') {
    Object.assign(member.result, { ...restingResult(settings, facts), status: settings.dryRun ? 'dry-run' : 'unchanged' });
    member.stage = 'done';
    return;
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
  // A current release tagflip has no record of is adopted by this flip, as on a deploy.
  const from = departedRecord(facts, plan.from);
  const departed = from ? { ...from, state: plan.fromState } : null;
  // Retention rides along with the flip, as on a deploy; it keeps the release
  // rolled away from, so a flip back (if another host cannot flip) stays possible.
  const after = factsAfterFlip(facts, target, departed, 'rollback', dataTarget);
  const prune = planPrune(after, settings.keepReleases, [plan.target, plan.from, rollbackTarget(after)]);
  const records: FlipRecords = { active: target, departed, event: 'rollback', dataTarget, dataBefore: facts.currentDataRelease, prune };
  member.change = {
    context,
    records,
    outcome: {
      status: 'rolled-back',
      release: plan.target,
      previousRelease: plan.from,
      releasePath: releasePath(settings.deployPath, plan.target),
      dataRelease: after.currentDataRelease,
      previousDataRelease: dataTarget ? facts.currentDataRelease : '',
    },
    // Undoing the flip restores both records as they were.
    back: from ? { active: from, departed: facts.manifests.get(plan.target)!, event: 'rollback', dataTarget: dataTarget ? facts.currentDataRelease : '', dataBefore: dataTarget } : null,
    discard: null,
    warnings,
  };
  if (settings.dryRun) {
    showDryRun(settings, member, `flip current to releases/${plan.target} (from ${plan.from})`, [['flip', renderFlipScript(context, records)]], { prune: records.prune });
    Object.assign(member.result, { ...restingResult(settings, facts), status: 'dry-run', warnings });
    member.stage = 'done';
    return;
  }
  member.stage = 'ready';
}
