/**
 * A host as the pure core sees it, advanced by applying the plans the way
 * deploy.ts and rollback.ts do (build → flip → prune), but to HostFacts in
 * memory instead of a real deploy-path. Each step is one run of tagflip.
 */
import { departedRecord } from '../../src/core/adopt.js';
import type { HostFacts } from '../../src/core/facts.js';
import { type Manifest, NOW } from '../../src/core/manifest.js';
import { type DeployPlan, type RollbackPlan, dataTargetFor, factsAfterFlip, planDeploy, planPrune, planRollback, rollbackTarget } from '../../src/core/plan.js';
import { facts, history, manifest } from './host-facts.js';

export class SimulatedHost {
  facts: HostFacts = facts({ deployPathExists: false });
  /** What the last run's prune removed. */
  removed: string[] = [];
  /** The data releases the last run's prune removed. */
  removedData: string[] = [];
  private minute = 0;

  constructor(readonly keepReleases = 5) {}

  /** A fresh, strictly increasing host time. */
  private now(): string {
    this.minute += 1;
    return `2024-06-01T${String(10 + Math.floor(this.minute / 60)).padStart(2, '0')}:${String(this.minute % 60).padStart(2, '0')}:00Z`;
  }

  /**
   * command: deploy of `release`; `fail` makes its build (or migrate) exit 1;
   * `migrate` migrates a copy of the data into data release `release`, as
   * deploy.ts does; `rollbackData` is the input of that name (used when a
   * complete release is activated again).
   */
  deploy(release: string, { fail = false, migrate = false, rollbackData = true } = {}): DeployPlan {
    this.removed = [];
    this.removedData = [];
    const plan = planDeploy('/srv/app', release, { ...this.facts, releaseDirExists: this.facts.releaseDirs.has(release) });
    if (plan.action === 'unchanged') return plan;
    let active: Manifest;
    let dataTarget = '';
    if (plan.action === 'build') {
      const started = this.now();
      if (fail) {
        // The build script removes the directory (and the data copy), records the failure; current is untouched, nothing is pruned.
        const failed = manifest(release, 'failed', plan.previousRelease, {
          started,
          finished: this.now(),
          exitCode: 1,
          failedStep: migrate ? 'migrate' : 'build',
          dataRelease: migrate ? release : this.facts.currentDataRelease,
        });
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
      dataTarget = migrate ? release : '';
      active = manifest(release, 'ready', plan.previousRelease, {
        started,
        finished: this.now(),
        commit: `commit-of-${release}`,
        dataRelease: migrate ? release : this.facts.currentDataRelease,
      });
    } else {
      dataTarget = rollbackData ? dataTargetFor(this.facts, release) : '';
      active = { ...this.facts.manifests.get(release)!, previousRelease: plan.previousRelease, dataRelease: dataTarget || this.facts.currentDataRelease };
    }
    const departed = departedRecord(this.facts, plan.previousRelease);
    this.facts = { ...factsAfterFlip(this.facts, active, departed, 'deploy', dataTarget), deployPathExists: true };
    // The flip script fills an adopted record's time as it writes it.
    if (departed?.adopted === NOW) this.facts.manifests.set(departed.release, { ...departed, adopted: this.now() });
    this.prune([release, plan.previousRelease, rollbackTarget(this.facts)]);
    return plan;
  }

  /** command: rollback, with rollback-to `to` ('' for the previous release) and rollback-data. */
  rollback(to = '', { rollbackData = true } = {}): RollbackPlan {
    this.removed = [];
    this.removedData = [];
    const plan = planRollback(this.facts, to);
    if (plan.action === 'unchanged') return plan;
    const dataTarget = rollbackData ? dataTargetFor(this.facts, plan.target) : '';
    const target = { ...this.facts.manifests.get(plan.target)!, dataRelease: dataTarget || this.facts.currentDataRelease };
    const from = this.facts.manifests.get(plan.from);
    const departed = from ? { ...from, state: plan.fromState } : null;
    this.facts = factsAfterFlip(this.facts, target, departed, 'rollback', dataTarget);
    this.prune([plan.target, plan.from, rollbackTarget(this.facts)]);
    return plan;
  }

  /** command: prune (also the end of every deploy and rollback). */
  prune(protect: string[] = [this.facts.currentRelease, rollbackTarget(this.facts)], keep = this.keepReleases): string[] {
    const plan = planPrune(this.facts, keep, protect);
    // As HostSession.prune: no prune script (and no history line) when there is nothing to remove.
    if (plan.remove.length === 0 && plan.removeData.length === 0) return [];
    const releaseDirs = new Set(this.facts.releaseDirs);
    const manifests = new Map(this.facts.manifests);
    const dataDirs = new Set(this.facts.dataDirs);
    for (const release of plan.remove) {
      releaseDirs.delete(release);
      manifests.delete(release);
    }
    for (const release of plan.removeData) dataDirs.delete(release);
    const line = plan.removeData.length > 0 ? history.prunedWithData(plan.remove, plan.removeData) : history.pruned(...plan.remove);
    this.facts = { ...this.facts, releaseDirs, manifests, dataDirs, history: [...this.facts.history, line] };
    this.removed = plan.remove;
    this.removedData = plan.removeData;
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

  /** Directories under data/releases/, sorted. */
  get dataDirs(): string[] {
    return [...this.facts.dataDirs].sort();
  }

  get dataCurrent(): string {
    return this.facts.currentDataRelease;
  }

  /** Every record's data release, by release. */
  get dataReleases(): Record<string, string> {
    return Object.fromEntries([...this.facts.manifests.values()].map((record) => [record.release, record.dataRelease]).sort());
  }

  get rollbackTarget(): string {
    return rollbackTarget(this.facts);
  }
}
