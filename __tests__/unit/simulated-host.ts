/**
 * A host as the pure core sees it, advanced by applying the plans the way
 * deploy.ts and rollback.ts do (build → flip → prune), but to HostFacts in
 * memory instead of a real deploy-path. Each step is one run of tagflip.
 */
import type { HostFacts } from '../../src/facts.js';
import type { Manifest } from '../../src/manifest.js';
import { type DeployPlan, type RollbackPlan, factsAfterFlip, planDeploy, planPrune, planRollback, rollbackTarget } from '../../src/plan.js';
import { facts, history, manifest } from './host-facts.js';

export class SimulatedHost {
  facts: HostFacts = facts({ deployPathExists: false });
  /** What the last run's prune removed. */
  removed: string[] = [];
  private minute = 0;

  constructor(readonly keepReleases = 5) {}

  /** A fresh, strictly increasing host time. */
  private now(): string {
    this.minute += 1;
    return `2024-06-01T${String(10 + Math.floor(this.minute / 60)).padStart(2, '0')}:${String(this.minute % 60).padStart(2, '0')}:00Z`;
  }

  /** command: deploy of `release`; `fail` makes its build exit 1. */
  deploy(release: string, { fail = false } = {}): DeployPlan {
    this.removed = [];
    const plan = planDeploy('/srv/app', release, { ...this.facts, releaseDirExists: this.facts.releaseDirs.has(release) });
    if (plan.action === 'unchanged') return plan;
    let active: Manifest;
    if (plan.action === 'build') {
      const started = this.now();
      if (fail) {
        // The build script removes the directory, records the failure; current is untouched, nothing is pruned.
        const failed = manifest(release, 'failed', plan.previousRelease, { started, finished: this.now(), exitCode: 1, failedStep: 'build' });
        const releaseDirs = new Set(this.facts.releaseDirs);
        releaseDirs.delete(release);
        this.facts = {
          ...this.facts,
          deployPathExists: true,
          releaseDirs,
          manifests: new Map(this.facts.manifests).set(release, failed),
          history: [...this.facts.history, history.failed(release, plan.previousRelease)],
        };
        return plan;
      }
      active = manifest(release, 'ready', plan.previousRelease, { started, finished: this.now(), commit: `commit-of-${release}` });
    } else {
      active = { ...this.facts.manifests.get(release)!, previousRelease: plan.previousRelease };
    }
    const current = this.facts.manifests.get(plan.previousRelease);
    const departed = current ? { ...current, state: 'inactive' as const } : null;
    this.facts = { ...factsAfterFlip(this.facts, active, departed, 'deploy'), deployPathExists: true };
    this.prune([release, rollbackTarget(this.facts)]);
    return plan;
  }

  /** command: rollback, with rollback-to `to` ('' for the previous release). */
  rollback(to = ''): RollbackPlan {
    this.removed = [];
    const plan = planRollback(this.facts, to);
    if (plan.action === 'unchanged') return plan;
    const target = this.facts.manifests.get(plan.target)!;
    const from = this.facts.manifests.get(plan.from);
    const departed = from ? { ...from, state: plan.fromState } : null;
    this.facts = factsAfterFlip(this.facts, target, departed, 'rollback');
    this.prune([plan.target, rollbackTarget(this.facts)]);
    return plan;
  }

  /** command: prune (also the end of every deploy and rollback). */
  prune(protect: string[] = [this.facts.currentRelease, rollbackTarget(this.facts)], keep = this.keepReleases): string[] {
    const plan = planPrune(this.facts, keep, protect);
    if (plan.remove.length === 0) return [];
    const releaseDirs = new Set(this.facts.releaseDirs);
    const manifests = new Map(this.facts.manifests);
    for (const release of plan.remove) {
      releaseDirs.delete(release);
      manifests.delete(release);
    }
    this.facts = { ...this.facts, releaseDirs, manifests, history: [...this.facts.history, history.pruned(...plan.remove)] };
    this.removed = plan.remove;
    return plan.remove;
  }

  /** Directories under releases/, sorted. */
  get dirs(): string[] {
    return [...this.facts.releaseDirs].sort();
  }

  /** Every record's state, by release. */
  get states(): Record<string, string> {
    return Object.fromEntries([...this.facts.manifests.values()].map((record) => [record.release, record.state]).sort());
  }

  get current(): string {
    return this.facts.currentRelease;
  }

  get rollbackTarget(): string {
    return rollbackTarget(this.facts);
  }
}
