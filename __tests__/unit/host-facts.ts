/** Builders of HostFacts, manifests and history entries for the unit tests of the pure core. */
import type { HostFacts } from '../../src/core/facts.js';
import type { HistoryEntry, Manifest, ReleaseState } from '../../src/core/manifest.js';
import type { ControlLine } from '../../src/remote/session.js';

/** A release record; `changes` overrides any field (finished time, commit, …). */
export function manifest(release: string, state: ReleaseState, previousRelease = '', changes: Partial<Manifest> = {}): Manifest {
  return {
    release,
    state,
    commit: '',
    dataRelease: '',
    previousRelease,
    started: '2024-06-01T10:00:00Z',
    finished: '',
    activated: '',
    exitCode: null,
    failedStep: '',
    actor: 'octocat',
    runUrl: '',
    host: 'deploy@web1',
    ...changes,
  };
}

export interface FactsChanges extends Partial<HostFacts> {
  /** Manifests, keyed by their release. */
  records?: Manifest[];
  /** Directories under releases/. */
  dirs?: string[];
  /** What `current` points to: sets currentRelease and currentTarget. */
  current?: string;
  /** Directories under data/releases/. */
  data?: string[];
  /** The data release data/current points to. */
  dataCurrent?: string;
}

/** HostFacts of an existing deploy-path; empty unless changed. */
export function facts(changes: FactsChanges = {}): HostFacts {
  const { records = [], dirs = [], current, data = [], dataCurrent = '', ...rest } = changes;
  return {
    deployPathExists: true,
    currentRelease: current ?? '',
    currentTarget: current ? `releases/${current}` : '',
    currentCommit: '',
    precopied: false,
    currentContent: null,
    releaseDirExists: false,
    releaseDirs: new Set(dirs),
    currentDataRelease: dataCurrent,
    currentDataTarget: dataCurrent ? `releases/${dataCurrent}` : '',
    dataDirs: new Set(data),
    manifests: new Map(records.map((record) => [record.release, record])),
    history: [],
    lockHolder: null,
    problems: [],
    sourceCommit: '',
    sourceError: '',
    ...rest,
  };
}

function entry(event: HistoryEntry['event'], status: string, release: string, previousRelease: string): HistoryEntry {
  return { time: '', event, status, release, previousRelease, host: 'deploy@web1', actor: 'octocat', runUrl: '' };
}

/** History lines as the build, flip and prune scripts write them. */
export const history = {
  deployed: (release: string, previous = '') => entry('deploy', 'deployed', release, previous),
  failed: (release: string, previous = '') => entry('deploy', 'failed', release, previous),
  rolledBack: (release: string, from: string) => entry('rollback', 'rolled-back', release, from),
  pruned: (...removed: string[]) => ({ ...entry('prune', 'pruned', '', ''), removed }),
  prunedWithData: (removed: string[], removedData: string[]) => ({ ...entry('prune', 'pruned', '', ''), removed, removedData }),
};

/** A control line as RemoteSession builds it from `<tag> <kind> <args…>`. */
export function control(text: string): ControlLine {
  const [kind, ...args] = text.split(' ');
  return { kind, args, rest: args.join(' ') };
}
