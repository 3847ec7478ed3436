/**
 * The fault matrix (issue 20): a deploy, a deploy with hooks, a rollback and a
 * two-host fleet, each broken by one fault at one point, against real sshd;
 * then the checker of host-invariants.ts on every host once it has settled.
 *
 * Where a fault starts:
 * - at a phase: faults on the path (proxy) and on sshd (SIGSTOP) are started
 *   by a transport wrapper in the test process, which sees the decrypted
 *   shell: a control line the host printed (`step build`, `ready`,
 *   `flipped`, …) or the flip script leaving the client. Signals to the
 *   client (a child process: the CLI) are started by what the host's files
 *   show (the build's marker, a manifest's state, current moved).
 * - at a byte offset, up or down: the proxy acts at exactly that byte.
 *
 * How a fault ends: a path fault or a stopped sshd is held `holdMs`, then the
 * proxy resets both connections (and a stopped sshd is continued), as a cut
 * network ends in resets; `patient` holds it until the client gives up by
 * itself instead (its keepalive), the real test of a silent path.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTransport, runCommand } from '../../src/commands/run.js';
import { COMMAND_INPUTS, type Command } from '../../src/core/inputs.js';
import { parseSettings } from '../../src/core/settings.js';
import { hostFile } from './host-files.js';
import type { Transport } from '../../src/remote/transport.js';
import { FaultProxy, type Direction } from './fault-proxy.js';
import { gitRepoWithTags, openTempDir, recordingLogger } from './fixtures.js';
import { type Reported, checkHostAgrees, checkNothingLeft, checkReportTrue, currentRelease, processesOf, settled, uidOf } from './host-invariants.js';
import { tryKill } from './processes.js';
import { type TestSshd, startSshd } from './sshd.js';
import { treeHash } from './trees.js';
import { transpileSources } from './transpiled.js';
import { CLIENT_SIGNALS, type MatrixOptions, InjectedFault, PhaseWatcher } from './fault-injection.js';
import { type ScenarioName, type Phase, type At, type FaultPoint, type Outcome, type PointResult, type Scenario, type UploadTree, SCENARIO_SETUPS, treePath } from './fault-scenarios.js';

/** The deploy user of the matrix: its own, so that any process or file of it is the matrix's. */
const USER = 'tagflip-faults';
/** Kept small, so that a host and a client that lost each other give up soon. */
const TIMEOUTS = { 'command-timeout': '20', 'lock-timeout': '5', 'connect-timeout': '5', 'keep-releases': '1' };
/** How long a client may take to answer after a fault before it counts as hung. */
const CLIENT_LIMIT_MS = 150_000;

interface LabHost {
  sshd: TestSshd;
  /** This host's files, seen by it at `srv`. */
  files: string;
}

/** Two hosts (real sshd, each with its own files at one deploy root), a repository, the CLI's sources. */
export class FaultLab {
  readonly results: PointResult[] = [];
  private readonly templates = new Map<ScenarioName, string>();
  private readonly sizes = new Map<ScenarioName, Record<Direction, number>>();
  private points = 0;
  private cli = '';
  private keyFile = '';

  private constructor(
    private readonly root: string,
    readonly srv: string,
    readonly hosts: LabHost[],
    readonly repo: string,
    readonly uid: number,
  ) {}

  static async start(): Promise<FaultLab> {
    const root = openTempDir('tagflip-fault-lab-');
    const srv = join(root, 'srv');
    const bind = (i: number) => ({ source: join(root, `host${i}`), target: srv });
    const first = await startSshd({ user: USER, bindMount: bind(1) });
    const second = await startSshd({ user: USER, bindMount: bind(2), clientKey: { privateKey: first.privateKey, publicKey: first.publicKey } });
    const hosts = [first, second].map((sshd, i) => ({ sshd, files: bind(i + 1).source }));
    const lab = new FaultLab(root, srv, hosts, gitRepoWithTags(['v1', 'v2', 'v3'], USER), uidOf(USER));
    lab.keyFile = join(root, 'key');
    writeFileSync(lab.keyFile, first.privateKey, { mode: 0o600 });
    lab.killLeftovers();
    return lab;
  }

  async stop(): Promise<void> {
    this.killLeftovers();
    await Promise.all(this.hosts.map((host) => host.sshd.stop()));
    rmSync(this.root, { recursive: true, force: true });
    if (this.cli) rmSync(this.cli, { recursive: true, force: true });
  }

  /** The starting state of `scenario` on every host it uses, made once; each point starts from a copy. */
  private async template(name: ScenarioName): Promise<string> {
    const made = this.templates.get(name);
    if (made) return made;
    const scenario = SCENARIO_SETUPS[name];
    const site = `template-${name}`;
    for (const inputs of scenario.setup) {
      const { result, log } = await this.runInProcess(site, inputs, this.hosts.slice(0, scenario.hosts).map((host) => host.sshd.port));
      if (!result.ok) throw new Error(`setting up ${name} failed:\n${log}`);
    }
    this.templates.set(name, site);
    return site;
  }

  private inputs(site: string, run: Record<string, string>, ports: number[]): Record<string, string> {
    const all: Record<string, string> = {
      hosts: ports.map((port) => `${USER}@127.0.0.1:${port}`).join(', '),
      // Host i answers on ports[i] (itself, or its proxy).
      'known-hosts': ports.map((port, i) => this.hosts[i].sshd.knownHosts.replaceAll(`[127.0.0.1]:${this.hosts[i].sshd.port} `, `[127.0.0.1]:${port} `)).join(''),
      'deploy-path': join(this.srv, site),
      repository: this.repo,
      ...TIMEOUTS,
      ...run,
    };
    // An upload ships a tree of the runner's instead of the repository.
    if (all.upload) {
      all.upload = treePath(all.upload as UploadTree);
      delete all.repository;
    }
    // Only what the command takes (the CLI refuses the rest: a rollback has no repository).
    const command = (all.command ?? 'deploy') as Command;
    return Object.fromEntries(Object.entries(all).filter(([name]) => name === 'command' || (COMMAND_INPUTS[command] as readonly string[]).includes(name)));
  }

  private async runInProcess(site: string, run: Record<string, string>, ports: number[], wrap?: (transport: Transport, index: number) => Transport) {
    const logger = recordingLogger();
    const settings = parseSettings({ ...this.inputs(site, run, ports), 'private-key': this.hosts[0].sshd.privateKey });
    const transports = settings.targets.map((target, index) => {
      const transport = createTransport(settings, target);
      return wrap ? wrap(transport, index) : transport;
    });
    const result = await runCommand(settings, logger, transports);
    return { result, log: logger.text() };
  }

  /** Bytes up and down of a run of `scenario` without a fault, through a proxy: the span the byte sweep samples. */
  async sessionBytes(name: ScenarioName): Promise<Record<Direction, number>> {
    const known = this.sizes.get(name);
    if (known) return known;
    const site = await this.copyTemplate(name);
    const proxies = await this.proxies(name);
    try {
      const { result, log } = await this.runInProcess(site, SCENARIO_SETUPS[name].run, proxies.map((proxy) => proxy.port));
      if (!result.ok) throw new Error(`a run of ${name} without a fault failed:\n${log}`);
      const sizes = { ...proxies[0].passed };
      this.sizes.set(name, sizes);
      return sizes;
    } finally {
      await Promise.all(proxies.map((proxy) => proxy.close()));
    }
  }

  private async copyTemplate(name: ScenarioName): Promise<string> {
    const template = await this.template(name);
    const site = `p${++this.points}`;
    for (const host of this.hosts.slice(0, SCENARIO_SETUPS[name].hosts)) cpSync(join(host.files, template), join(host.files, site), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    // cpSync keeps modes, not owners: the deploy user must own its site.
    for (const host of this.hosts.slice(0, SCENARIO_SETUPS[name].hosts)) spawnOk('chown', ['-R', `${USER}:`, join(host.files, site)]);
    // A copy has new inodes: the identities of the current release's uploaded
    // files (not its build's) are recorded again, as its upload step did, so that the run reuses them.
    if (SCENARIO_SETUPS[name].uploads) {
      const from = SCENARIO_SETUPS[name].from;
      const record = `${hostFile('identity.sh')}\ncd "$1/releases/$2" && tf_identity_owner && tf_identities . | grep -zv -e '^.* ./built$' -e '^.* ./build-started$' | LC_ALL=C sort -z > "$1/.tagflip/releases/$2.ids"`;
      for (const host of this.hosts.slice(0, SCENARIO_SETUPS[name].hosts)) spawnOk('runuser', ['-u', USER, '--', 'sh', '-c', record, 'sh', join(host.files, site), from]);
    }
    return site;
  }

  private proxies(name: ScenarioName): Promise<FaultProxy[]> {
    return Promise.all(this.hosts.slice(0, SCENARIO_SETUPS[name].hosts).map((host) => FaultProxy.start(host.sshd.port)));
  }

  /** Run one point: the scenario, broken by the fault at the point; then settle and check every host. */
  async run(point: FaultPoint, options: MatrixOptions): Promise<PointResult> {
    const started = Date.now();
    const scenario = SCENARIO_SETUPS[point.scenario];
    const site = await this.copyTemplate(point.scenario);
    const sites = this.hosts.slice(0, scenario.hosts).map((host) => join(host.files, site));
    const proxies = await this.proxies(point.scenario);
    const fault = new InjectedFault(point.fault, proxies[0], this.hosts[0].sshd, options);
    let reported: (Reported | null)[];
    let said = '';
    try {
      if (CLIENT_SIGNALS[point.fault]) {
        ({ reported, said } = await this.runChild(point, site, sites[0], proxies, fault));
      } else {
        ({ reported, said } = await this.runWatched(point, site, proxies, fault));
      }
    } finally {
      await fault.end();
      await Promise.all(proxies.map((proxy) => proxy.close()));
    }
    const problems = await settled(() => sites.flatMap((path, i) => [...checkHostAgrees(path), ...checkNothingLeft(path, USER, this.uid)].map((problem) => `host${i + 1}: ${problem}`)));
    sites.forEach((path, i) => problems.push(...checkReportTrue(path, reported[i] ?? null, scenario.from).map((problem) => `host${i + 1}: ${problem}`)));
    if (scenario.uploads) sites.forEach((path, i) => problems.push(...checkUploaded(path, scenario.uploads!).map((problem) => `host${i + 1}: ${problem}`)));
    // A violation must not spill into the next point.
    this.killLeftovers();
    const outcome = outcomeOf(problems, reported, sites.map((path) => currentRelease(path)), scenario.from);
    const result = { point, outcome, reached: fault.started, problems, reported: said, seconds: (Date.now() - started) / 1000 };
    this.results.push(result);
    return result;
  }

  /** The client in the test process, its shell watched for the phase. */
  private async runWatched(point: FaultPoint, site: string, proxies: FaultProxy[], fault: InjectedFault) {
    if ('direction' in point.at) proxies[0].at(point.at.direction, point.at.offset, () => fault.start());
    const phase = 'phase' in point.at ? point.at.phase : null;
    const wrap = (transport: Transport, index: number) => (index === 0 && phase ? new PhaseWatcher(transport, phase, () => fault.start()) : transport);
    const running = this.runInProcess(site, SCENARIO_SETUPS[point.scenario].run, proxies.map((proxy) => proxy.port), wrap);
    const { result } = await withLimit(running, CLIENT_LIMIT_MS, `the client did not answer within ${CLIENT_LIMIT_MS / 1000} s of ${describePoint(point)}`);
    fault.clientAnswered();
    const reported = result.hosts.map((host) => ({ status: host.status as string, release: host.release }));
    return { reported, said: reported.map((host) => `${host.status} ${host.release}`).join(', ') };
  }

  /** The CLI in a child process, signalled when the host shows the phase (or at a byte offset). */
  private async runChild(point: FaultPoint, site: string, hostSite: string, proxies: FaultProxy[], fault: InjectedFault) {
    this.cli ||= transpileSources();
    const scenario = SCENARIO_SETUPS[point.scenario];
    const inputs = this.inputs(site, scenario.run, proxies.map((proxy) => proxy.port));
    const { command = 'deploy', ...flags } = inputs;
    const args = [join(this.cli, 'src/cli-main.js'), command, ...Object.entries(flags).flatMap(([name, value]) => [`--${name}`, value]), '--private-key', `@${this.keyFile}`, '--json'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    fault.client = child;
    if ('direction' in point.at) proxies[0].at(point.at.direction, point.at.offset, () => fault.start());
    let watching = true;
    if ('phase' in point.at) {
      const seen = hostEvidence(point.at.phase, hostSite, scenario);
      void (async () => {
        while (watching && !fault.started) {
          if (seen()) fault.start();
          await new Promise((resolve) => setTimeout(resolve, 15));
        }
      })();
    }
    const code = await withLimit(exited, CLIENT_LIMIT_MS, `the CLI did not exit within ${CLIENT_LIMIT_MS / 1000} s of ${describePoint(point)}`).finally(() => (watching = false));
    if (code === 2) throw new Error(`the CLI refused its command line:\n${stderr}`);
    // A report only if the CLI lived to give one (not after SIGKILL, nor after SIGTERM, which exits 143 without one).
    const report = parseReport(stdout);
    const reported = report ? report.hosts : scenario.hosts === 1 ? [null] : [null, null];
    return { reported, said: report ? `${report.hosts.map((host) => `${host.status} ${host.release}`).join(', ')} (exit ${code})` : `no report (exit ${code})` };
  }

  /**
   * Processes and temporary files of the deploy user are the matrix's own: end
   * and remove them once a point is checked (and before the first), so that
   * each point is judged only on what it left (a killed host shell cannot clean up).
   */
  killLeftovers(): void {
    for (const left of processesOf(this.uid)) tryKill(Number(left.split(' ')[0]), 'SIGKILL');
    for (const name of readdirSync('/tmp')) {
      try {
        if (lstatSync(join('/tmp', name)).uid === this.uid) rmSync(join('/tmp', name), { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
    }
  }
}

/** What the host's files show at a host phase (the client is a child process: nothing else can tell). */
function hostEvidence(phase: Phase, site: string, scenario: Scenario): () => boolean {
  const manifest = (release: string) => {
    try {
      return JSON.parse(readFileSync(join(site, '.tagflip/releases', `${release}.json`), 'utf8')) as { state: string };
    } catch {
      return null;
    }
  };
  const current = () => {
    try {
      return readlinkSync(join(site, 'current'));
    } catch {
      return '';
    }
  };
  const checks: Record<string, () => boolean> = {
    'host:building': () => manifest(scenario.to)?.state === 'building',
    'host:build-started': () => existsSync(join(site, 'releases', scenario.to, 'build-started')),
    'host:ready': () => manifest(scenario.to)?.state === 'ready',
    'host:current moved': () => current() !== `releases/${scenario.from}`,
    'host:pruned': () => !existsSync(join(site, 'releases/v1')),
    'host:activated': () => existsSync(join(site, 'activated')) && readFileSync(join(site, 'activated'), 'utf8').trim() === scenario.to,
    'host:recorded': () => existsSync(join(site, '.tagflip/history.jsonl')) && readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8').trim().split('\n').at(-1)!.includes(`"release":"${scenario.to}"`),
  };
  const check = checks[phase];
  if (!check) throw new Error(`no host evidence for phase ${phase}`);
  return check;
}

/** The outcome of a point: a violation, else what the report says, else (no report) what the hosts did. */
function outcomeOf(problems: string[], reported: (Reported | null)[], currents: (string | null)[], from: string): Outcome {
  if (problems.length > 0) return 'violation';
  if (reported.some((host) => host?.status === 'unknown')) return 'unknown';
  return currents.some((current) => current !== from) ? 'done' : 'not done';
}

function parseReport(stdout: string): { hosts: Reported[] } | null {
  const line = stdout.trim().split('\n').at(-1);
  try {
    const report = JSON.parse(line ?? '') as { hosts?: { status: string; release: string }[] };
    return Array.isArray(report.hosts) ? { hosts: report.hosts.map((host) => ({ status: host.status, release: host.release })) } : null;
  } catch {
    return null;
  }
}

function spawnOk(command: string, args: string[]): void {
  const child = spawnSync(command, args, { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${child.status}: ${child.stderr}`);
}

async function withLimit<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}

export function describeAt(at: At): string {
  return 'phase' in at ? at.phase : `${at.direction} byte ${at.offset}`;
}

export function describePoint(point: FaultPoint): string {
  return `${point.scenario} × ${point.fault} × ${describeAt(point.at)}`;
}

/** The table of outcomes, one row a point, then the counts. */
export function renderTable(results: readonly PointResult[]): string {
  const rows = results.map((r) => [r.point.scenario, r.point.fault, describeAt(r.point.at) + (r.reached ? '' : ' (not reached)'), r.outcome, r.reported, `${r.seconds.toFixed(1)} s`]);
  const header = ['scenario', 'fault', 'point', 'outcome', 'reported', 'time'];
  const widths = header.map((name, i) => Math.max(name.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  const violations = results.filter((r) => r.outcome === 'violation').map((r) => `- ${describePoint(r.point)}: ${r.problems.join('; ')}`);
  return [
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    `${results.length} fault points: ${[...counts].map(([outcome, n]) => `${n} ${outcome}`).join(', ')}`,
    ...(violations.length ? ['', 'violations:', ...violations] : []),
  ].join('\n');
}

/**
 * Every release an upload built that the host counts as built (ready, active,
 * inactive) holds exactly its upload, plus what its build made: whatever the
 * fault, a re-deploy never carries a file the upload did not have.
 */
function checkUploaded(site: string, uploads: Record<string, UploadTree>): string[] {
  const problems: string[] = [];
  for (const [release, tree] of Object.entries(uploads)) {
    const dir = join(site, 'releases', release);
    let state = '';
    try {
      state = JSON.parse(readFileSync(join(site, '.tagflip/releases', `${release}.json`), 'utf8')).state;
    } catch {
      continue;
    }
    if (!['ready', 'active', 'inactive'].includes(state) || !existsSync(dir)) continue;
    if (JSON.stringify(treeHash(dir, ['build-started', 'built'])) !== JSON.stringify(treeHash(treePath(tree)))) problems.push(`releases/${release} (${state}) is not its upload`);
  }
  return problems;
}
