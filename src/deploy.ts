import { DeployError } from './errors.js';
import { type HostFacts, readHostFacts } from './facts.js';
import type { Logger } from './logger.js';
import type { Manifest } from './manifest.js';
import { type DeployPlan, PlanError, planDeploy } from './plan.js';
import { releasePath } from './paths.js';
import type { HostResult } from './result.js';
import { type RenderedScript, type ScriptContext, renderBuildScript, renderFactsScript, renderFlipScript } from './scripts.js';
import { type ControlLine, RemoteSession, SessionClosedError, newRunTag } from './session.js';
import type { Settings } from './settings.js';
import type { Transport } from './transport.js';

/** Extra time the client allows a phase beyond command-timeout before it gives up on the host. */
const CLIENT_GRACE_SECONDS = 60;

export interface DeployDependencies {
  transport: Transport;
  logger: Logger;
  now?: () => Date;
}

/**
 * Deploy one release to one host: connect, preflight and facts, plan, build,
 * flip. Each phase is one round trip on one remote shell.
 */
export async function deployToHost(settings: Settings, deps: DeployDependencies): Promise<HostResult> {
  const { transport, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const host = transport.label;
  const started = Date.now();
  const result: HostResult = {
    host,
    status: 'failed',
    release: '',
    previousRelease: '',
    releasePath: '',
    buildSeconds: 0,
    totalSeconds: 0,
    error: '',
  };
  const tag = newRunTag();
  let session: RemoteSession | null = null;
  let facts: HostFacts | null = null;
  try {
    const phase = new PhaseRunner(host, logger);
    session = await phase.connect(transport, tag);
    const context: ScriptContext = {
      tag,
      host,
      deployPath: settings.deployPath,
      release: settings.release,
      previousRelease: '',
      repository: settings.repository,
      ref: settings.ref,
      build: settings.build,
      commandTimeout: settings.commandTimeout,
      env: settings.env,
      actor: settings.actor,
      runUrl: settings.runUrl,
    };

    facts = await phase.facts(session, renderFactsScript(context), settings);
    const plan = makePlan(host, settings, facts);
    context.previousRelease = plan.previousRelease;
    const currently = plan.action !== 'unchanged' && plan.previousRelease ? ` (current: ${plan.previousRelease})` : '';
    logger.info(`${host}: ${plan.reason}${currently}`);
    result.release = facts.currentRelease;

    if (plan.action === 'unchanged') {
      return finish(result, started, { status: 'unchanged', release: plan.release, previousRelease: plan.previousRelease, releasePath: plan.releasePath });
    }

    const building = buildingManifest(settings, plan, host, now());
    if (settings.dryRun) {
      showDryRun(logger, host, plan, context, building, facts);
      return finish(result, started, { status: 'dry-run', release: facts.currentRelease, previousRelease: plan.previousRelease, releasePath: currentPath(settings, facts) });
    }

    let active: Manifest;
    if (plan.action === 'build') {
      const buildStarted = Date.now();
      const ready = await phase.run(session, 'build', renderBuildScript(context, building), settings.commandTimeout);
      result.buildSeconds = (Date.now() - buildStarted) / 1000;
      const [finished = '', commit = ''] = ready.find((line) => line.kind === 'ready')?.args ?? [];
      active = { ...building, state: 'ready', finished, commit };
    } else {
      active = reactivatedManifest(plan, facts);
    }
    const previous = facts.manifests.get(plan.previousRelease) ?? null;
    await phase.run(session, 'flip', renderFlipScript(context, active, previous), 60);
    logger.info(`${host}: current -> releases/${plan.release}`);
    return finish(result, started, { status: 'deployed', release: plan.release, previousRelease: plan.previousRelease, releasePath: plan.releasePath });
  } catch (error) {
    const explained = explain(host, error);
    logger.error(explained.message);
    const rollbackTarget = facts?.manifests.get(facts.currentRelease)?.previousRelease ?? '';
    const releasePath = facts ? currentPath(settings, facts) : '';
    return finish(result, started, { status: 'failed', release: facts?.currentRelease ?? '', previousRelease: rollbackTarget, releasePath, error: explained.message });
  } finally {
    session?.end();
    await transport.close();
  }
}

function finish(result: HostResult, started: number, changes: Partial<HostResult>): HostResult {
  Object.assign(result, changes);
  result.totalSeconds = (Date.now() - started) / 1000;
  return result;
}

/** Path of the release `current` points to, or '' when there is none. */
function currentPath(settings: Settings, facts: HostFacts): string {
  return facts.currentRelease ? releasePath(settings.deployPath, facts.currentRelease) : '';
}

/** The record of a complete release that is activated again without a rebuild. */
function reactivatedManifest(plan: DeployPlan, facts: HostFacts): Manifest {
  return { ...facts.manifests.get(plan.release)!, previousRelease: plan.previousRelease };
}

function makePlan(host: string, settings: Settings, facts: HostFacts): DeployPlan {
  try {
    return planDeploy(settings.deployPath, settings.release, facts);
  } catch (error) {
    if (error instanceof PlanError) throw new DeployError(host, 'plan', error.message, error.remedy);
    throw error;
  }
}

function buildingManifest(settings: Settings, plan: DeployPlan, host: string, started: Date): Manifest {
  return {
    release: plan.release,
    state: 'building',
    commit: '',
    dataRelease: '',
    previousRelease: plan.previousRelease,
    started: started.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    finished: '',
    activated: '',
    exitCode: null,
    failedStep: '',
    actor: settings.actor,
    runUrl: settings.runUrl,
    host,
  };
}

function showDryRun(logger: Logger, host: string, plan: DeployPlan, context: ScriptContext, building: Manifest, facts: HostFacts): void {
  const removal = plan.removeStale ? ` after removing the incomplete releases/${plan.release}` : '';
  logger.info(`${host}: dry run: would ${plan.action} ${plan.release} in ${plan.releasePath}${removal}; nothing is changed`);
  const active = plan.action === 'build' ? { ...building, state: 'ready' as const } : reactivatedManifest(plan, facts);
  const scripts: [string, RenderedScript][] = [];
  if (plan.action === 'build') scripts.push(['build', renderBuildScript(context, building)]);
  scripts.push(['flip', renderFlipScript(context, active, facts.manifests.get(plan.previousRelease) ?? null)]);
  for (const [name, script] of scripts) {
    logger.startGroup(`${name} script for ${host} (dry run, not run)`);
    script.display.split('\n').forEach((line) => logger.info(line));
    logger.endGroup();
  }
}

/** Remedies by phase, for failures a script reports. */
const REMEDIES: Record<string, string> = {
  prepare: 'check that deploy-path is writable by the deploy user',
  source: 'check repository and ref, and that the host can fetch the repository (deploy key, network)',
  build: 'fix the build and deploy again; current was not touched and the failed release was removed',
  flip: 'check the permissions of deploy-path',
};

/** Runs phase scripts on the session and turns their failures into DeployErrors. */
class PhaseRunner {
  constructor(
    private readonly host: string,
    private readonly logger: Logger,
  ) {}

  async connect(transport: Transport, tag: string): Promise<RemoteSession> {
    this.logger.startGroup(`connect · ${this.host}`);
    try {
      return await RemoteSession.open(transport, tag, (line) => this.logger.warning(`${this.host}: ${line}`));
    } finally {
      this.logger.endGroup();
    }
  }

  async facts(session: RemoteSession, script: RenderedScript, settings: Settings): Promise<HostFacts> {
    const lines = await this.run(session, 'preflight', script, 60);
    const facts = readHostFacts(lines);
    if (facts.problems.length > 0) {
      const list = facts.problems.map((problem) => problem.message).join('; ');
      throw new DeployError(this.host, 'preflight', list, `fix the host, then deploy again; nothing was changed on ${this.host}`);
    }
    if (settings.repository === '' && settings.build === '') {
      this.logger.warning(`${this.host}: neither repository nor build is set; the release directory will be empty`);
    }
    return facts;
  }

  /** Run one phase script; every `step` line opens a log group. */
  async run(session: RemoteSession, phase: string, script: RenderedScript, timeoutSeconds: number): Promise<ControlLine[]> {
    this.logger.debug(`${this.host}: ${phase} script:\n${script.display}`);
    // Log groups follow the steps the script announces (prepare, source, build…).
    let step = phase;
    let grouped = false;
    const openGroup = (name: string) => {
      if (grouped) this.logger.endGroup();
      this.logger.startGroup(`${name} · ${this.host}`);
      grouped = true;
    };
    const timer = new Deadline(timeoutSeconds + CLIENT_GRACE_SECONDS);
    try {
      const { status, control } = await timer.race(
        session.run(script.text, {
          onOutput: (line) => {
            if (!grouped) openGroup(step);
            this.logger.info(line);
          },
          onControl: (line) => {
            if (line.kind === 'step' && (line.args[0] !== step || !grouped)) {
              step = line.args[0];
              openGroup(step);
            } else if (line.kind === 'log') {
              this.logger.info(`${this.host}: ${line.rest}`);
            }
          },
        }),
        () => session.end(),
      );
      const failure = control.find((line) => line.kind === 'error');
      if (failure) {
        const [failedStep = step, code = '1', ...message] = failure.args;
        throw new DeployError(this.host, failedStep, message.join(' '), REMEDIES[failedStep] ?? '', Number(code));
      }
      if (status !== 0) {
        throw new DeployError(this.host, step, `the ${phase} script exited with status ${status}`, REMEDIES[step] ?? '');
      }
      return control;
    } catch (error) {
      if (error instanceof DeadlineError) {
        throw new DeployError(this.host, step, `no answer from the host for ${timeoutSeconds + CLIENT_GRACE_SECONDS} s`, 'the connection was closed; check the host');
      }
      throw error;
    } finally {
      timer.clear();
      if (grouped) this.logger.endGroup();
    }
  }
}

class DeadlineError extends Error {}

/** A client-side limit, in case the remote `timeout` cannot do its job. */
class Deadline {
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly seconds: number) {}

  race<T>(work: Promise<T>, onExpire: () => void): Promise<T> {
    const expired = new Promise<never>((_resolve, reject) => {
      this.timer = setTimeout(() => {
        onExpire();
        reject(new DeadlineError());
      }, this.seconds * 1000);
    });
    return Promise.race([work, expired]);
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

function explain(host: string, error: unknown): Error {
  if (error instanceof DeployError) return error;
  if (error instanceof SessionClosedError) {
    return new DeployError(host, 'connection', error.message, 'the host or the network dropped the session; deploy again (an incomplete release is rebuilt)');
  }
  const message = error instanceof Error ? error.message : String(error);
  return new DeployError(host, 'connection', message, 'check the host and the network');
}
