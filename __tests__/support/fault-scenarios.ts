/** What the fault matrix breaks: the faults, the scenarios they hit, the points where they start, and the trees an upload ships. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Direction } from './fault-proxy.js';
import { openTempDir } from './fixtures.js';

export const FAULTS = ['sigkill', 'sigterm', 'cut-up', 'cut-down', 'freeze', 'stop-sshd', 'stop-session'] as const;
export type Fault = (typeof FAULTS)[number];
export const SCENARIOS = ['deploy', 'hooks', 'rollback', 'fleet', 'upload'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * Phases as the test process sees them. In-process points name what the
 * client read or wrote (`line:<control line>`, `sent:flip`); host points name
 * what the host's files show, for the client in a child process.
 */
export type Phase = string;

export type At = { phase: Phase } | { direction: Direction; offset: number };

export interface FaultPoint {
  scenario: ScenarioName;
  fault: Fault;
  at: At;
}

export type Outcome = 'done' | 'not done' | 'unknown' | 'violation';

export interface PointResult {
  point: FaultPoint;
  outcome: Outcome;
  /** False when the deploy ended before the point was reached: nothing was injected. */
  reached: boolean;
  problems: string[];
  reported: string;
  seconds: number;
}

export interface Scenario {
  hosts: 1 | 2;
  /** Inputs of the deploys that make the starting state (each host: v1, then v2 current). */
  setup: Record<string, string>[];
  /** Inputs of the run the fault hits. */
  run: Record<string, string>;
  /** Where the run starts from and where it goes. */
  from: string;
  to: string;
  /** Phase points, for faults the test process starts (in-process client). */
  phases: Phase[];
  /** Phase points for signals to a client in a child process (host evidence). */
  hostPhases: Phase[];
  /** An upload's scenario: each release that holds what an upload made (its names in the inputs, `upload: TREE_V1`). */
  uploads?: Record<string, UploadTree>;
}

/**
 * The trees an upload scenario ships, made once per process: v3's differs from
 * v1's and v2's in one file, so that its deploy reuses the others (the copy made
 * with the facts, trimmed to the plan). Named in a scenario's inputs, resolved
 * to their paths by FaultLab.inputs.
 */
export type UploadTree = 'TREE_V1' | 'TREE_V3';
const trees: Partial<Record<UploadTree, string>> = {};
export function treePath(name: UploadTree): string {
  if (trees[name]) return trees[name];
  const dir = openTempDir('tagflip-faults-tree-');
  const files: Record<string, string | Buffer> = { 'build.sh': 'cat version > built\n', version: name === 'TREE_V3' ? 'v3\n' : 'v1\n', 'big/blob.bin': Buffer.alloc(1 << 20, 7) };
  for (let i = 0; i < 40; i += 1) files[`d${i % 4}/f${i}.txt`] = `file ${i}\n`.repeat(50);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return (trees[name] = dir);
}

const BUILD = 'touch build-started && sh build.sh && sleep 0.3';
const HOOKS = { activate: 'echo "$TAGFLIP_RELEASE" > "$TAGFLIP_DEPLOY_PATH/activated" && sleep 0.2', verify: 'test -f built && sleep 0.2' };
const DEPLOY_PHASES = ['line:step preflight', 'line:step facts', 'line:step build', 'line:ready', 'sent:flip', 'line:step flip', 'line:flipped', 'line:step prune', 'line:end after flipped'];
const DEPLOY_HOST_PHASES = ['host:building', 'host:build-started', 'host:ready', 'host:current moved', 'host:pruned', 'host:recorded'];

export const SCENARIO_SETUPS: Record<ScenarioName, Scenario> = {
  deploy: {
    hosts: 1,
    setup: [{ release: 'v1', build: BUILD }, { release: 'v2', build: BUILD }],
    run: { release: 'v3', build: BUILD },
    from: 'v2',
    to: 'v3',
    phases: DEPLOY_PHASES,
    hostPhases: DEPLOY_HOST_PHASES,
  },
  hooks: {
    hosts: 1,
    setup: [{ release: 'v1', build: BUILD, ...HOOKS }, { release: 'v2', build: BUILD, ...HOOKS }],
    run: { release: 'v3', build: BUILD, ...HOOKS },
    from: 'v2',
    to: 'v3',
    phases: [...DEPLOY_PHASES.slice(0, -1), 'line:step activate', 'line:step verify', 'line:end after flipped'],
    hostPhases: [...DEPLOY_HOST_PHASES.slice(0, -1), 'host:activated', 'host:recorded'],
  },
  rollback: {
    hosts: 1,
    setup: [{ release: 'v1', build: BUILD }, { release: 'v2', build: BUILD }],
    run: { command: 'rollback' },
    from: 'v2',
    to: 'v1',
    phases: ['line:step preflight', 'line:step facts', 'sent:flip', 'line:step flip', 'line:flipped', 'line:end after flipped'],
    hostPhases: ['host:current moved', 'host:recorded'],
  },
  upload: {
    hosts: 1,
    setup: [{ release: 'v1', upload: 'TREE_V1', build: BUILD }, { release: 'v2', upload: 'TREE_V1', build: BUILD }],
    run: { release: 'v3', upload: 'TREE_V3', build: BUILD },
    from: 'v2',
    to: 'v3',
    phases: DEPLOY_PHASES,
    hostPhases: DEPLOY_HOST_PHASES,
    uploads: { v1: 'TREE_V1', v2: 'TREE_V1', v3: 'TREE_V3' },
  },
  fleet: {
    hosts: 2,
    setup: [{ release: 'v1', build: BUILD }, { release: 'v2', build: BUILD }],
    run: { release: 'v3', build: BUILD },
    from: 'v2',
    to: 'v3',
    phases: DEPLOY_PHASES,
    hostPhases: DEPLOY_HOST_PHASES,
  },
};
