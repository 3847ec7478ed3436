/**
 * Deploying in stages (issue 24): `prepare` builds a release on every host and
 * stops at ready; a later deploy of it only flips. `canary: N` flips the first
 * N hosts, runs their hooks, and only then the others. The decisions here are
 * pure; commands/fleet.ts and commands/deploy.ts carry them out.
 */
import { InputError } from './errors.js';
import type { HostFacts } from './facts.js';
import type { Manifest } from './manifest.js';
import type { Command } from './inputs.js';

/** The commands that build a release (and so name one, with its source). */
export function buildsRelease(command: Command): boolean {
  return command === 'deploy' || command === 'prepare';
}

/** The longest canary-wait: a day. A longer wait is a second workflow (prepare, then switch). */
const MAX_CANARY_WAIT = 24 * 3600;

/**
 * canary and canary-wait, checked against the command, the hosts and verify.
 * A canary is judged by verify, so it needs one; it needs a second stage, so
 * fewer hosts than `hosts` has.
 */
export function parseStages(command: Command, canary: string, canaryWait: string, hostCount: number, hasVerify: boolean): { canary: number; canaryWait: number } {
  if (!canary) {
    if (canaryWait) throw new InputError('canary-wait', `is '${shown(canaryWait)}', but canary is not set`, 'canary: N as well (the hosts that go first), or no canary-wait');
    return { canary: 0, canaryWait: 0 };
  }
  if (command !== 'deploy') {
    throw new InputError('canary', `is set, but command is ${command}: only a deploy flips in stages`, 'canary on the deploy that flips (a prepare flips nothing), or no canary');
  }
  if (hostCount < 2) throw new InputError('canary', `is '${shown(canary)}', but hosts has one host: there is no second stage`, 'two or more hosts, or no canary');
  if (!/^[0-9]{1,4}$/.test(canary) || Number(canary) < 1 || Number(canary) >= hostCount) {
    throw new InputError('canary', `'${shown(canary)}' is not a number of canary hosts`, `a whole number from 1 to ${hostCount - 1}: the first N of the ${hostCount} hosts flip first, the others after them`);
  }
  if (!hasVerify) throw new InputError('canary', `is ${canary}, but verify is not set: a canary is judged by verify`, 'a verify command (a health check) with canary');
  if (canaryWait && (!/^[0-9]{1,6}$/.test(canaryWait) || Number(canaryWait) < 1 || Number(canaryWait) > MAX_CANARY_WAIT)) {
    throw new InputError('canary-wait', `'${shown(canaryWait)}' is not a number of seconds`, `a whole number from 1 to ${MAX_CANARY_WAIT}`);
  }
  return { canary: Number(canary), canaryWait: canaryWait ? Number(canaryWait) : 0 };
}

function shown(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value).slice(1, -1);
}

/** Which stage a host flipped in: the canary's, or the rest's (with a canary). */
export type StageName = 'canary' | 'rest';

/** The hosts in the order they flip: the first `canary` of them, then the rest; one stage without a canary. */
export function splitStages<T>(hosts: readonly T[], canary: number): { name: StageName | null; hosts: T[] }[] {
  if (canary <= 0 || canary >= hosts.length) return [{ name: null, hosts: [...hosts] }];
  return [
    { name: 'canary', hosts: hosts.slice(0, canary) },
    { name: 'rest', hosts: hosts.slice(canary) },
  ];
}

/**
 * Releases that are prepared (ready) and newer than `current`: a prepare made
 * them for a switch to come, so retention must not remove them (issue 24).
 * Newer by finished time, which the host wrote; a ready release older than
 * current is left from an interrupted deploy, and retention judges it as any.
 */
export function preparedAhead(facts: HostFacts): string[] {
  const finished = (release: string) => {
    const manifest = facts.manifests.get(release);
    return manifest?.finished || manifest?.started || '';
  };
  const current = facts.currentRelease ? finished(facts.currentRelease) : '';
  return [...facts.releaseDirs].filter((release) => {
    const manifest = facts.manifests.get(release);
    return manifest?.state === 'ready' && release !== facts.currentRelease && finished(release).localeCompare(current) > 0;
  });
}

/**
 * What a deploy does with data when it activates a complete release without a
 * rebuild. migrate: the release is ready and its data was never migrated for
 * it (a prepare copies no data): copy data/current and migrate the copy now,
 * before the barrier. keep: a prepared release without migrate leaves
 * data/current as it is. recorded: any other release goes back to the data
 * release it recorded (as a rollback does).
 */
export function dataAtSwitch(manifest: Manifest, migrate: string): 'migrate' | 'keep' | 'recorded' {
  if (manifest.state !== 'ready') return 'recorded';
  if (migrate && manifest.dataRelease !== manifest.release) return 'migrate';
  return manifest.dataRelease ? 'recorded' : 'keep';
}
