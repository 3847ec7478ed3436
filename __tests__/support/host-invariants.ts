/**
 * What must hold on a host once a deploy, however it ended, has settled: the
 * checker of the fault matrix. Each check returns the violations it found, in
 * words, and an empty list when all is well; none of them changes anything.
 *
 * The rules come from the SPEC's layout and from how tagflip itself reads a
 * host (manifest.ts parses, plan.ts's activationStack rebuilds what was
 * current from the history): a host whose files break them would mislead the
 * next plan (a rollback to the wrong release, a release that never gets built
 * again, retention removing what serves).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type HistoryEntry, type Manifest, parseHistoryEntry, parseManifest } from '../../src/core/manifest.js';
import { activationStack } from '../../src/core/plan.js';
import type { HostFacts } from '../../src/core/facts.js';

/** The release `<site>/current` names ('' when there is none), or null when it is not a link into releases/. */
export function currentRelease(site: string): string | null {
  const link = join(site, 'current');
  let target: string;
  try {
    target = readlinkSync(link);
  } catch {
    return existsSync(link) ? null : '';
  }
  const match = /^releases\/([A-Za-z0-9][A-Za-z0-9._+-]*)$/.exec(target);
  return match ? match[1] : null;
}

/** The manifests under .tagflip/releases by file name, null for one tagflip cannot read. */
function readManifests(site: string): Map<string, Manifest | null> {
  const dir = join(site, '.tagflip/releases');
  const manifests = new Map<string, Manifest | null>();
  if (!existsSync(dir)) return manifests;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch (error) {
      // Removed since it was listed: the host is still cleaning up, and settled() looks again.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    manifests.set(name.slice(0, -'.json'.length), parseManifest(text));
  }
  return manifests;
}

/** Every line of history.jsonl, parsed as tagflip parses it (null where it cannot). */
function readHistory(site: string): { line: string; entry: HistoryEntry | null }[] {
  const file = join(site, '.tagflip/history.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => ({ line, entry: parseHistoryEntry(line) }));
}

/** The release directories (not the temporary links a flip makes beside current). */
function releaseDirs(site: string): string[] {
  const dir = join(site, 'releases');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/**
 * `current`, the manifests and the history of a settled host tell one story:
 * - current is absent or a link `releases/<name>` to a directory that exists;
 * - exactly the release current names has the state `active`;
 * - nothing is `building` (a build nobody finishes is failed by the host);
 * - a release whose state says complete (ready, active, inactive) or
 *   rolled-back has its directory; a failed one has none; every directory has
 *   a record that is not failed (SPEC: a directory without a complete record
 *   is never activated, so one left would be dead weight retention skips);
 *   a record's `release` is its file's name;
 * - every history line is one tagflip can read, and the history's last
 *   successful deploy or rollback (the top of the activation stack, which a
 *   bare rollback walks down) names the release current names.
 */
export function checkHostAgrees(site: string): string[] {
  const problems: string[] = [];
  const current = currentRelease(site);
  if (current === null) {
    problems.push(`current is not a link to releases/<name>: ${describeLink(join(site, 'current'))}`);
    return problems;
  }
  if (current && !isDirectory(join(site, 'releases', current))) problems.push(`current points to releases/${current}, which is not a directory`);

  const manifests = readManifests(site);
  const dirs = releaseDirs(site);
  for (const [name, manifest] of manifests) {
    if (!manifest) {
      problems.push(`.tagflip/releases/${name}.json is not a manifest tagflip can read`);
      continue;
    }
    if (manifest.release !== name) problems.push(`.tagflip/releases/${name}.json names release ${manifest.release}`);
    if (manifest.state === 'building') problems.push(`${name} is still building`);
    const hasDir = dirs.includes(name);
    if (['ready', 'active', 'inactive', 'rolled-back'].includes(manifest.state) && !hasDir) problems.push(`${name} is ${manifest.state} but releases/${name} is missing`);
    if (manifest.state === 'failed' && hasDir) problems.push(`${name} is failed but releases/${name} is still there`);
  }
  const active = [...manifests.values()].filter((manifest) => manifest?.state === 'active').map((manifest) => manifest!.release);
  const expectedActive = current ? [current] : [];
  if (active.sort().join(' ') !== expectedActive.join(' ')) {
    problems.push(`active by the manifests: [${active.join(', ')}], but current is ${current || '(none)'}`);
  }
  for (const name of dirs) {
    const manifest = manifests.get(name);
    if (!manifest || manifest.state === 'failed') problems.push(`releases/${name} has ${manifest ? 'a failed record' : 'no record'}`);
  }

  const history = readHistory(site);
  for (const { line, entry } of history) if (!entry) problems.push(`a history line tagflip cannot read: ${line.slice(0, 120)}`);
  const stack = activationStack({ history: history.flatMap(({ entry }) => (entry ? [entry] : [])) } as HostFacts);
  const top = stack.at(-1) ?? '';
  if (top !== current) problems.push(`the history's last deploy or rollback went to ${top || '(none)'}, but current is ${current || '(none)'}`);
  return problems;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function describeLink(path: string): string {
  try {
    const stat = lstatSync(path);
    return stat.isSymbolicLink() ? `-> ${readlinkSync(path)}` : 'not a link';
  } catch {
    return 'missing';
  }
}

/** uid of `user` on this machine. */
export function uidOf(user: string): number {
  return Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
}

/** The processes of `uid` (pid and command line), read from /proc. */
export function processesOf(uid: number): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const real = /^Uid:\s+(\d+)/m.exec(status)?.[1];
      if (Number(real) !== uid) continue;
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      found.push(`${pid} ${command || /^Name:\s+(.*)$/m.exec(status)?.[1] || '?'}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * What a deploy must not leave behind once its host has settled, for a deploy
 * user that nothing else uses: the lock held (flock -n as that user fails), a
 * session's run directory (mktemp -d, in /tmp), a precopy directory, the
 * temporary link of a flip beside current, or any process of that user.
 * `tmp` is where the user's sessions make their run directories.
 */
export function checkNothingLeft(site: string, user: string, uid: number, tmp = '/tmp'): string[] {
  const problems: string[] = [];
  const lock = join(site, '.tagflip/lock');
  if (existsSync(lock)) {
    const probe = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'flock', '-n', lock, 'true'], { encoding: 'utf8' });
    if (probe.status !== 0) problems.push(`the lock ${lock} is held (flock -n as ${user}: exit ${probe.status} ${probe.stderr.trim()})`);
  }
  for (const name of readdirSync(tmp)) {
    try {
      if (lstatSync(join(tmp, name)).uid === uid) problems.push(`${join(tmp, name)} of ${user} is left`);
    } catch {
      // gone meanwhile
    }
  }
  const tagflipDir = join(site, '.tagflip');
  if (existsSync(tagflipDir)) for (const name of readdirSync(tagflipDir).filter((n) => n.startsWith('precopy.'))) problems.push(`.tagflip/${name} is left`);
  if (existsSync(site)) for (const name of readdirSync(site).filter((n) => n.startsWith('.current.tagflip-'))) problems.push(`${name} (a flip's temporary link) is left`);
  for (const left of processesOf(uid)) problems.push(`process of ${user} left: ${left}`);
  return problems;
}

/** A run's report on one host, as the checker needs it; null when the client never said (killed). */
export interface Reported {
  status: string;
  release: string;
}

/**
 * The report is true: its release is what current names now, or it says
 * `unknown` (the connection went while the flip was on its way). A failed
 * deploy leaves current as it was, so its release (the one before) is current
 * too; a deployed or rolled-back one names the release it moved to. `before`
 * is the release current when the run began.
 */
export function checkReportTrue(site: string, reported: Reported | null, before: string): string[] {
  if (!reported || reported.status === 'unknown') return [];
  const current = currentRelease(site) ?? '(not a release link)';
  if (reported.release === current) return [];
  // A run that failed before it read the facts names no release: true if it changed nothing.
  if (reported.status === 'failed' && reported.release === '' && current === before) return [];
  return [`reported ${reported.status} with release ${reported.release || '(none)'}, but current is ${current || '(none)'}`];
}

/**
 * Poll a host until `checks` find nothing or `ms` ran out, and return what they
 * found last: a host that loses its client cleans up on its own time (it
 * notices the connection, stops the hook, removes the build), so an early look
 * would report what is merely still in progress.
 */
export async function settled(checks: () => string[], ms = 15_000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const problems = checks();
    if (problems.length === 0 || Date.now() > until) return problems;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
