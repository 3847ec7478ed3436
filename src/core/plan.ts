import { adoptedNow } from './adopt.js';
import type { HostFacts } from './facts.js';
import { COMPLETE_STATES, type HistoryEntry, type Manifest, type ReleaseSource } from './manifest.js';
import { releasePath } from './paths.js';
import { preparedAhead } from './stages.js';
import { type FrontEnd, perCommitRelease, spellInput } from './front-end.js';

export type DeployAction = 'build' | 'activate' | 'unchanged';

export interface DeployPlan {
  action: DeployAction;
  release: string;
  releasePath: string;
  /** The release `current` points to now: the rollback target after this deploy. */
  previousRelease: string;
  /** A directory from an earlier, incomplete attempt that must go first. */
  removeStale: boolean;
  /** One sentence for the log: why this action. */
  reason: string;
}

/** The plan cannot be carried out; the message says why and what to do. */
export class PlanError extends Error {
  constructor(
    message: string,
    readonly remedy: string,
  ) {
    super(message);
    this.name = 'PlanError';
  }
}

/** Choices of the deploy that change step 4. */
export interface DeployOptions {
  /** Rebuild a complete release that is not current even when its source is unchanged. */
  forceBuild?: boolean;
  /** Whom the advice is for: a workflow's inputs, or a command line's flags. */
  frontEnd?: FrontEnd;
}

/**
 * `current` must be absent or lead to releases/<name> (by real path, however
 * the link is written: facts.ts). Anywhere else, tagflip cannot tell which
 * release serves, nor flip back to what does: it refuses rather than guess.
 * Returns the refusal, naming `consequence`, or null when current is fine.
 */
export function currentOutsideReleases(facts: HostFacts, consequence: string): PlanError | null {
  if (!facts.currentTarget || facts.currentRelease) return null;
  return new PlanError(
    `current points to '${facts.currentTarget}', which is not a release directory (releases/<name> in deploy-path); ${consequence}`,
    'point current at the release that serves, as tagflip links it: ln -sfn releases/<name> current (in deploy-path); or move it aside; then run again',
  );
}

function requireReleaseCurrent(facts: HostFacts, consequence: string): void {
  const refusal = currentOutsideReleases(facts, consequence);
  if (refusal) throw refusal;
}

/**
 * Decide what a deploy of `release` does on a host (SPEC, deploy step 4).
 * `source` is what this deploy makes the release from: a git ref with the
 * commit it names now (from the facts), or an upload's content-list hash;
 * null when the build fetches by itself, so there is nothing to compare.
 * One release name means one content: a complete release made from another
 * source is never activated again.
 */
export function planDeploy(deployPath: string, release: string, facts: HostFacts, source: ReleaseSource | null = null, options: DeployOptions = {}): DeployPlan {
  const manifest = facts.manifests.get(release);
  const complete = manifest !== undefined && COMPLETE_STATES.includes(manifest.state) && facts.releaseDirExists;
  const base = { release, releasePath: releasePath(deployPath, release), removeStale: false };

  requireReleaseCurrent(facts, 'nothing was built or flipped');

  const frontEnd = options.frontEnd ?? 'action';
  const newName = `deploy under a new release name (e.g. ${perCommitRelease(frontEnd, release)})`;
  if (facts.currentRelease === release) {
    if (!complete) {
      throw new PlanError(
        `current already points to releases/${release}, but that release has no complete record (state: ${manifest?.state ?? 'none'})`,
        'tagflip never rebuilds the live release in place; deploy it under a new release name',
      );
    }
    // The remedy is part of the message: it reads as one sentence in the log.
    if (compareSource(manifest, source) === 'different') {
      throw new PlanError(
        `releases/${release} is current and was built from ${describeRecorded(manifest)}; ${describeExpected(source!)}: ${newName}, or deploy another release first (a release that is not current is rebuilt from the new source)`,
        '',
      );
    }
    if (options.forceBuild) {
      throw new PlanError(
        `releases/${release} is current, and ${spellInput(frontEnd, 'force-build')} never rebuilds the current release in place: ${newName}, or deploy another release first, then ${release} again with ${spellInput(frontEnd, 'force-build')}`,
        '',
      );
    }
    return { ...base, action: 'unchanged', previousRelease: manifest.previousRelease, reason: `${release} is already the current release` };
  }

  const previousRelease = facts.currentRelease;
  if (complete) {
    if (compareSource(manifest, source) === 'different') {
      const reason = `releases/${release} was built from ${describeRecorded(manifest)}, but ${describeExpected(source!)}: removing the stale build and building it again`;
      return { ...base, action: 'build', previousRelease, removeStale: true, reason };
    }
    if (options.forceBuild) {
      const reason = `force-build: removing releases/${release} (${manifest.state}, built from ${describeRecorded(manifest)}) and building it again`;
      return { ...base, action: 'build', previousRelease, removeStale: true, reason };
    }
    return { ...base, action: 'activate', previousRelease, reason: `${release} is already built (${manifest.state}); activating it without a rebuild` };
  }
  const stale = facts.releaseDirExists;
  const reason = stale
    ? `releases/${release} is left from an incomplete attempt (state: ${manifest?.state ?? 'no record'}); removing it and building again`
    : `building ${release}`;
  return { ...base, action: 'build', previousRelease, removeStale: stale, reason };
}

/**
 * Whether a complete release was made from `expected`. A release whose source
 * tagflip cannot tell (its build fetched the code itself, or it was adopted
 * without a commit) is different from any named source: its content is not
 * known to be what was asked for. Records of older tagflips have no source,
 * but their commit is the one their git export resolved to.
 */
function compareSource(recorded: Manifest, expected: ReleaseSource | null): 'same' | 'different' | 'unchecked' {
  if (!expected) return 'unchecked';
  if (expected.kind === 'upload') return recorded.source?.kind === 'upload' && recorded.source.sha256 === expected.sha256 ? 'same' : 'different';
  // Only a dry run without a mirror gets here without a commit: it cannot tell.
  if (!expected.commit) return 'unchecked';
  const commit = recorded.source ? (recorded.source.kind === 'git' ? recorded.source.commit : '') : recorded.commit;
  return sameCommit(commit, expected.commit) ? 'same' : 'different';
}

/** Equal object names; an abbreviated one (a REVISION file may hold one) matches its full form. */
function sameCommit(a: string, b: string): boolean {
  const [short, long] = a.length <= b.length ? [a, b] : [b, a];
  return short.length >= 7 && long.startsWith(short);
}

/** A commit or hash as the log shows it: long enough to find, short enough to read. */
const abbreviated = (hex: string) => hex.slice(0, 12);

function describeRecorded(manifest: Manifest): string {
  const source = manifest.source;
  if (source?.kind === 'git') return `${source.ref} (commit ${abbreviated(source.commit) || 'unknown'})`;
  if (source?.kind === 'upload') return `an upload (content list sha256 ${abbreviated(source.sha256)})`;
  if (manifest.commit) return `commit ${abbreviated(manifest.commit)}`;
  return manifest.adopted ? 'an unknown source (made without tagflip)' : 'an unknown source (its build fetched the code itself)';
}

function describeExpected(source: ReleaseSource): string {
  return source.kind === 'git' ? `ref ${source.ref} is ${abbreviated(source.commit)}` : `the upload's content list is sha256 ${abbreviated(source.sha256)}`;
}

/** A release that can be activated: a complete record and its directory. */
function isComplete(facts: HostFacts, release: string): boolean {
  const manifest = facts.manifests.get(release);
  return manifest !== undefined && COMPLETE_STATES.includes(manifest.state) && facts.releaseDirs.has(release);
}

/**
 * The releases that were current, as a stack rebuilt from the history: a
 * deploy pushes its release, and so does the adoption of a release that was
 * current before tagflip's first flip; a rollback pops back down to its target
 * (or pushes it, when it went to a release that was not below).
 */
export function activationStack(facts: HostFacts): string[] {
  const stack: string[] = [];
  for (const entry of facts.history) {
    if (entry.event === 'adopt' || (entry.event === 'deploy' && entry.status === 'deployed')) stack.push(entry.release);
    if (entry.event === 'rollback' && entry.status === 'rolled-back') {
      const below = stack.lastIndexOf(entry.release);
      if (below >= 0) stack.splice(below + 1);
      else stack.push(entry.release);
    }
  }
  return stack;
}

/**
 * Where a bare rollback goes: the newest release that was current before the
 * current one and can still be activated. Rolled-back releases are never
 * picked. Without a usable history, the current release's record of its
 * predecessor is followed instead.
 */
export function rollbackTarget(facts: HostFacts): string {
  const current = facts.currentRelease;
  const usable = (release: string) => release !== '' && release !== current && isComplete(facts, release);
  const stack = activationStack(facts);
  const top = stack.lastIndexOf(current);
  if (top >= 0) {
    for (let i = top - 1; i >= 0; i--) if (usable(stack[i])) return stack[i];
    return '';
  }
  const seen = new Set<string>();
  let candidate = facts.manifests.get(current)?.previousRelease ?? '';
  while (candidate && !seen.has(candidate)) {
    if (usable(candidate)) return candidate;
    seen.add(candidate);
    candidate = facts.manifests.get(candidate)?.previousRelease ?? '';
  }
  return '';
}

export interface RollbackPlan {
  action: 'flip' | 'unchanged';
  /** The release to make current. */
  target: string;
  /** The release current now, rolled away from. */
  from: string;
  /** What `from` becomes: rolled-back when going back, inactive when going forward. */
  fromState: 'rolled-back' | 'inactive';
  reason: string;
}

/** Decide a rollback (SPEC, "Rollback"); `rollbackTo` '' means the previous release. */
export function planRollback(facts: HostFacts, rollbackTo: string): RollbackPlan {
  requireReleaseCurrent(facts, 'nothing was flipped');
  const from = facts.currentRelease;
  if (!from) throw new PlanError('nothing is deployed here (there is no current)', 'deploy a release first');
  const choices = () => {
    const names = [...facts.manifests.values()]
      .filter((manifest) => manifest.release !== from && facts.releaseDirs.has(manifest.release))
      .filter((manifest) => COMPLETE_STATES.includes(manifest.state) || manifest.state === 'rolled-back')
      .map((manifest) => (manifest.state === 'rolled-back' ? `${manifest.release} (rolled-back: only by name)` : manifest.release));
    return names.length > 0 ? `releases that can be rolled back to: ${names.join(', ')}` : 'no other complete release is on the host';
  };
  if (!rollbackTo) {
    const target = rollbackTarget(facts);
    if (!target) throw new PlanError(`there is no previous release to roll back to from ${from}`, `${choices()}; name one with rollback-to`);
    return { action: 'flip', target, from, fromState: 'rolled-back', reason: `rolling back from ${from} to ${target}` };
  }
  if (rollbackTo === from) {
    return { action: 'unchanged', target: from, from, fromState: 'inactive', reason: `${from} is already the current release` };
  }
  const manifest = facts.manifests.get(rollbackTo);
  const explicitOk = manifest?.state === 'rolled-back' && facts.releaseDirs.has(rollbackTo);
  if (!isComplete(facts, rollbackTo) && !explicitOk) {
    const found = !facts.releaseDirs.has(rollbackTo) ? 'is not on the host' : `is not complete (state: ${manifest?.state ?? 'no record'})`;
    throw new PlanError(`rollback-to ${rollbackTo} ${found}`, choices());
  }
  // Going to a release that was current before this one is a rollback; any other is a move forward.
  const stack = activationStack(facts);
  const goingBack = stack.lastIndexOf(rollbackTo) >= 0 && stack.lastIndexOf(rollbackTo) < stack.lastIndexOf(from);
  return {
    action: 'flip',
    target: rollbackTo,
    from,
    fromState: goingBack ? 'rolled-back' : 'inactive',
    reason: `${goingBack ? 'rolling back' : 'switching'} from ${from} to ${rollbackTo}`,
  };
}

/** One host's facts, named, for decisions about the whole fleet. */
export interface NamedFacts {
  host: string;
  facts: HostFacts;
}

/**
 * A rollback of the whole step: every host goes to `target` (its plan may be
 * `unchanged` where it is already there), or no host moves.
 */
export type FleetRollbackPlan =
  | { kind: 'go'; target: string; plans: RollbackPlan[] }
  | {
      kind: 'refused';
      /** Why the step is refused, naming the hosts concerned. */
      refusal: PlanError;
      /** Per host, in order: why it cannot go, or null when it could have (it is held back). */
      errors: (PlanError | null)[];
    };

/**
 * Decide one target for every host of a rollback (SPEC "Rollback", issue 9):
 * a named `rollbackTo` must be complete on every host; a bare rollback goes to
 * the hosts' rollback target only if every host has one and they all agree.
 * Hosts whose histories differ must not end up on different releases.
 */
export function planFleetRollback(hosts: readonly NamedFacts[], rollbackTo: string): FleetRollbackPlan {
  const outcomes = hosts.map(({ facts }): RollbackPlan | PlanError => {
    try {
      return planRollback(facts, rollbackTo);
    } catch (error) {
      if (error instanceof PlanError) return error;
      throw error;
    }
  });
  const errors = outcomes.map((outcome) => (outcome instanceof PlanError ? outcome : null));
  const plans = outcomes.filter((outcome): outcome is RollbackPlan => !(outcome instanceof PlanError));
  const targets = new Set(plans.map((plan) => plan.target));
  if (plans.length === hosts.length && targets.size === 1) return { kind: 'go', target: plans[0].target, plans };
  // One host: its own reason is the whole story.
  if (hosts.length === 1) return { kind: 'refused', refusal: errors[0]!, errors };

  if (rollbackTo) {
    const missing = hosts.flatMap(({ host }, i) => (errors[i] ? [`${host}: ${errors[i]!.message.replace(`rollback-to ${rollbackTo} `, '')}`] : []));
    return {
      kind: 'refused',
      refusal: new PlanError(`rollback-to ${rollbackTo} cannot be activated on every host (${missing.join('; ')})`, 'no host was flipped; name a release that is complete on every host'),
      errors,
    };
  }
  const candidates = hosts.map(({ host }, i) => `${host}: ${outcomes[i] instanceof PlanError ? 'none' : (outcomes[i] as RollbackPlan).target}`);
  const refusal = new PlanError(
    `${plans.length > 0 ? 'the hosts do not agree on the release to roll back to' : 'no host has a release to roll back to'} (${candidates.join('; ')})`,
    'no host was flipped; name the release with rollback-to (it must be complete on every host)',
  );
  // Every host has a candidate, but they differ: no host is to blame, each is refused.
  return { kind: 'refused', refusal, errors: errors.some(Boolean) ? errors : hosts.map(() => refusal) };
}

export interface PrunePlan {
  /** Releases whose directories and records go, oldest first. */
  remove: string[];
  keep: string[];
  /** Data releases no kept release uses (never data/current). */
  removeData: string[];
  /** Directories tagflip has no record of (made by hand, by another tool): never removed, only named. */
  unknown: string[];
}

/**
 * Retention (SPEC step 12): keep the `keep` newest complete releases by
 * finished time, plus `current`, the rollback target and any prepared release
 * newer than `current` whatever their age;
 * remove every other release directory tagflip has a record of, complete or
 * not. A directory without a record is left alone: tagflip cannot tell what it
 * is, and it may be the only copy of a release made before tagflip. The release
 * that serves is kept whatever `protect` says; when `current` leads outside
 * releases/, nothing tells which one that is, and nothing is planned.
 */
export function planPrune(facts: HostFacts, keep: number, protect: readonly string[]): PrunePlan {
  requireReleaseCurrent(facts, 'nothing was removed');
  const finished = (release: string) => {
    const manifest = facts.manifests.get(release);
    return manifest?.finished || manifest?.started || '';
  };
  const recorded = [...facts.releaseDirs].filter((release) => facts.manifests.has(release));
  const complete = recorded
    .filter((release) => {
      const state = facts.manifests.get(release)!.state;
      return COMPLETE_STATES.includes(state) || state === 'rolled-back';
    })
    .sort((a, b) => finished(b).localeCompare(finished(a)) || b.localeCompare(a));
  // A release prepared for a switch to come (stages.ts) is kept whatever its count.
  const kept = new Set([...complete.slice(0, keep), ...[facts.currentRelease, ...protect, ...preparedAhead(facts)].filter(Boolean)]);
  const byAge = [...recorded].sort((a, b) => finished(a).localeCompare(finished(b)) || a.localeCompare(b));
  // Failed releases have no directory left, but their records go too.
  const failedRecords = [...facts.manifests.values()].filter((manifest) => manifest.state === 'failed' && !facts.releaseDirs.has(manifest.release)).map((manifest) => manifest.release);
  const keepList = complete.filter((release) => kept.has(release)).concat([...kept].filter((release) => !complete.includes(release) && recorded.includes(release)));
  const usedData = new Set([facts.currentDataRelease, ...keepList.map((release) => facts.manifests.get(release)?.dataRelease ?? '')]);
  return {
    remove: [...byAge.filter((release) => !kept.has(release)), ...failedRecords],
    keep: keepList,
    // If data/current is not a link tagflip can read, nothing tells which data is live: keep all.
    removeData: facts.currentDataTarget && !facts.currentDataRelease ? [] : [...facts.dataDirs].filter((release) => !usedData.has(release)).sort(),
    unknown: [...facts.releaseDirs].filter((release) => !facts.manifests.has(release)).sort(),
  };
}

/** The facts as they are once `active` is current and `departed` has its new state. */
export function factsAfterFlip(facts: HostFacts, active: Manifest, departed: Manifest | null, event: 'deploy' | 'rollback', dataTarget = ''): HostFacts {
  const manifests = new Map(facts.manifests);
  manifests.set(active.release, { ...active, state: 'active' });
  if (departed) manifests.set(departed.release, departed);
  const line = (entry: Pick<HistoryEntry, 'event' | 'status' | 'release' | 'previousRelease'>): HistoryEntry => ({ time: '', host: '', actor: '', runUrl: '', ...entry });
  const history: HistoryEntry[] = [
    ...facts.history,
    ...(adoptedNow(departed) ? [line({ event: 'adopt', status: 'adopted', release: departed!.release, previousRelease: '' })] : []),
    line({ event, status: event === 'deploy' ? 'deployed' : 'rolled-back', release: active.release, previousRelease: departed?.release ?? '' }),
  ];
  return {
    ...facts,
    currentRelease: active.release,
    currentTarget: `releases/${active.release}`,
    releaseDirs: new Set([...facts.releaseDirs, active.release]),
    currentDataRelease: dataTarget || facts.currentDataRelease,
    dataDirs: dataTarget ? new Set([...facts.dataDirs, dataTarget]) : facts.dataDirs,
    manifests,
    history,
  };
}

/**
 * Where data/current should point when `release` becomes current: its own
 * recorded data release, when that differs from the live one and still exists.
 * '' leaves data/current alone.
 */
export function dataTargetFor(facts: HostFacts, release: string): string {
  const wanted = facts.manifests.get(release)?.dataRelease ?? '';
  return wanted && wanted !== facts.currentDataRelease && facts.dataDirs.has(wanted) ? wanted : '';
}
