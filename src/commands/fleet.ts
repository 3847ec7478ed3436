import { NotFlippedError } from '../core/errors.js';
import type { HostFacts } from '../core/facts.js';
import { type HostDependencies, emptyHostResult, recordFailure, restingResult } from './host-run.js';
import { type HostSession, answeredByHost, explainFailure } from '../remote/host-session.js';
import { type Logger, hostLogger } from '../core/logger.js';
import { dataLabel, releasePath } from '../core/paths.js';
import type { HostResult } from '../core/result.js';
import { type FlipRecords, type RenderedScript, type ScriptContext, prunes, renderFlipScript, renderHistoryScript, renderHookScript, renderHousekeepingScript } from '../remote/scripts.js';
import type { ControlLine } from '../core/control-line.js';
import type { Settings } from '../core/settings.js';
import { splitStages } from '../core/stages.js';

/**
 * The shape of every step that moves `current` (SPEC, deploy steps 9–11 and
 * "Rollback"): a first phase gets each host ready (a deploy builds, a rollback
 * agrees on one target); then the barrier (all flip, or none does); the flip on
 * every host; `activate`, then `verify`; and, if one of them fails, what the
 * command does about it.
 */

/** What a ready host's flip does, and how to undo it. */
export interface Change {
  /** release: the release flipped to; previousRelease: the one flipped from (TAGFLIP_PREVIOUS_RELEASE). */
  context: ScriptContext;
  records: FlipRecords;
  /** The host's result once flipped. */
  outcome: Partial<HostResult>;
  /** The flip back to the release that ran before (null: there was none, a first deploy). */
  back: FlipRecords | null;
  /** A deploy's release built here, removed when another host fails before the flip. */
  discard: ((reason: string) => RenderedScript) | null;
  /** What discard removes, for the log (default: releases/<release>). */
  discarded?: string;
  /** Logged just before the flip, and shown in the summary. */
  warnings: string[];
}

/** One host as it moves through the phases of the step. */
export interface FleetHost {
  deps: HostDependencies;
  result: HostResult;
  started: number;
  /** Set once connected. */
  host: HostSession | null;
  /** Set once read, before anything changed. */
  facts: HostFacts | null;
  /** Set when the host is ready to flip. */
  change: Change | null;
  /**
   * ready: waiting at the barrier; flipped: current moved; done: nothing (more)
   * to do; failed: see `failure`; unknown: a flip was sent and its answer never
   * came, so current may have moved or not (the result says both releases).
   */
  stage: 'ready' | 'flipped' | 'done' | 'failed' | 'unknown';
  failure: unknown;
  /** current was moved by this run (and not yet moved back). */
  flipped: boolean;
  /** With dry-run: the scripts this host would have been sent, shown after every host's plan. */
  dryRunScripts: readonly [string, RenderedScript][];
}

/** Runs one phase of the step, as one log group when there are several hosts (`count` of them: all by default). */
export type Phase = (name: string, work: () => Promise<unknown>, count?: number) => Promise<void>;

export interface FleetOperation {
  command: 'deploy' | 'rollback';
  /** The first phase, on every host: each ends ready (with its change), done, or failed. */
  prepare(hosts: FleetHost[], phase: Phase): Promise<void>;
  /**
   * When activate or verify fails after the flip. A deploy flips every host back
   * to the release that ran before. A rollback does not flip forward again to
   * the release it left (presumably the broken one): it stays, and names each
   * host where a hook failed as needing attention.
   */
  afterHookFailure: 'flip back' | 'stay';
}

/** Run a step that moves `current` on every host: all flip, or none does. */
export async function runFleet(settings: Settings, members: HostDependencies[], logger: Logger, operation: FleetOperation): Promise<HostResult[]> {
  const fleet = members.length > 1;
  const hosts: FleetHost[] = members.map((deps) => ({
    deps: fleet ? { ...deps, logger: hostLogger(deps.logger, deps.transport.label) } : deps,
    result: emptyHostResult(deps.transport.label),
    started: Date.now(),
    host: null,
    facts: null,
    change: null,
    stage: 'ready',
    failure: null,
    flipped: false,
    dryRunScripts: [],
  }));
  const phase: Phase = async (name, work, count = hosts.length) => {
    if (fleet) logger.startGroup(`${name} · ${count} ${count === 1 ? 'host' : 'hosts'}`);
    try {
      await work();
    } finally {
      if (fleet) logger.endGroup();
    }
  };
  const onEach = async (name: string, selected: FleetHost[], work: (member: FleetHost) => Promise<void>) => {
    if (selected.length > 0) await phase(name, () => Promise.all(selected.map((member) => attempt(settings, member, () => work(member)))), selected.length);
  };
  const inStage = (stage: FleetHost['stage']) => hosts.filter((member) => member.stage === stage);
  const named = (selected: FleetHost[]) => selected.map((member) => member.result.host);
  try {
    await operation.prepare(hosts, phase);
    if (settings.dryRun) showDryRunScripts(hosts, logger);
    if (settings.dryRun && settings.canary > 0) {
      const [canary, rest] = splitStages(named(hosts), settings.canary);
      logger.info(`dry run: canary: ${canary.hosts.join(', ')} would flip and run activate and verify first${settings.canaryWait ? `, then verify again after ${settings.canaryWait} s` : ''}; ${rest?.hosts.join(', ')} only once they passed`);
    }

    const failed = inStage('failed');
    if (failed.length > 0) {
      await phase('discard', () => Promise.all(inStage('ready').map((member) => attempt(settings, member, () => holdBack(member, named(failed))))));
      return finishAll(hosts);
    }

    const hooked = Boolean(settings.activate || settings.verify);
    // One host and no hooks: nothing follows the flip (and its retention), so the session's end goes right behind it.
    const last = settings.targets.length === 1 && !hooked;
    // With canary, the first hosts flip and pass their hooks before the others flip (stages.ts).
    const stages = splitStages(inStage('ready'), settings.canary);
    if (stages.length > 1) {
      stages.forEach((stage) => stage.hosts.forEach((member) => (member.result.stage = stage.name ?? undefined)));
      logger.info(`canary: ${named(stages[0].hosts).join(', ')} flip${stages[0].hosts.length === 1 ? 's' : ''} first; ${named(stages[1].hosts).join(', ')} only once the canary passed verify`);
    }
    let sick: FleetHost[] = [];
    for (const [index, stage] of stages.entries()) {
      const label = (name: string) => (stage.name ? `${stage.name}: ${name}` : name);
      const waiting = stages.slice(index + 1).flatMap((later) => later.hosts);
      await onEach(label('flip'), stage.hosts, (member) => flip(settings, member, last, !hooked));
      const notFlipped = stage.hosts.filter((member) => member.stage === 'failed' || member.stage === 'unknown');
      if (notFlipped.length > 0) {
        // All or none, whatever the command: the hosts that flipped go back (a
        // host whose flip went unanswered cannot be told; its result says so).
        const why = `flipped back because ${others(named(notFlipped))} ${notFlipped.some((member) => member.stage === 'failed') ? 'failed at the flip' : 'did not answer the flip'}`;
        await phase('flip back', () => Promise.all(hosts.filter((member) => member.flipped).map((member) => flipBack(settings, operation, member, why))));
        await standDown(settings, waiting, named(notFlipped), phase);
        return finishAll(hosts);
      }
      const hooks = [
        ['activate', settings.activate],
        ['verify', settings.verify],
      ] as const;
      for (const [name, command] of hooks) {
        if (!command) continue;
        // A deploy flips back after any failure, so it stops there; a rollback stays, so every host gets its verdict.
        if (operation.afterHookFailure === 'flip back' && inStage('failed').length > 0) break;
        await onEach(label(name), stage.hosts.filter((member) => member.stage === 'flipped'), (member) => runHook(member, name, command));
      }
      if (stage.name === 'canary' && settings.canaryWait > 0 && inStage('failed').length === 0) {
        // canary-wait: the canary serves alone this long before verify judges it again.
        const wait = () => new Promise((resolve) => setTimeout(resolve, settings.canaryWait * 1000));
        await phase(label('wait'), () => (logger.info(`canary-wait: waiting ${settings.canaryWait} s, then verify runs on the canary again`), wait()), stage.hosts.length);
        await onEach(label('verify again'), stage.hosts, (member) => runHook(member, 'verify', settings.verify));
      }
      sick = inStage('failed');
      if (sick.length > 0) {
        await standDown(settings, waiting, named(sick), phase);
        break;
      }
    }
    if (sick.length > 0 && operation.afterHookFailure === 'flip back') {
      const why = `rolled back because ${stages.length > 1 ? 'a host' : 'another host'} failed after the flip`;
      await phase('roll back', () => Promise.all(hosts.filter((member) => member.flipped).map((member) => flipBack(settings, operation, member, why))));
    } else if (sick.length > 0) {
      await phase('record', () => Promise.all(sick.map((member) => needsAttention(member))));
    }
    // Retention once the hooks passed everywhere: a deploy that ends rolled back removes nothing.
    if (hooked && sick.length === 0) await onEach('prune', inStage('flipped'), (member) => housekeeping(member));
    inStage('flipped').forEach((member) => (member.stage = 'done'));
    return finishAll(hosts);
  } finally {
    await Promise.all(hosts.map((member) => (member.host ? member.host.close() : member.deps.transport.close())));
  }
}

/** Run one step of a host's work; a failure marks that host failed and says why. */
export async function attempt(settings: Settings, member: FleetHost, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    fail(settings, member, error);
  }
}

/** Mark a host failed and say why. */
export function fail(settings: Settings, member: FleetHost, error: unknown): void {
  member.stage = 'failed';
  member.failure = error;
  // Until a flip back, a host that flipped runs the new release: keep reporting that.
  recordFailure(settings, member.result, member.flipped ? null : member.facts, error, member.deps.logger);
}

/** A dry run on a ready host: what it would do, the exact scripts, and the hooks that would follow. */
export function showDryRun(settings: Settings, member: FleetHost, what: string, scripts: readonly [string, RenderedScript][], more: { details?: string[]; prune?: { remove: readonly string[]; removeData: readonly string[] } } = {}): void {
  const { host } = member;
  if (!host) return;
  const { logger } = member.deps;
  const { details = [], prune } = more;
  logger.info(`${host.host}: dry run: would ${what}; nothing is changed`);
  details.forEach((detail) => logger.info(`${host.host}: dry run: ${detail}`));
  for (const [name, command] of [
    ['activate', settings.activate],
    ['verify', settings.verify],
  ] as const) {
    if (command) logger.info(`${host.host}: dry run: then would run ${name}: ${command}`);
  }
  if (prune) {
    const data = prune.removeData.length > 0 ? ` and data releases ${prune.removeData.join(', ')}` : '';
    const removed = prune.remove.length > 0 || data ? `remove ${prune.remove.join(', ') || 'no release'}${data}` : 'remove nothing';
    logger.info(`${host.host}: dry run: then retention would ${removed} (keep-releases: ${settings.keepReleases})`);
  }
  // The scripts come after every host's plan (runFleet): a person reads the plan first.
  member.dryRunScripts = scripts;
}

/** The scripts a dry run would have sent, each host's in its own group, after all the plans. */
function showDryRunScripts(hosts: readonly FleetHost[], logger: Logger): void {
  const shown = hosts.filter((member) => member.host && member.dryRunScripts.length > 0);
  if (shown.length === 0) return;
  logger.info('dry run: the scripts that would be sent follow, one group each (the plan is above)');
  for (const member of shown) {
    for (const [name, script] of member.dryRunScripts) {
      logger.startGroup(`${name} script for ${member.host!.host} (dry run, not run)`);
      script.display.split('\n').forEach((line) => logger.info(line));
      logger.endGroup();
    }
  }
}

/**
 * A stage failed (issue 24): the hosts of the later stages never flip and run
 * no hook for the release. What they built for it is removed, as when a host
 * fails before the flip; they end where they started, as the rolled-back
 * deploy does (a failure to remove is theirs, and fails them).
 */
async function standDown(settings: Settings, waiting: FleetHost[], failedHosts: string[], phase: Phase): Promise<void> {
  if (waiting.length === 0) return;
  const why = `the ${failedHosts.length > 1 ? 'hosts' : 'host'} of an earlier stage (${failedHosts.join(', ')}) failed`;
  await phase(
    'stand down',
    () =>
      Promise.all(
        waiting.map((member) =>
          attempt(settings, member, async () => {
            const { host, change, facts } = member;
            let removed = '';
            if (host && change?.discard) {
              await host.run('discard', change.discard(why), 600);
              removed = ` (${change.discarded ?? `releases/${change.context.release}`} was removed)`;
            }
            const message = `${member.result.host}: not flipped because ${why}; nothing changed here${removed}`;
            member.deps.logger.info(message);
            Object.assign(member.result, facts ? restingResult(settings, facts) : {}, { status: 'rolled-back', error: message });
            member.stage = 'done';
          }),
        ),
      ),
    waiting.length,
  );
}

/** Another host failed before the flip: nothing moves here (a deploy removes what it built). */
async function holdBack(member: FleetHost, failedHosts: string[]): Promise<void> {
  const { host, change } = member;
  if (host && change?.discard) {
    const release = change.context.release;
    await host.run('discard', change.discard(`${failedHosts.join(', ')} failed`), 600);
    const removed = change.discarded ?? `releases/${release}`;
    member.deps.logger.info(`${host.host}: removed ${removed}: not flipped because ${others(failedHosts)} failed`);
    throw new NotFlippedError(host.host, failedHosts, removed === `releases/${release}` ? `(the release ${release} built here was removed)` : `(${removed} was removed; releases/${release} stays ready)`);
  }
  throw new NotFlippedError(member.result.host, failedHosts);
}

/**
 * Flip data/current (if it moves), then current; retention rides along when no
 * hook follows. Only the runner decides a flip, once it has read the host's
 * readiness; what it learns is one of three outcomes (sendFlip).
 */
async function flip(settings: Settings, member: FleetHost, last: boolean, withRetention: boolean): Promise<void> {
  const { host, change } = member;
  if (!host || !change) return;
  const { logger } = member.deps;
  change.warnings.forEach((warning) => logger.warning(`${host.host}: ${warning}`));
  const { records } = change;
  const sent = withRetention ? records : { ...records, prune: undefined };
  const answer = await sendFlip(host, renderFlipScript(change.context, sent), last, change.context.previousRelease, change.context.release);
  if (answer.outcome === 'not done') throw answer.error;
  if (answer.outcome === 'unknown') {
    unconfirmed(settings, member, change.context.previousRelease, change.context.release, answer.error);
    return;
  }
  member.stage = 'flipped';
  member.flipped = true;
  member.result.removed = host.reportRemoved(answer.lines);
  const data = records.dataTarget ? `, ${dataLabel(change.context.deployPath, change.context.dataPath)}/current -> releases/${records.dataTarget}` : '';
  const departed = records.departed ? ` (${records.departed.release} is now ${records.departed.state})` : '';
  logger.info(`${host.host}: current -> releases/${records.active.release}${data}${departed}`);
  const warnings = [...change.warnings, ...afterFlipWarnings(host, answer)];
  Object.assign(member.result, change.outcome, { warnings });
}

/** What a flip's answer tells: it flipped (whatever became of the connection after), it did not, or nobody can tell. */
type FlipAnswer = { outcome: 'done'; lines: ControlLine[]; lost: unknown } | { outcome: 'not done'; error: unknown } | { outcome: 'unknown'; error: unknown };

/**
 * Send a flip and read its answer. Done: the host said `flipped` (the connection
 * may have gone after it: lost says why). Not done: the host said it did not
 * flip, or the script never left (the session had already ended). Unknown: the
 * script was sent and the connection went before the host's answer.
 */
async function sendFlip(host: HostSession, script: RenderedScript, last: boolean, from: string, to: string): Promise<FlipAnswer> {
  const sent = host.reachable;
  const seen: ControlLine[] = [];
  const inFlight = { from, to, flipped: false };
  if (sent) flipsInFlight.set(host.host, inFlight);
  try {
    const lines = await host.run('flip', script, 600, {
      last,
      onControl: (line) => {
        seen.push(line);
        if (line.kind === 'flipped') inFlight.flipped = true;
      },
    });
    return { outcome: 'done', lines, lost: null };
  } catch (error) {
    if (seen.some((line) => line.kind === 'flipped')) return { outcome: 'done', lines: seen, lost: error };
    return sent && !answeredByHost(error) ? { outcome: 'unknown', error } : { outcome: 'not done', error };
  } finally {
    flipsInFlight.delete(host.host);
  }
}

/**
 * The flips sent and not yet answered, by host: what a run stopped by a signal
 * says of each (run.ts), since it exits before any answer can come.
 */
const flipsInFlight = new Map<string, { from: string; to: string; flipped: boolean }>();

/** What each host with a flip on its way may run now, for a run that stops before the answers (one line a host). */
export function flipsInFlightNow(): string[] {
  return [...flipsInFlight].map(([host, flip]) =>
    flip.flipped
      ? `${host}: current -> releases/${flip.to} (it said flipped; the rest of its flip phase may not have run)`
      : `${host}: unknown: the flip to ${flip.to} was sent and not answered; current is either ${flip.from ? `releases/${flip.from}` : 'as it was'} or releases/${flip.to}: run status to see which`,
  );
}

/** Warnings for what came after a done flip: housekeeping that failed, or the connection that went before the script's end. */
function afterFlipWarnings(host: HostSession, answer: Extract<FlipAnswer, { outcome: 'done' }>): string[] {
  const warnings = host.reportHousekeeping(answer.lines);
  if (answer.lost) {
    const why = explainFailure(host.host, answer.lost).problem;
    const warning = `the connection went after the flip (${why}): current was flipped; retention and the history line may not have finished (run status to see the host)`;
    host.warn(warning);
    warnings.push(warning);
  }
  return warnings;
}

/**
 * A flip to `release` whose answer never came: current is either what it was
 * or `release`, and nobody can tell from here. The result says both.
 */
function unconfirmed(settings: Settings, member: FleetHost, before: string, release: string, error: unknown): void {
  const host = member.result.host;
  const why = explainFailure(host, error).problem;
  const message =
    `${host}: flip unknown: the connection went after the flip to ${release} was sent and before its answer (${why}); ` +
    `current is either ${before ? `releases/${before}` : 'as it was'} or releases/${release}. Run tagflip with command: status to see which, then deploy or roll back as needed`;
  member.deps.logger.error(message);
  member.stage = 'unknown';
  member.failure = error;
  Object.assign(member.result, {
    status: 'unknown',
    release: before,
    releasePath: before ? releasePath(settings.deployPath, before) : '',
    unconfirmedRelease: release,
    error: message,
  });
}

/** Retention after verify passed: what it removed, and any failure as a warning. */
async function housekeeping(member: FleetHost): Promise<void> {
  const { host, change } = member;
  const plan = change?.records.prune;
  if (!host || !change || !plan || !prunes(plan)) return;
  let lines: ControlLine[];
  try {
    lines = await host.run('prune', renderHousekeepingScript(change.context, plan), 600, { last: true });
  } catch (error) {
    const warning = `retention did not finish: ${explainFailure(host.host, error).problem}; current is releases/${change.context.release} as deployed, and the next run's retention tries again`;
    host.warn(warning);
    member.result.warnings = [...(member.result.warnings ?? []), warning];
    return;
  }
  member.result.removed = host.reportRemoved(lines);
  member.result.warnings = [...(member.result.warnings ?? []), ...host.reportHousekeeping(lines)];
}

/** `activate` or `verify` in the release that is now current, with the hook environment. */
async function runHook(member: FleetHost, name: 'activate' | 'verify', command: string): Promise<void> {
  const { host, change } = member;
  if (!host || !change) return;
  await host.run(name, renderHookScript(change.context, name, command), change.context.commandTimeout);
}

/**
 * Put a flipped host back on the release it ran before, code and data, and
 * activate that (every flip is followed by activate).
 */
async function flipBack(settings: Settings, operation: FleetOperation, member: FleetHost, why: string): Promise<void> {
  const { host, change } = member;
  if (!host || !change || !member.flipped) return;
  const { logger } = member.deps;
  const flippedTo = change.context.release;
  const error = member.result.error;
  const attention = (what: string, failure: unknown) => {
    const message = `NEEDS ATTENTION: ${host.host} ${what}: ${explainFailure(host.host, failure).message}`;
    logger.error(message);
    Object.assign(member.result, { status: 'failed', error: [error, message].filter(Boolean).join('; '), attention: message });
    member.stage = 'failed';
  };
  try {
    const back = change.back;
    if (!back) throw new Error('there is no previous release to go back to (this was the first deploy)');
    const context = host.context(back.active.release, flippedTo);
    const answer = await sendFlip(host, renderFlipScript(context, back), false, flippedTo, back.active.release);
    if (answer.outcome === 'unknown') {
      unconfirmed(settings, member, flippedTo, back.active.release, answer.error);
      member.result.error = [error, member.result.error].filter(Boolean).join('; ');
      return;
    }
    if (answer.outcome === 'not done') throw answer.error;
    logger.warning(`${host.host}: flipped back to releases/${back.active.release}${back.dataTarget ? ` and data release ${back.dataTarget}` : ''}`);
    member.flipped = false;
    // A deploy that ends where it started was rolled back; a rollback that ends where it started failed.
    const deploy = operation.command === 'deploy';
    Object.assign(member.result, {
      status: deploy ? 'rolled-back' : 'failed',
      release: back.active.release,
      previousRelease: flippedTo,
      releasePath: releasePath(settings.deployPath, back.active.release),
      dataRelease: back.dataTarget || change.outcome.dataRelease,
      previousDataRelease: back.dataTarget ? change.records.dataTarget : '',
      error: error || `${host.host}: ${why}`,
    });
    member.stage = deploy ? 'done' : 'failed';
    if (settings.activate) {
      try {
        await host.run('activate', renderHookScript(context, 'activate', settings.activate), settings.commandTimeout);
      } catch (failure) {
        attention(`is back on ${back.active.release}, but activate failed there`, failure);
      }
    }
  } catch (failure) {
    attention(`could not be put back on ${change.context.previousRelease || 'a previous release'} and still runs ${flippedTo}`, failure);
  }
}

/**
 * A rollback's activate or verify failed on this host after its flip. It stays
 * on the target (going forward again would bring back what was rolled away
 * from); the history says the hooks failed, and the host needs attention.
 */
async function needsAttention(member: FleetHost): Promise<void> {
  const { host, change } = member;
  if (!host || !change || !member.flipped) return;
  const failure = explainFailure(host.host, member.failure);
  const { release, previousRelease: from } = change.context;
  const reason = `${failure.phase} failed after the rollback; current stays on ${release}, not flipped forward to ${from}`;
  let unrecorded = '';
  try {
    await host.run('record', renderHistoryScript(change.context, 'rollback', 'failed', { failedStep: failure.phase, exitCode: failure.exitCode, reason }), 60);
  } catch (error) {
    unrecorded = ` (the history line saying so could not be written: ${explainFailure(host.host, error).message})`;
  }
  const message =
    `NEEDS ATTENTION: ${host.host} now runs ${release} (rolled back from ${from}), but ${failure.phase} failed there; ` +
    `tagflip did not flip forward to ${from} again, as that is presumably the broken release. ` +
    `Check the app on ${host.host}, then deploy a fixed release or roll back to another one with rollback-to${unrecorded}`;
  member.deps.logger.error(message);
  Object.assign(member.result, { status: 'failed', error: `${member.result.error}; ${message}`, attention: message });
}

function others(hosts: readonly string[]): string {
  return `${hosts.length > 1 ? 'other hosts' : 'another host'} (${hosts.join(', ')})`;
}

function finishAll(hosts: FleetHost[]): HostResult[] {
  return hosts.map((member) => {
    member.result.totalSeconds = (Date.now() - member.started) / 1000;
    return member.result;
  });
}
