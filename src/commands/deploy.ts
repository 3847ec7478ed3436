import { departedRecord } from '../core/adopt.js';
import { DeployError, InputError } from '../core/errors.js';
import type { ControlLine } from '../core/control-line.js';
import type { HostFacts } from '../core/facts.js';
import { type FleetHost, attempt, runFleet, showDryRun } from './fleet.js';
import { type HostDependencies, restingResult } from './host-run.js';
import { HostSession } from '../remote/host-session.js';
import type { Logger } from '../core/logger.js';
import { COMMIT, type Manifest, type ReleaseSource, blankManifest } from '../core/manifest.js';
import { dataLabel } from '../core/paths.js';
import { type DeployPlan, dataTargetFor, factsAfterFlip, planDeploy, planPrune, rollbackTarget } from '../core/plan.js';
import { inPool } from '../core/pool.js';
import type { HostResult } from '../core/result.js';
import { type FlipRecords, type RenderedScript, renderBuildScript, renderDataCopyScript, renderDataDiscardScript, renderDiscardScript, renderFlipScript } from '../remote/scripts.js';
import type { Settings } from '../core/settings.js';
import { dataAtSwitch } from '../core/stages.js';
import { TransferProgress, describeTransfer, prepareTransfer } from '../upload/transfer.js';
import { type ScannedUpload, type UploadSource, scanUpload } from '../upload/tree.js';

/** Deploy one release to one host (a fleet of one). */
export async function deployToHost(settings: Settings, deps: HostDependencies): Promise<HostResult> {
  const [result] = await deployFleet(settings, [deps], deps.logger);
  return result;
}

/**
 * Deploy to every host of the step: all build (phases 1–8), then all flip, or
 * none does (9–11). A failing `activate` or `verify` flips every host back.
 */
export async function deployFleet(settings: Settings, members: HostDependencies[], logger: Logger): Promise<HostResult[]> {
  const upload = settings.upload ? await readSource(settings, logger) : null;
  // The hosts where the release was ready (prepared): their switch only flips.
  const switching = new Set<FleetHost>();
  return runFleet(settings, members, logger, {
    command: 'deploy',
    prepare: async (hosts, phase) => {
      await phase('build', () => inPool(hosts, settings.maxParallel, (member) => attempt(settings, member, () => prepare(settings, member, upload, switching))));
      logSwitch(settings, hosts, switching, logger);
    },
    afterHookFailure: 'flip back',
  });
}

/**
 * `command: prepare` (issue 24): phases 1–8 on every host, without the data
 * copy and migration, and no flip; each host ends prepared (or unchanged, where
 * the release is current already). A host that fails fails the step; the
 * others keep their ready release, so that running prepare again builds only
 * where it failed.
 */
export async function prepareFleet(settings: Settings, members: HostDependencies[], logger: Logger): Promise<HostResult[]> {
  const upload = settings.upload ? await readSource(settings, logger) : null;
  return runFleet(settings, members, logger, {
    command: 'deploy',
    prepare: (hosts, phase) => phase('build', () => inPool(hosts, settings.maxParallel, (member) => attempt(settings, member, () => prepare(settings, member, upload)))),
    afterHookFailure: 'flip back',
  });
}

/** A deploy of a prepared release: say where it only flips, and where it had to be built first (the flip waited for those). */
function logSwitch(settings: Settings, hosts: readonly FleetHost[], switching: ReadonlySet<FleetHost>, logger: Logger): void {
  if (switching.size === 0) return;
  const names = (selected: readonly FleetHost[]) => selected.map((member) => member.result.host).join(', ');
  const built = hosts.filter((member) => member.stage === 'ready' && !switching.has(member));
  const prepared = hosts.filter((member) => switching.has(member));
  logger.info(`${settings.release} was ready on ${names(prepared)}: no rebuild there, only the switch`);
  if (built.length > 0) logger.info(`${settings.release} was not prepared on ${names(built)}: built there first, and the switch waited for it`);
}

/**
 * Check and list the upload once for every host, before any connection: a
 * missing, empty or unreadable upload is a bad input. Its files are hashed
 * while the hosts connect (scanUpload).
 */
async function readSource(settings: Settings, logger: Logger): Promise<ScannedUpload> {
  let scan: ScannedUpload;
  try {
    scan = await scanUpload(settings.upload, settings.uploadExclude);
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError('upload', `cannot read ${settings.upload}: ${(error as Error).message}`, 'a readable directory, archive or file on the runner');
  }
  scan.skipped.forEach(({ path, why }) => logger.info(`upload: left out ${path}: ${why}`));
  logger.info(`upload: ${scan.count} entries, ${(scan.totalBytes / 1e6).toFixed(1)} MB in ${scan.root}`);
  return scan;
}

/** The upload's hashes, once the host's facts are in; a file changed meanwhile fails the host before anything changed there. */
async function hashedUpload(host: string, scan: ScannedUpload, logger: Logger): Promise<UploadSource> {
  try {
    // The facts are in: this thread has nothing else to do for this host until the hashes are.
    const upload = await scan.hashed();
    logger.debug(`upload: content list ${upload.listHash}; ${scan.hashedHere()} of the files hashed on the main thread`);
    return upload;
  } catch (error) {
    const problem = error instanceof InputError ? error.problem : (error as Error).message;
    throw new DeployError(host, 'upload', problem, 'leave the files of upload alone while tagflip reads them and run again; nothing was changed here');
  }
}

/** Phases 1–8 on one host: connect, preflight, lock, facts, plan, build (and migrate). */
async function prepare(settings: Settings, member: FleetHost, scan: ScannedUpload | null, switching?: Set<FleetHost>): Promise<void> {
  const { logger } = member.deps;
  const now = member.deps.now ?? (() => new Date());
  const host = await HostSession.start(member.deps.transport, logger, settings);
  member.host = host;
  const context = host.context(settings.release, '');
  const facts = await host.open(context, settings.dryRun ? 'no' : 'yes');
  member.facts = facts;
  const upload = scan ? await hashedUpload(host.host, scan, logger) : null;
  const source = expectedSource(settings, facts, upload);
  if (source?.kind === 'git' && facts.sourceError) {
    // Without the commit the ref names now, a build of this name cannot be told current or stale.
    throw new DeployError(host.host, 'source', facts.sourceError, `${host.remedyFor('source')}; nothing was changed`);
  }
  const plan = planDeploy(settings.deployPath, settings.release, facts, source, { forceBuild: settings.forceBuild, frontEnd: settings.frontEnd });
  context.previousRelease = plan.previousRelease;
  const preparing = settings.command === 'prepare';
  const currently = plan.action !== 'unchanged' && plan.previousRelease ? ` (current: ${plan.previousRelease})` : '';
  const reason = preparing && plan.action === 'activate' ? `${plan.release} is already built (${facts.manifests.get(plan.release)?.state}) from the same source; nothing to prepare` : plan.reason;
  logger.info(`${host.host}: ${reason}${currently}`);

  if (plan.action === 'unchanged') {
    // A dry run reports dry-run whatever it found, as docs/deploying.md (Dry run) says.
    Object.assign(member.result, { ...restingResult(settings, facts), status: settings.dryRun ? 'dry-run' : 'unchanged' });
    member.stage = 'done';
    return;
  }
  if (preparing && plan.action === 'activate') {
    Object.assign(member.result, { ...restingResult(settings, facts), status: settings.dryRun ? 'dry-run' : 'prepared', preparedRelease: plan.release });
    member.stage = 'done';
    return;
  }
  if (plan.action === 'activate') switching?.add(member);
  // The host fills in the commit it exported (COMMIT) when it writes the ready or failed record.
  const recordedSource = source?.kind === 'git' ? { ...source, commit: COMMIT } : source;
  const building: Manifest = {
    ...buildingManifest(settings, plan, host.host, now()),
    // A prepared release has no data of its own until its switch copies and migrates it (stages.ts).
    dataRelease: preparing ? '' : settings.migrate ? plan.release : facts.currentDataRelease,
    ...(recordedSource ? { source: recordedSource } : {}),
  };
  // Each host gets only what its current release lacks (a dry run, whose facts start no copy, says what a deploy would reuse).
  const transfer = upload && plan.action === 'build' ? prepareTransfer(upload, facts.currentContent, plan.previousRelease, facts.precopied || settings.dryRun) : null;
  const build = plan.action === 'build' ? renderBuildScript(context, building, transfer?.sections ?? null, facts.currentDataRelease) : null;
  // A current release tagflip has no record of is adopted by this flip (adopt.ts).
  const departed = departedRecord(facts, plan.previousRelease);
  let active: Manifest;
  let dataTarget: string;
  let migrated = false;
  const warnings: string[] = [];
  if (build) {
    active = { ...building, state: 'ready', ...(source ? { source } : {}) };
    dataTarget = settings.migrate ? plan.release : '';
    if (!settings.dryRun) {
      const buildStarted = Date.now();
      const progress = transfer ? new TransferProgress(logger, host.host, transfer) : null;
      const data = transfer && progress ? { stream: () => transfer.stream(), progress: (sent: number) => progress.update(sent), taken: (piece: Buffer) => transfer.taken(piece) } : undefined;
      try {
        const lines = await host.run('build', build, settings.commandTimeout * 2, {
          data,
          onControl: (line) => {
            if (line.kind === 'received') progress?.finish();
          },
        });
        const [finished = '', commit = ''] = lines.find((line) => line.kind === 'ready')?.args ?? [];
        active = { ...active, finished, commit, ...(source?.kind === 'git' ? { source: { ...source, commit } } : {}) };
        if (dataReused(lines)) {
          active = { ...active, dataRelease: facts.currentDataRelease, dataReused: true };
          dataTarget = '';
          logger.info(reuseNote(host.host, plan.release, facts.currentDataRelease));
        }
      } finally {
        member.result.buildSeconds = (Date.now() - buildStarted) / 1000;
        if (progress) member.result.uploadBytes = progress.sent;
      }
    }
  } else {
    const data = dataAtSwitch(facts.manifests.get(plan.release)!, settings.migrate);
    let reused = false;
    if (data === 'migrate') {
      // Copied and migrated now, not at the prepare: no write made since is lost.
      dataTarget = plan.release;
      if (!settings.dryRun) reused = dataReused(await host.run('migrate', renderDataCopyScript(context), settings.commandTimeout * 2));
      if (reused) {
        dataTarget = '';
        logger.info(reuseNote(host.host, plan.release, facts.currentDataRelease));
      }
    } else if (data === 'keep') {
      dataTarget = '';
    } else {
      dataTarget = settings.rollbackData ? dataTargetFor(facts, plan.release) : '';
      if (dataTarget) warnings.push(dataRollbackWarning(facts.currentDataRelease, dataTarget, dataLabel(settings.deployPath, settings.dataPath)));
    }
    active = { ...reactivatedManifest(plan, facts), dataRelease: dataTarget || facts.currentDataRelease, ...(reused ? { dataReused: true } : {}) };
    migrated = data === 'migrate' && !reused;
  }
  if (preparing) {
    // Built and ready: it waits for the deploy that flips it. Nothing else happens here.
    Object.assign(member.result, { ...restingResult(settings, facts), status: settings.dryRun ? 'dry-run' : 'prepared', preparedRelease: plan.release });
    if (settings.dryRun && build) {
      showDryRun({ ...settings, activate: '', verify: '' }, member, `${plan.action} ${plan.release} in ${plan.releasePath} and stop there (ready, not flipped)`, [['build', build]]);
    }
    member.stage = 'done';
    return;
  }
  const records = flipRecords(settings, plan, facts, active, departed, dataTarget);
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
    // The flip back goes to the release replaced, adopted or not.
    back: departed
      ? { active: departed, departed: { ...active, state: 'rolled-back' }, event: 'rollback', dataTarget: dataTarget ? facts.currentDataRelease : '', dataBefore: dataTarget }
      : null,
    discard: build ? (reason) => renderDiscardScript(context, active, dataTarget, reason) : migrated ? (reason) => renderDataDiscardScript(context, reason) : null,
    discarded: build ? `releases/${plan.release}` : `the data copy ${dataLabel(settings.deployPath, settings.dataPath)}/releases/${plan.release}`,
    warnings,
  };
  if (settings.dryRun) {
    const removal = plan.removeStale ? ` after removing the existing releases/${plan.release}` : '';
    const details = transfer ? [`would send ${describeTransfer(transfer).replace(/ sent$/, '')} to releases/${plan.release}`] : [];
    details.push(`then would flip current to releases/${plan.release}${plan.previousRelease ? ` (from ${plan.previousRelease})` : ''}`);
    const flip = renderFlipScript(context, records);
    const before: [string, RenderedScript][] = build ? [['build', build]] : migrated ? [['migrate', renderDataCopyScript(context)]] : [];
    showDryRun(settings, member, `${plan.action} ${plan.release} in ${plan.releasePath}${removal}`, [...before, ['flip', flip]], { details, prune: records.prune });
    member.stage = 'done';
    Object.assign(member.result, { ...restingResult(settings, facts), status: 'dry-run', warnings });
    return;
  }
  member.stage = 'ready';
}

/**
 * What the flip of a prepared host writes, and the retention that follows it
 * (fleet.ts: with the flip, or after verify). Retention keeps the release
 * flipped away from, so a flip back stays possible.
 */
function flipRecords(settings: Settings, plan: DeployPlan, facts: HostFacts, active: Manifest, departed: Manifest | null, dataTarget: string): FlipRecords {
  const after = factsAfterFlip(facts, active, departed, 'deploy', dataTarget);
  // The release flipped away from is kept by name: the history's rollback target
  // is another one when current was relinked by hand.
  const prune = planPrune(after, settings.keepReleases, [plan.release, plan.previousRelease, rollbackTarget(after)]);
  return { active, departed, event: 'deploy', dataTarget, dataBefore: facts.currentDataRelease, prune };
}

/**
 * What this deploy makes the release from (SPEC step 4): with `repository`,
 * the ref and the commit it names now, as the facts round trip resolved it
 * ('' when it was not needed: no record of the release exists). null when the
 * build fetches the code itself: tagflip cannot tell one content from another.
 * With `upload`, the SHA-256 of its content list.
 */
function expectedSource(settings: Settings, facts: HostFacts, upload: UploadSource | null): ReleaseSource | null {
  if (settings.repository) return { kind: 'git', ref: settings.ref, commit: facts.sourceCommit };
  if (upload) return { kind: 'upload', sha256: upload.listHash };
  return null;
}

/** The record of a complete release that is activated again without a rebuild. */
function reactivatedManifest(plan: DeployPlan, facts: HostFacts): Manifest {
  return { ...facts.manifests.get(plan.release)!, previousRelease: plan.previousRelease };
}

function buildingManifest(settings: Settings, plan: DeployPlan, host: string, started: Date): Manifest {
  return {
    ...blankManifest(plan.release, 'building'),
    previousRelease: plan.previousRelease,
    started: started.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    actor: settings.actor,
    runUrl: settings.runUrl,
    host,
  };
}


/** Said whenever data/current goes back to an older data release; `data` is data-path as messages name it (dataLabel). */
export function dataRollbackWarning(from: string, to: string, data: string): string {
  return `${data}/current goes back from data release ${from || '(none)'} to ${to}: data written since the migration to ${from || 'the current data'} is not in the restored data release ${to} (it stays in ${data}/releases/${from}). Set rollback-data: false to keep the current data.`;
}

/** Whether migrate-check said the data is up to date: no copy was made, and data/current stays where it is. */
function dataReused(lines: readonly ControlLine[]): boolean {
  return lines.some((line) => line.kind === 'data-reused');
}

function reuseNote(host: string, release: string, dataRelease: string): string {
  return `${host}: migrate-check exited 0: releases/${release} uses data release ${dataRelease} as it is (no copy, no migration)`;
}
