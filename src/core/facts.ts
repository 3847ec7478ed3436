import { RELEASE_NAME } from './names.js';
import { type HistoryEntry, type LockHolder, type Manifest, parseHistoryEntry, parseLockHolder, parseManifest } from './manifest.js';
import type { ControlLine } from './control-line.js';
import type { ListedContent } from './content-list.js';

/** What the preflight/facts phase learnt about a host. */
export interface HostFacts {
  deployPathExists: boolean;
  /**
   * The release `current` resolves to on the host, by real path: '' when there
   * is no `current`, or when it leads anywhere but <deploy-path>/releases/<name>.
   */
  currentRelease: string;
  /** The raw symlink target, as written (for messages when it is not a release). */
  currentTarget: string;
  /**
   * The commit the current release's directory names (its git checkout's HEAD,
   * or the REVISION file Capistrano writes), read only when tagflip has no
   * record of that release: what is known about it when it is adopted. '' when unknown.
   */
  currentCommit: string;
  /** Whether releases/<the release being deployed> exists. */
  releaseDirExists: boolean;
  /** Every directory under releases/ that is named like a release. */
  releaseDirs: Set<string>;
  /** The data release data/current resolves to, by real path ('' when there is none, or it is not <data-path>/releases/<name>). */
  currentDataRelease: string;
  /** The raw target of data/current ('' when there is none). */
  currentDataTarget: string;
  /** Every directory under data/releases/ that is named like a release. */
  dataDirs: Set<string>;
  manifests: Map<string, Manifest>;
  /** The newest lines of history.jsonl, oldest first. */
  history: HistoryEntry[];
  /** Who holds the lock (status only: a deploy holds it itself). */
  lockHolder: LockHolder | null;
  /**
   * With upload: the content list of the current release, and which of its
   * files are still as uploaded, on the identity the host recorded when it
   * wrote them (the others changed on the host since, or another user could
   * have changed them, and are sent again). null when the current release was
   * not uploaded, or the answer was not whole (everything is sent).
   */
  currentContent: ListedContent | null;
  /**
   * With upload, for a release not there yet: the host started copying the
   * current release's files still as uploaded (currentContent.files, the same
   * answer) for the new release with the facts (src/remote/host/precopy.sh).
   * Only files of that copy are ever reused.
   */
  precopied: boolean;
  /** Preflight checks that failed: what is missing and what to do. */
  problems: { check: string; message: string }[];
  /**
   * The commit `ref` names now in `repository`, resolved (after a fetch into
   * the mirror, under the lock) only when a record of the release being
   * deployed exists: whether it may be re-used depends on it. '' otherwise.
   */
  sourceCommit: string;
  /** Why the ref could not be resolved (fetch failed, no such ref); '' when it was, or was not needed. */
  sourceError: string;
}

/** A full or abbreviated git object name: anything else in a REVISION file is not trusted as a commit. */
const COMMIT_ID = /^[0-9a-f]{7,64}$/;

/** Build HostFacts from the control lines the facts script printed. */
export function readHostFacts(lines: readonly ControlLine[]): HostFacts {
  const facts: HostFacts = {
    deployPathExists: false,
    currentRelease: '',
    currentTarget: '',
    currentCommit: '',
    releaseDirExists: false,
    releaseDirs: new Set(),
    currentDataRelease: '',
    currentDataTarget: '',
    dataDirs: new Set(),
    manifests: new Map(),
    history: [],
    lockHolder: null,
    currentContent: null,
    precopied: false,
    problems: [],
    sourceCommit: '',
    sourceError: '',
  };
  const listed: string[] = [];
  const seen: string[] = [];
  let precopy = false;
  for (const line of lines) {
    if (line.kind === 'content-list') listed.push(line.rest);
    if (line.kind === 'content-seen') seen.push(line.rest);
    if (line.kind === 'problem') {
      facts.problems.push({ check: line.args[0] ?? '', message: line.args.slice(1).join(' ') });
    } else if (line.kind === 'manifest') {
      const manifest = parseManifest(line.rest);
      if (manifest && RELEASE_NAME.test(manifest.release)) facts.manifests.set(manifest.release, manifest);
    } else if (line.kind === 'history') {
      const entry = parseHistoryEntry(line.rest);
      if (entry) facts.history.push(entry);
    } else if (line.kind === 'fact') {
      const [key, ...value] = line.args;
      const text = value.join(' ');
      if (key === 'deploy-path') facts.deployPathExists = text === 'exists';
      if (key === 'release-dir') facts.releaseDirExists = true;
      if (key === 'dir' && RELEASE_NAME.test(text)) facts.releaseDirs.add(text);
      if (key === 'data-dir' && RELEASE_NAME.test(text)) facts.dataDirs.add(text);
      if (key === 'data-current') facts.currentDataTarget = text;
      if (key === 'data-current-release' && RELEASE_NAME.test(text)) facts.currentDataRelease = text;
      if (key === 'lock-holder') facts.lockHolder = parseLockHolder(text) ?? { command: '', release: '', actor: '', runUrl: '', host: '', since: '' };
      if (key === 'current-commit' && COMMIT_ID.test(text)) facts.currentCommit = text;
      if (key === 'source-commit' && COMMIT_ID.test(text)) facts.sourceCommit = text;
      if (key === 'source-error') facts.sourceError = text;
      if (key === 'current') facts.currentTarget = text;
      if (key === 'current-release' && RELEASE_NAME.test(text)) facts.currentRelease = text;
      if (key === 'precopy') precopy = true;
    }
  }
  const current = seenFiles(seen);
  // Without a whole answer on what is there now, the list is not to be trusted.
  if (current) facts.currentContent = { lines: new Set(listed), files: current };
  // Without a whole answer, nothing the host copied is known: its copy is not taken.
  facts.precopied = current !== null && precopy;
  return facts;
}

/**
 * The regular files of the current release that are still as uploaded
 * (src/remote/host/content-facts.sh): ./path records between a start (s) and find's status
 * (e0). null unless the answer is whole and every step succeeded. A name that
 * is not UTF-8 cannot be one tagflip uploaded (tree.ts refuses those): it is
 * left out, never decoded into something else.
 */
function seenFiles(chunks: readonly string[]): Set<string> | null {
  if (chunks.length === 0) return null;
  const bytes = Buffer.from(chunks.join(''), 'base64');
  const records: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const end = bytes.indexOf(0, at);
    if (end < 0) return null;
    records.push(bytes.subarray(at, end));
    at = end + 1;
  }
  if (records.shift()?.toString('latin1') !== 's' || records.pop()?.toString('latin1') !== 'e0') return null;
  const files = new Set<string>();
  for (const record of records) {
    if (record.length < 3 || record[0] !== 0x2e || record[1] !== 0x2f) return null;
    const path = strictUtf8(record.subarray(2));
    if (path !== null) files.add(path);
  }
  return files;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function strictUtf8(bytes: Uint8Array): string | null {
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}
