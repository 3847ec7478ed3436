import type { ControlLine } from './session.js';
import { type Manifest, parseManifest } from './manifest.js';

/** What the preflight/facts phase learnt about a host. */
export interface HostFacts {
  deployPathExists: boolean;
  /** The release `current` points to ('' when there is no `current`). */
  currentRelease: string;
  /** The raw symlink target, for messages when it is not `releases/<name>`. */
  currentTarget: string;
  releaseDirExists: boolean;
  manifests: Map<string, Manifest>;
  /** Preflight checks that failed: what is missing and what to do. */
  problems: { check: string; message: string }[];
}

/** Build HostFacts from the control lines the facts script printed. */
export function readHostFacts(lines: readonly ControlLine[]): HostFacts {
  const facts: HostFacts = {
    deployPathExists: false,
    currentRelease: '',
    currentTarget: '',
    releaseDirExists: false,
    manifests: new Map(),
    problems: [],
  };
  for (const line of lines) {
    if (line.kind === 'problem') {
      facts.problems.push({ check: line.args[0] ?? '', message: line.args.slice(1).join(' ') });
    } else if (line.kind === 'manifest') {
      const manifest = parseManifest(line.rest);
      if (manifest) facts.manifests.set(manifest.release, manifest);
    } else if (line.kind === 'fact') {
      const [key, ...value] = line.args;
      const text = value.join(' ');
      if (key === 'deploy-path') facts.deployPathExists = text === 'exists';
      if (key === 'release-dir') facts.releaseDirExists = true;
      if (key === 'current') {
        facts.currentTarget = text;
        const match = /^releases\/([A-Za-z0-9][A-Za-z0-9._+-]*)\/?$/.exec(text);
        facts.currentRelease = match ? match[1] : '';
      }
    }
  }
  return facts;
}
