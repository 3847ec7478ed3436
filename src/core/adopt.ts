/**
 * Adoption of a site tagflip did not set up. A site deployed by hand or by
 * Capistrano has `current -> releases/<name>` and no records. The first flip
 * away from such a release must not lose it: it is the release to go back to.
 * So that flip records it (adopts it), and from then on rollback and retention
 * treat it like a release tagflip built.
 */
import type { HostFacts } from './facts.js';
import { type Manifest, NOW, blankManifest } from './manifest.js';

/**
 * The record of the release a deploy replaces, now inactive; null when there
 * is none (first deploy to an empty site, or a current whose directory is gone).
 */
export function departedRecord(facts: HostFacts, release: string): Manifest | null {
  const manifest = facts.manifests.get(release);
  if (manifest) return { ...manifest, state: 'inactive' };
  return release && facts.releaseDirs.has(release) ? adoptedRecord(facts, release) : null;
}

/**
 * A release tagflip has no record of, recorded with what is known: its name,
 * its commit when the directory tells it, and the data release it runs with.
 * Its build times are unknown and stay empty (retention counts it the oldest);
 * `adopted` is filled with the host's time as the record is written.
 */
function adoptedRecord(facts: HostFacts, release: string): Manifest {
  const current = release === facts.currentRelease;
  return {
    ...blankManifest(release, 'inactive'),
    commit: current ? facts.currentCommit : '',
    dataRelease: current ? facts.currentDataRelease : '',
    adopted: NOW,
  };
}

/**
 * Whether `record` is adopted by the flip that writes it. Only a record made
 * by adoptedRecord still holds the placeholder for the host's time; the flip
 * then also writes the `adopt` history line that puts the release below the
 * new one (see activationStack).
 */
export function adoptedNow(record: Manifest | null): boolean {
  return record?.adopted === NOW;
}
