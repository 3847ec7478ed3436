import type { HostFacts } from './facts.js';
import { COMPLETE_STATES } from './manifest.js';
import { releasePath } from './paths.js';

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

/** Decide what a deploy of `release` does on a host (SPEC, deploy step 4). */
export function planDeploy(deployPath: string, release: string, facts: HostFacts): DeployPlan {
  const manifest = facts.manifests.get(release);
  const complete = manifest !== undefined && COMPLETE_STATES.includes(manifest.state) && facts.releaseDirExists;
  const base = { release, releasePath: releasePath(deployPath, release), removeStale: false };

  if (facts.currentTarget && !facts.currentRelease) {
    throw new PlanError(
      `current points to '${facts.currentTarget}', which is not a release directory of tagflip`,
      `point current at releases/<name> yourself, or move it aside, then deploy again`,
    );
  }

  if (facts.currentRelease === release) {
    if (!complete) {
      throw new PlanError(
        `current already points to releases/${release}, but that release has no complete record (state: ${manifest?.state ?? 'none'})`,
        'tagflip never rebuilds the live release in place; deploy it under a new release name',
      );
    }
    return { ...base, action: 'unchanged', previousRelease: manifest.previousRelease, reason: `${release} is already the current release` };
  }

  const previousRelease = facts.currentRelease;
  if (complete) {
    return { ...base, action: 'activate', previousRelease, reason: `${release} is already built (${manifest.state}); activating it without a rebuild` };
  }
  const stale = facts.releaseDirExists;
  const reason = stale
    ? `releases/${release} is left from an incomplete attempt (state: ${manifest?.state ?? 'no record'}); removing it and building again`
    : `building ${release}`;
  return { ...base, action: 'build', previousRelease, removeStale: stale, reason };
}
