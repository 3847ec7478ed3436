import { DeployError } from '../core/errors.js';
import { type GitRefusal, gitRefusal, gitRefusalRemedy } from '../core/git-remedies.js';
import { type HostFacts, readHostFacts } from '../core/facts.js';
import type { Logger } from '../core/logger.js';
import { type LockHolder, describeHolder, parseLockHolder } from '../core/manifest.js';
import { type PrunePlan, PlanError } from '../core/plan.js';
import { buildsRelease } from '../core/stages.js';
import { CLOSE_WORDS, type OpenOptions, type RenderedScript, type ScriptContext, renderOpenScript, renderPruneScript } from './scripts.js';
import { type ControlLine, LoginShellError, RemoteSession, SessionClosedError, newRunTag } from './session.js';
import type { Settings } from '../core/settings.js';
import type { Transport } from './transport.js';

/** Extra time the client allows a phase beyond its own limit before it gives up on the host. */
const CLIENT_GRACE_SECONDS = 60;

/** Remedies by step, for failures a script reports. */
const REMEDIES: Record<string, string> = {
  prepare: 'check that deploy-path is writable by the deploy user',
  source: 'check repository and ref, and that the host can fetch the repository (deploy key, network)',
  upload: 'check the free space in deploy-path on the host, and the connection; current was not touched and the failed release was removed',
  build: 'fix the build and deploy again; current was not touched and the failed release was removed',
  flip: 'check the permissions of deploy-path',
  prune: 'check the permissions of deploy-path/releases',
};

/**
 * One host's connection for one run: a single remote shell that phase scripts
 * are sent to, with log groups per step and failures turned into DeployErrors
 * that name the host, the phase and a remedy.
 */
export class HostSession {
  readonly host: string;
  readonly tag: string;
  /** What git refused in this session beyond the usual (git-remedies.ts): the source remedy then says what to do. */
  private gitRefused: GitRefusal | undefined;

  private constructor(
    private readonly transport: Transport,
    private readonly session: RemoteSession,
    private readonly logger: Logger,
    private readonly settings: Settings,
  ) {
    this.host = transport.label;
    this.tag = session.tag;
  }

  static async start(transport: Transport, logger: Logger, settings: Settings): Promise<HostSession> {
    logger.startGroup(`connect · ${transport.label}`);
    try {
      const session = await RemoteSession.open(transport, newRunTag(), (line) => logger.warning(`${transport.label}: ${line}`), {
        secrets: logger.secrets,
        backlog: () => logger.backlog?.(),
      });
      return new HostSession(transport, session, logger, settings);
    } catch (error) {
      await transport.close();
      throw error;
    } finally {
      logger.endGroup();
    }
  }

  /** What every script of this run knows; release '' for commands that name none. */
  context(release: string, previousRelease: string): ScriptContext {
    const { settings } = this;
    const builds = buildsRelease(settings.command);
    return {
      tag: this.tag,
      host: this.host,
      deployPath: settings.deployPath,
      release,
      previousRelease,
      repository: builds ? settings.repository : '',
      ref: settings.ref,
      upload: builds && settings.upload !== '',
      build: settings.build,
      sharedDirs: builds ? settings.sharedDirs : [],
      sharedFiles: builds ? settings.sharedFiles : [],
      // A prepare copies no data: the copy is made at the switch, so that no write made in between is lost.
      migrate: settings.command === 'deploy' ? settings.migrate : '',
      migrateCheck: settings.command === 'deploy' ? settings.migrateCheck : '',
      recordTree: settings.driftRecord,
      dataPath: settings.dataPath,
      commandTimeout: settings.commandTimeout,
      env: settings.env,
      actor: settings.actor,
      runUrl: settings.runUrl,
    };
  }

  /** Phases 1–3: preflight, the lock (waiting for it if another run holds it), facts. */
  async open(context: ScriptContext, lock: OpenOptions['lock']): Promise<HostFacts> {
    const holder: LockHolder = {
      command: this.settings.command,
      release: context.release,
      actor: this.settings.actor,
      runUrl: this.settings.runUrl,
      host: this.host,
      since: '',
    };
    const script = renderOpenScript(context, { lock, lockTimeout: this.settings.lockTimeout, holder });
    let waitedFor: LockHolder | null = null;
    // The facts may fetch into the mirror (to tell whether a release of this name is stale), under command-timeout.
    const fetchSeconds = context.repository && lock === 'yes' ? this.settings.commandTimeout : 0;
    const lines = await this.run('preflight', script, this.settings.lockTimeout + fetchSeconds, {
      scope: 'session',
      onControl: (line) => {
        if (line.kind === 'waiting') {
          waitedFor = parseLockHolder(line.rest);
          this.logger.info(`${this.host}: waiting up to ${this.settings.lockTimeout} s for the lock held by ${describeHolder(waitedFor)}`);
        }
      },
    });
    const facts = readHostFacts(lines);
    if (facts.problems.length > 0) {
      const list = facts.problems.map((problem) => problem.message).join('; ');
      throw new DeployError(this.host, 'preflight', list, `fix the host, then run again; nothing was changed on ${this.host}`);
    }
    const flockFailed = lines.find((line) => line.kind === 'flock-failed');
    if (flockFailed) {
      const [status, ...said] = flockFailed.args;
      const output = said.join(' ').trim();
      throw new DeployError(
        this.host,
        'lock',
        `'flock' failed on the host (exit status ${status}${output ? `: ${output}` : ''}), so the lock of ${this.settings.deployPath} could not be taken`,
        "install a working flock (util-linux's, or a BusyBox built with its flock applet); nothing was changed",
      );
    }
    const timedOut = lines.find((line) => line.kind === 'lock-timeout');
    if (timedOut) {
      const holderNow = parseLockHolder(timedOut.rest) ?? waitedFor;
      throw new DeployError(
        this.host,
        'lock',
        `another run held the lock of ${this.settings.deployPath} for all of lock-timeout (${this.settings.lockTimeout} s): ${describeHolder(holderNow)}`,
        'wait for it to finish and run again, or raise lock-timeout; nothing was changed',
      );
    }
    if (lock === 'yes' && !lines.some((line) => line.kind === 'locked')) {
      const why = lines.find((line) => line.kind === 'lock-error')?.rest ?? `could not take ${this.settings.deployPath}/.tagflip/lock`;
      throw new DeployError(this.host, 'lock', why, 'check that .tagflip/lock in deploy-path is a file the deploy user can write');
    }
    return facts;
  }

  /** Step 12: remove what the plan says; returns the releases whose directories were removed. */
  async prune(context: ScriptContext, plan: PrunePlan): Promise<string[]> {
    if (plan.remove.length === 0 && plan.removeData.length === 0) {
      this.reportLeftAlone(plan.unknown);
      return [];
    }
    return this.reportRemoved(await this.run('prune', renderPruneScript(context, plan.remove, plan.removeData, plan.unknown), 600));
  }

  /**
   * Log what a prune step did (by itself or after a flip), as the host saw it:
   * a directory is claimed removed only if it existed. Returns the releases
   * whose directories were removed.
   */
  reportRemoved(lines: readonly ControlLine[]): string[] {
    const names = (kind: string) => lines.filter((line) => line.kind === kind).map((line) => line.rest);
    const removed = names('removed');
    const records = names('removed-record');
    const removedData = names('removed-data');
    this.reportLeftAlone(lines.filter((line) => line.kind === 'left-alone').flatMap((line) => line.args));
    if (removed.length > 0) this.logger.info(`${this.host}: removed ${removed.map((name) => `releases/${name}`).join(', ')} (keep-releases: ${this.settings.keepReleases})`);
    if (records.length > 0) {
      const [of, its] = records.length > 1 ? ['records', 'their directories were'] : ['record', 'its directory was'];
      this.logger.info(`${this.host}: removed the ${of} of ${records.join(', ')} (${its} already gone: a failed build removes its own)`);
    }
    if (removedData.length > 0) this.logger.info(`${this.host}: removed data releases ${removedData.join(', ')} (no kept release uses them)`);
    return removed;
  }

  /**
   * Retention or a record that failed once current had moved: housekeeping,
   * logged and returned as warnings (they never fail the step). Each names what
   * was left and what to do.
   */
  reportHousekeeping(lines: readonly ControlLine[]): string[] {
    const warnings = lines.filter((line) => line.kind === 'warning').map((line) => line.rest);
    for (const line of lines.filter((line) => line.kind === 'prune-failed')) {
      const [, ...why] = line.args;
      const warning = `retention stopped: ${why.join(' ')}; what it did not remove stays (fix its permissions or remove it by hand), and the next run's retention tries again`;
      this.warn(warning);
      warnings.push(warning);
    }
    return warnings;
  }

  /** A warning about this host. */
  warn(message: string): void {
    this.logger.warning(`${this.host}: ${message}`);
  }

  /** Say once which directories retention leaves alone, and why. */
  private reportLeftAlone(unknown: readonly string[]): void {
    if (unknown.length === 0) return;
    const list = unknown.map((name) => `releases/${name}`).join(', ');
    this.logger.info(`${this.host}: left ${list} alone: tagflip has no record of ${unknown.length > 1 ? 'them' : 'it'} (made by hand or another tool); remove by hand what is not needed`);
  }

  /** What to do about a failed step: for the source, what git refused when it said why (git-remedies.ts); else the step's remedy. */
  remedyFor(step: string): string {
    if (step === 'source' && this.gitRefused) {
      const target = this.settings.targets.find((candidate) => candidate.label === this.host);
      return gitRefusalRemedy(this.gitRefused, target?.kind === 'ssh' ? target.user : '');
    }
    return REMEDIES[step] ?? '';
  }

  /** Run one phase script; every `step` line it prints opens a log group. */
  async run(
    phase: string,
    script: RenderedScript,
    timeoutSeconds: number,
    options: {
      scope?: 'subshell' | 'session';
      onControl?: (line: ControlLine) => void;
      data?: PhaseData;
      /**
       * Nothing follows this phase whatever it says: the shell's closing words
       * go right behind the script, so the session ends as the phase does
       * instead of one round trip later (close() then only waits for it).
       */
      last?: boolean;
    } = {},
  ): Promise<ControlLine[]> {
    this.logger.debug(`${this.host}: ${phase} script:\n${script.display}`);
    let step = phase;
    let grouped = false;
    let outOfSpace = false;
    const openGroup = (name: string) => {
      if (grouped) this.logger.endGroup();
      this.logger.startGroup(`${name} · ${this.host}`);
      grouped = true;
    };
    const deadline = new Deadline(timeoutSeconds + CLIENT_GRACE_SECONDS);
    // The data goes only once the host asks for it (session.ts); a failure to send shows on the host as input that ended early.
    let sending: Promise<unknown> = Promise.resolve();
    const { data } = options;
    try {
      const running = this.session.run(
        script.text,
        {
          onOutput: (line) => {
            if (!grouped) openGroup(step);
            if (/No space left on device|Disk quota exceeded|File too large/.test(line)) outOfSpace = true;
            this.gitRefused = gitRefusal(line) ?? this.gitRefused;
            this.logger.info(line);
          },
          onControl: (line) => {
            if (line.kind === 'step' && (line.args[0] !== step || !grouped)) {
              step = line.args[0];
              openGroup(step);
            } else if (line.kind === 'log') {
              this.logger.info(`${this.host}: ${line.rest}`);
            } else if (line.kind === 'debug') {
              this.logger.debug(`${this.host}: ${line.rest}`);
            } else if (line.kind === 'warning') {
              this.logger.warning(`${this.host}: ${line.rest}`);
            } else if (line.kind === 'receive' && data) {
              sending = this.session.sendData(Number(line.args[0]), data.stream(), data.progress, data.taken).catch(
                (error: Error) => {
                  this.logger.debug(`${this.host}: sending the upload stopped: ${error.message}`);
                },
              );
            }
            options.onControl?.(line);
          },
        },
        { scope: options.scope, input: data !== undefined },
      );
      // Only without data: that goes on stdin after the script, once asked for.
      if (options.last && !data) this.session.end(CLOSE_WORDS);
      const { status, control } = await deadline.race(running, () => this.session.end());
      await sending;
      const failure = control.find((line) => line.kind === 'error');
      if (failure) {
        const [failedStep = step, code = '1', ...message] = failure.args;
        let problem = message.join(' ');
        if (outOfSpace && !/out of (disk )?space/.test(problem)) problem += '; the host ran out of disk space (see the output above)';
        throw new DeployError(this.host, failedStep, problem, this.remedyFor(failedStep), Number(code));
      }
      if (status !== 0 && options.scope !== 'session') {
        throw new DeployError(this.host, step, `the ${phase} script exited with status ${status}`, this.remedyFor(step));
      }
      return control;
    } catch (error) {
      if (error instanceof DeadlineError) {
        throw new NoAnswerError(this.host, step, `no answer from the host for ${timeoutSeconds + CLIENT_GRACE_SECONDS} s`, `the connection was closed; once ${this.host} notices, it removes an unfinished build and records it as failed (interrupted: connection lost); check the host`);
      }
      throw error;
    } finally {
      deadline.clear();
      if (grouped) this.logger.endGroup();
    }
  }

  /** Whether a script sent now can still reach the host's shell: false once the session has ended, or its input was closed. */
  get reachable(): boolean {
    return this.session.open;
  }

  /** End the remote shell (which releases the lock) and the connection. */
  async close(): Promise<void> {
    this.session.end(CLOSE_WORDS);
    // Half a round trip, so that when a run returns, its lock is already free.
    await this.session.exited(2000);
    await this.transport.close();
  }
}

/** Bytes a phase asks for with `receive <n>`, sent on the session's stdin. */
export interface PhaseData {
  stream(): Iterable<Buffer> | AsyncIterable<Buffer>;
  progress?: (sent: number) => void;
  /** A piece of stream() that the connection has taken: its buffer may be filled again. */
  taken?: (piece: Buffer) => void;
}

/** The host did not answer a phase in time: the client gave up on the connection. */
export class NoAnswerError extends DeployError {}

/**
 * Whether a phase's failure was told by the host itself (an error it reported,
 * or the phase's end with a failing status), rather than the connection going
 * before the answer came: only then does the client know what the phase did.
 */
export function answeredByHost(error: unknown): boolean {
  return error instanceof DeployError && !(error instanceof NoAnswerError);
}

/** Turn any failure into one that names the host and the phase. */
export function explainFailure(host: string, error: unknown): DeployError {
  if (error instanceof DeployError) return error;
  if (error instanceof PlanError) return new DeployError(host, 'plan', error.message, error.remedy);
  if (error instanceof LoginShellError) {
    const { user, code, said } = error;
    const words = said.length > 0 ? `: "${said.join(' ').slice(0, 200)}"` : ', printing nothing';
    return new DeployError(
      host,
      'connect',
      `the login shell of ${user}, or a ForceCommand for it, cannot run tagflip's scripts (it ended at once with exit status ${code}${words})`,
      `give ${user} a POSIX shell (chsh -s /bin/sh ${user}) and remove any ForceCommand for it in sshd_config`,
    );
  }
  if (error instanceof SessionClosedError) {
    return new DeployError(host, 'connection', error.message, 'the host or the network dropped the session; a host that is still up removes an unfinished build and records it as failed (interrupted: connection lost); run again');
  }
  const message = error instanceof Error ? error.message : String(error);
  return new DeployError(host, 'connection', message, 'check the host and the network');
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
