import type { HostFacts } from './facts.js';
import { type HostDependencies, currentPath, emptyHostResult, recordFailure } from './host-run.js';
import { HostSession, explainFailure } from './host-session.js';
import { type Logger, hostLogger } from './logger.js';
import type { Manifest } from './manifest.js';
import { dataLabel } from './paths.js';
import { type DeployPlan, dataTargetFor, factsAfterFlip, planDeploy, planPrune, rollbackTarget } from './plan.js';
import { inPool } from './pool.js';
import type { HostResult } from './result.js';
import {
  type FlipRecords,
  type ScriptContext,
  renderBuildScript,
  renderDiscardScript,
  renderFlipScript,
  renderHookScript,
} from './scripts.js';
import type { Settings } from './settings.js';

/**
 * One host's deploy as it moves through the phases of the step. With several
 * hosts, every host builds (phases 1–8), then all flip or none does (9–11).
 */
interface HostDeploy {
  deps: HostDependencies;
  result: HostResult;
  started: number;
  host: HostSession | null;
  facts: HostFacts | null;
  context: ScriptContext | null;
  plan: DeployPlan | null;
  /** The record of the release that is to become current. */
  active: Manifest | null;
  departed: Manifest | null;
  dataTarget: string;
  warnings: string[];
  /** ready: built or chosen, waiting for the flip; flipped: current moved. */
  stage: 'failed' | 'done' | 'ready' | 'flipped';
  /** current was moved by this run (and not yet moved back). */
  flipped: boolean;
}

/** Deploy one release to one host (a fleet of one). */
export async function deployToHost(settings: Settings, deps: HostDependencies): Promise<HostResult> {
  const [result] = await deployFleet(settings, [deps], deps.logger);
  return result;
}

/**
 * Deploy to every host of the step: all build, then all flip, or none does. A
 * failing `activate` or `verify` flips every host back.
 */
export async function deployFleet(settings: Settings, members: HostDependencies[], logger: Logger): Promise<HostResult[]> {
  const fleet = members.length > 1;
  const hosts: HostDeploy[] = members.map((deps) => ({
    deps: fleet ? { ...deps, logger: hostLogger(deps.logger, deps.transport.label) } : deps,
    result: emptyHostResult(deps.transport.label),
    started: Date.now(),
    host: null,
    facts: null,
    context: null,
    plan: null,
    active: null,
    departed: null,
    dataTarget: '',
    warnings: [],
    stage: 'ready',
    flipped: false,
  }));
  const phase = async (name: string, work: () => Promise<void>) => {
    if (fleet) logger.startGroup(`${name} · ${hosts.length} hosts`);
    try {
      await work();
    } finally {
      if (fleet) logger.endGroup();
    }
  };
  try {
    await phase('build', () => inPool(hosts, settings.maxParallel, (member) => attempt(settings, member, () => prepare(settings, member))).then(() => undefined));

    const failed = hosts.filter((member) => member.stage === 'failed');
    const ready = hosts.filter((member) => member.stage === 'ready');
    if (failed.length > 0) {
      const names = failed.map((member) => member.result.host).join(', ');
      await Promise.all(ready.map((member) => attempt(settings, member, () => discard(settings, member, `${names} failed`))));
      return finishAll(hosts);
    }

    await phase('flip', () => Promise.all(ready.map((member) => attempt(settings, member, () => flip(settings, member)))).then(() => undefined));
    const hooks: ['activate' | 'verify', string][] = [
      ['activate', settings.activate],
      ['verify', settings.verify],
    ];
    for (const [name, command] of hooks) {
      if (!command || hosts.some((member) => member.stage === 'failed')) continue;
      await phase(name, () => Promise.all(hosts.filter((member) => member.stage === 'flipped').map((member) => attempt(settings, member, () => runHook(member, name, command)))).then(() => undefined));
    }
    if (hosts.some((member) => member.stage === 'failed') && hosts.some((member) => member.flipped)) {
      await phase('roll back', () => Promise.all(hosts.filter((member) => member.flipped).map((member) => flipBack(settings, member))).then(() => undefined));
      return finishAll(hosts);
    }

    hosts.filter((member) => member.stage === 'flipped').forEach((member) => (member.stage = 'done'));
    return finishAll(hosts);
  } finally {
    await Promise.all(hosts.map((member) => (member.host ? member.host.close() : member.deps.transport.close())));
  }
}

/** Run one step of a host's deploy; a failure marks that host failed and says why. */
async function attempt(settings: Settings, member: HostDeploy, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    member.stage = 'failed';
    // Until a flip back, a host that flipped runs the new release: keep reporting that.
    recordFailure(settings, member.result, member.flipped ? null : member.facts, error, member.deps.logger);
  }
}

/** Phases 1–8 on one host: connect, preflight, lock, facts, plan, build (and migrate). */
async function prepare(settings: Settings, member: HostDeploy): Promise<void> {
  const { logger } = member.deps;
  const now = member.deps.now ?? (() => new Date());
  const host = await HostSession.start(member.deps.transport, logger, settings);
  member.host = host;
  const context = host.context(settings.release, '');
  const facts = await host.open(context, settings.dryRun ? 'no' : 'yes');
  member.facts = facts;
  member.context = context;
  const plan = planDeploy(settings.deployPath, settings.release, facts);
  member.plan = plan;
  context.previousRelease = plan.previousRelease;
  const currently = plan.action !== 'unchanged' && plan.previousRelease ? ` (current: ${plan.previousRelease})` : '';
  logger.info(`${host.host}: ${plan.reason}${currently}`);

  const data = { dataRelease: facts.currentDataRelease, previousDataRelease: '' };
  if (plan.action === 'unchanged') {
    member.stage = 'done';
    Object.assign(member.result, { ...data, status: 'unchanged', release: plan.release, previousRelease: rollbackTarget(facts), releasePath: plan.releasePath });
    return;
  }
  const building = { ...buildingManifest(settings, plan, host.host, now()), dataRelease: settings.migrate ? plan.release : facts.currentDataRelease };
  const build = plan.action === 'build' ? renderBuildScript(context, building) : null;
  if (build) {
    member.active = { ...building, state: 'ready' };
    member.dataTarget = settings.migrate ? plan.release : '';
    if (!settings.dryRun) {
      const buildStarted = Date.now();
      try {
        const lines = await host.run('build', build, settings.commandTimeout * 2);
        const [finished = '', commit = ''] = lines.find((line) => line.kind === 'ready')?.args ?? [];
        member.active = { ...member.active, finished, commit };
      } finally {
        member.result.buildSeconds = (Date.now() - buildStarted) / 1000;
      }
    }
  } else {
    member.dataTarget = settings.rollbackData ? dataTargetFor(facts, plan.release) : '';
    member.active = { ...reactivatedManifest(plan, facts), dataRelease: member.dataTarget || facts.currentDataRelease };
    if (member.dataTarget) member.warnings.push(dataRollbackWarning(facts.currentDataRelease, member.dataTarget, dataLabel(settings.deployPath, settings.dataPath)));
  }
  member.departed = departedManifest(facts, plan.previousRelease);
  if (settings.dryRun) {
    const removal = plan.removeStale ? ` after removing the incomplete releases/${plan.release}` : '';
    const flip = renderFlipScript(context, flipRecords(settings, member));
    host.showDryRun(`${plan.action} ${plan.release} in ${plan.releasePath}${removal}`, build ? [['build', build], ['flip', flip]] : [['flip', flip]]);
    member.stage = 'done';
    Object.assign(member.result, { ...data, status: 'dry-run', release: facts.currentRelease, previousRelease: plan.previousRelease, releasePath: currentPath(settings, facts) });
    return;
  }
  member.stage = 'ready';
}

/**
 * What the flip of a prepared host writes. Retention rides along with the flip
 * (one round trip); it keeps the release flipped away from, so a flip back
 * after activate or verify stays possible.
 */
function flipRecords(settings: Settings, member: HostDeploy): FlipRecords {
  const { plan, active, facts } = member;
  const after = factsAfterFlip(facts!, active!, member.departed, 'deploy', member.dataTarget);
  const prune = planPrune(after, settings.keepReleases, [plan!.release, rollbackTarget(after)]);
  return { active: active!, departed: member.departed, event: 'deploy', dataTarget: member.dataTarget, dataBefore: facts!.currentDataRelease, prune };
}

/** Another host failed before the flip: remove what was built here. */
async function discard(settings: Settings, member: HostDeploy, reason: string): Promise<void> {
  const { host, context, plan, active } = member;
  if (host && context && plan && active && plan.action === 'build') {
    await host.run('discard', renderDiscardScript(context, active, settings.migrate ? plan.release : '', reason), 600);
    member.deps.logger.info(`${host.host}: removed releases/${plan.release}: not flipped because ${reason}`);
  }
  throw new Error(`not flipped because ${reason}; current is unchanged here`);
}

/** Phase 9 on one host: flip data/current (if migrated), then current; then retention. */
async function flip(settings: Settings, member: HostDeploy): Promise<void> {
  const { host, context, plan, active, facts } = member;
  if (!host || !context || !plan || !active || !facts) return;
  member.warnings.forEach((warning) => member.deps.logger.warning(`${host.host}: ${warning}`));
  const lines = await host.run('flip', renderFlipScript(context, flipRecords(settings, member)), 600);
  member.result.removed = host.reportRemoved(lines);
  member.stage = 'flipped';
  member.flipped = true;
  const data = member.dataTarget ? `, ${dataLabel(settings.deployPath, settings.dataPath)}/current -> releases/${member.dataTarget}` : '';
  member.deps.logger.info(`${host.host}: current -> releases/${plan.release}${data}`);
  Object.assign(member.result, {
    status: 'deployed',
    release: plan.release,
    previousRelease: plan.previousRelease,
    releasePath: plan.releasePath,
    dataRelease: member.dataTarget || facts.currentDataRelease,
    previousDataRelease: member.dataTarget ? facts.currentDataRelease : '',
    warnings: member.warnings,
  });
}

/** Phases 10–11 on one host: `activate` or `verify` in the new release. */
async function runHook(member: HostDeploy, name: 'activate' | 'verify', command: string): Promise<void> {
  const { host, context } = member;
  if (!host || !context) return;
  await host.run(name, renderHookScript(context, name, command), context.commandTimeout);
}

/**
 * A host failed after the flip (activate or verify, here or elsewhere): put
 * this host back on the previous release, code and data, and activate that.
 */
async function flipBack(settings: Settings, member: HostDeploy): Promise<void> {
  const { host, plan, facts, active } = member;
  if (!host || !plan || !facts || !active || !member.flipped) return;
  const { logger } = member.deps;
  const previous = facts.manifests.get(plan.previousRelease);
  const error = member.result.error;
  const attention = (what: string, failure: unknown) => {
    const message = `NEEDS ATTENTION: ${host.host} ${what}: ${explainFailure(host.host, failure).message}`;
    logger.error(message);
    Object.assign(member.result, { status: 'failed', error: [error, message].filter(Boolean).join('; ') });
    member.stage = 'failed';
  };
  try {
    if (!previous) throw new Error(`there is no previous release to go back to (this was the first deploy)`);
    const context = host.context(previous.release, plan.release);
    const dataTarget = member.dataTarget ? facts.currentDataRelease : '';
    const records = { active: previous, departed: { ...active, state: 'rolled-back' as const }, event: 'rollback' as const, dataTarget, dataBefore: member.dataTarget };
    await host.run('flip', renderFlipScript(context, records), 60);
    logger.warning(`${host.host}: flipped back to releases/${previous.release}${dataTarget ? ` and data release ${dataTarget}` : ''}`);
    member.flipped = false;
    Object.assign(member.result, {
      status: 'rolled-back',
      release: previous.release,
      previousRelease: plan.release,
      releasePath: currentPath(settings, { ...facts, currentRelease: previous.release }),
      dataRelease: facts.currentDataRelease,
      previousDataRelease: member.dataTarget,
      error: error || `rolled back because another host failed after the flip`,
    });
    member.stage = 'done';
    if (settings.activate) {
      try {
        await host.run('activate', renderHookScript(context, 'activate', settings.activate), settings.commandTimeout);
      } catch (failure) {
        attention(`is back on ${previous.release}, but activate failed there`, failure);
      }
    }
  } catch (failure) {
    attention(`could not be put back on ${plan.previousRelease || 'a previous release'} and still runs ${plan.release}`, failure);
  }
}

function finishAll(hosts: HostDeploy[]): HostResult[] {
  return hosts.map((member) => {
    member.result.totalSeconds = (Date.now() - member.started) / 1000;
    return member.result;
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


/** Said whenever data/current goes back to an older data release; `data` is data-path as messages name it (dataLabel). */
export function dataRollbackWarning(from: string, to: string, data: string): string {
  return `${data}/current goes back from data release ${from || '(none)'} to ${to}: data written since the migration to ${from || 'the current data'} is not in the restored data release ${to} (it stays in ${data}/releases/${from}). Set rollback-data: false to keep the current data.`;
}
