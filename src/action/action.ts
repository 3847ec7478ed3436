import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { InputError } from '../core/errors.js';
import { hasControls, showControls } from '../core/host-text.js';
import { type Logger, secretMasker, tidyGroups, writerBacklog } from '../core/logger.js';
import { type RunResult, hostsOutput, releasesOutput, renderStatus, renderStoppedSummary, renderSummary } from '../core/result.js';
import { abortOnSignals, keySecretsOf, runCommand, secretsOf } from '../commands/run.js';
import { COMMANDS, INPUT_NAMES, type RunContext } from '../core/inputs.js';
import { type Settings, parseSettings } from '../core/settings.js';
import { readSshConfig } from '../remote/ssh-config.js';
import * as core from './workflow-commands.js';

/**
 * The runner obeys every line of a step's output that reads as a workflow
 * command (`::add-mask::`, `::error::`, `::stop-commands::`, `##[…]`), and a
 * host's output is logged line by line as it came. So plain lines go out inside
 * a stop-commands block, ended by a random token no host can know; each command
 * of tagflip's own (a group, a warning, an error, debug, a mask, the outcome)
 * ends the block first, and the next plain line opens a new one. Groups thus
 * still fold the log, and host output inside them stays inert.
 */
export class ActionLogger implements Logger {
  private stopped = false;
  /** The error annotations printed so far (and each without its "host | "). */
  private readonly errors = new Set<string>();
  private errorsPrinted = 0;
  /**
   * The secrets registered with ::add-mask::, added as the inputs are read (the
   * loggers wrapped around this one share the array): a host's line that is
   * cut is masked with them before the cut (Logger.secrets).
   */
  readonly secrets: string[] = [];
  private mask = secretMasker([]);
  private readonly stdoutBacklog = writerBacklog(process.stdout);

  constructor(private readonly token = `tagflip-${randomBytes(16).toString('hex')}`) {}

  /** Secrets to mask from now on, registered with the runner too. */
  addSecrets(secrets: readonly string[]): void {
    const added = secrets.filter((secret) => !this.secrets.includes(secret));
    added.forEach((secret) => core.setSecret(secret));
    this.secrets.push(...added);
    this.mask = secretMasker(this.secrets);
  }

  backlog(): Promise<void> | undefined {
    return this.stdoutBacklog();
  }

  info(message: string): void {
    if (!this.stopped) {
      core.info(`::stop-commands::${this.token}`);
      this.stopped = true;
    }
    core.info(this.shown(message));
  }

  /**
   * A line as the Actions log may show it: control characters from a host
   * escaped but colours kept (host-text.ts). Escaping would hide a secret with
   * a control character in it from the runner's masking, so such a line is
   * masked here first; any other line is left to the runner.
   */
  private shown(message: string): string {
    return hasControls(message) ? showControls(this.mask(message), { colours: true }) : message;
  }

  /** Before a command of tagflip's own: the runner obeys commands again. */
  commands(): void {
    if (!this.stopped) return;
    core.info(`::${this.token}::`);
    this.stopped = false;
  }

  warning(message: string): void {
    this.commands();
    core.warning(this.shown(message));
  }

  error(message: string): void {
    this.commands();
    core.error(this.shown(message));
    this.errorsPrinted++;
    this.errors.add(message);
    // With several hosts a line may carry its host as "host | " (hostLogger); a host's error in the result does not.
    const hostLine = /^\S+ \| ([\s\S]*)$/.exec(message);
    if (hostLine) this.errors.add(hostLine[1]);
  }

  /**
   * Whether this error was annotated already: as it is, or as annotations
   * joined by "; " (a host's error and what went wrong after it).
   */
  hasSaid(error: string): boolean {
    if (this.errors.has(error)) return true;
    return [...this.errors].some((said) => error.startsWith(`${said}; `) && this.hasSaid(error.slice(said.length + 2)));
  }

  /** How many error annotations were printed. */
  get errorCount(): number {
    return this.errorsPrinted;
  }

  debug(message: string): void {
    this.commands();
    core.debug(this.shown(message));
  }

  startGroup(name: string): void {
    this.commands();
    core.startGroup(this.shown(name));
  }

  endGroup(): void {
    this.commands();
    core.endGroup();
  }
}

/**
 * What the runner knows: GitHub's variables, and the ssh-agent an earlier step
 * may have started. An ssh config is read only when the ssh-config input names
 * one: the runner's ~/.ssh/config is not the user's.
 */
function runContext(env: NodeJS.ProcessEnv, sshConfigFile: string): RunContext {
  const runUrl =
    env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
      ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
      : '';
  const workspace = env.GITHUB_WORKSPACE || process.cwd();
  const local = { home: env.HOME || homedir(), user: env.USER || '' };
  return {
    frontEnd: 'action',
    refType: env.GITHUB_REF_TYPE,
    refName: env.GITHUB_REF_NAME,
    actor: env.GITHUB_ACTOR,
    runUrl,
    workspace,
    sshAgent: env.SSH_AUTH_SOCK || undefined,
    sshConfig: sshConfigFile ? readSshConfig(resolve(workspace, sshConfigFile), local) : undefined,
  };
}

/**
 * The GitHub Action: inputs → settings → run → outputs and job summary. It
 * never rejects: whatever goes wrong ends as one short `::error::` and exit
 * code 1, not as Node's report of an unhandled rejection (which prints the
 * whole line of the minified bundle it happened in).
 */
export async function run(): Promise<void> {
  const actionLogger = new ActionLogger();
  const logger = tidyGroups(actionLogger, process.env.RUNNER_DEBUG === '1');
  // However the step ends, no group is left open, and the runner obeys commands (of later steps too).
  process.once('exit', () => {
    logger.endGroup();
    actionLogger.commands();
  });
  abortOnSignals(logger, (code) => process.exit(code));
  try {
    await runStep(actionLogger, logger);
  } catch (error) {
    logger.endGroup();
    actionLogger.commands();
    core.setFailed(`tagflip stopped unexpectedly: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof Error && error.stack) core.debug(error.stack);
  }
}

async function runStep(actionLogger: ActionLogger, logger: Logger): Promise<void> {
  let command = '';
  let mask = secretMasker([]);
  let settings: Settings;
  let result: RunResult;
  try {
    // Secrets keep their spaces: a passphrase or an env value may end with one.
    const untrimmed = new Set(['passphrase', 'env', 'secret-env']);
    const raw = Object.fromEntries(INPUT_NAMES.map((name) => [name, core.getInput(name, { trimWhitespace: !untrimmed.has(name) })]));
    // Mask first: nothing that follows may print a secret, even in an error.
    const secrets = secretsOf(raw);
    actionLogger.addSecrets(secrets);
    // The runner masks the log; the summary file and outputs we mask ourselves.
    mask = secretMasker(secrets);
    const given = raw.command || 'deploy';
    command = (COMMANDS as readonly string[]).includes(given) ? given : '';
    settings = parseSettings(raw, runContext(process.env, raw['ssh-config']));
    const keySecrets = keySecretsOf(settings).filter((secret) => !secrets.includes(secret));
    actionLogger.addSecrets(keySecrets);
    mask = secretMasker([...secrets, ...keySecrets]);
    result = await runCommand(settings, logger);
  } catch (error) {
    logger.endGroup();
    actionLogger.commands();
    const refused = error instanceof InputError;
    const message = showControls(mask(refused ? `bad input: ${error.message}` : (error as Error).message), { colours: true });
    // Without these a follow-up job (if: failure()) has nothing to read.
    writeOutputs(() => core.setOutput('status', 'failed'), 'the status output would have said failed');
    const title = ['tagflip', command].filter(Boolean).join(' ');
    await writeSummary(mask(renderStoppedSummary(title, message, refused)));
    core.setFailed(message);
    return;
  }
  // What follows is the step's, not a phase's: outside every group.
  logger.endGroup();
  if (settings.command === 'status') result.hosts.forEach((host) => renderStatus(host).forEach((line) => logger.info(line)));
  // Outputs fall back to ::set-output:: without GITHUB_OUTPUT; the failure is ::error::.
  actionLogger.commands();
  const ended = `the ${settings.command} itself ended with status ${result.status}${result.release ? `, release ${result.release}` : ''}`;
  writeOutputs(() => {
    core.setOutput('release', result.release);
    core.setOutput('previous-release', result.previousRelease);
    core.setOutput('release-path', result.releasePath);
    core.setOutput('data-release', result.dataRelease);
    core.setOutput('previous-data-release', result.previousDataRelease);
    core.setOutput('status', result.status);
    core.setOutput('hosts', mask(hostsOutput(result.hosts)));
    if (settings.command === 'status') core.setOutput('releases', mask(releasesOutput(result.hosts)));
  }, ended);
  const title = ['tagflip', settings.command, settings.release || settings.rollbackTo].filter(Boolean).join(' ');
  // Masked before the escaping (which could split a secret) and after.
  await writeSummary(mask(renderSummary(result, title, mask)));
  if (!result.ok) failStep(result, actionLogger);
}

/**
 * Write the step's outputs (`write` sets them, stopping at the first that
 * cannot be written). A later step reads them (a rollback reads
 * previous-release), so a file that cannot take them fails the step, with
 * one annotation that says what the run itself did.
 */
function writeOutputs(write: () => void, ended: string): void {
  try {
    write();
  } catch (error) {
    core.setFailed(`cannot write the step's outputs to GITHUB_OUTPUT (${(error as Error).message}); ${ended}`);
  }
}

/**
 * The job summary, a view of what the log and the outputs say: a file that
 * cannot take it is a warning, and the step's result stands.
 */
async function writeSummary(markdown: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  try {
    await core.appendSummary(markdown);
  } catch (error) {
    core.warning(`cannot write the job summary to GITHUB_STEP_SUMMARY (${(error as Error).message}); the log above has the same report`);
  }
}

/**
 * A run that did not succeed fails the step with one annotation per failure:
 * each host's error was annotated where it happened, in the log; only what
 * was not (or a status with no error at all) is annotated here.
 */
function failStep(result: RunResult, actionLogger: ActionLogger): void {
  process.exitCode = 1;
  const unsaid = result.hosts.filter((host) => host.error && host.status !== 'rolled-back' && !actionLogger.hasSaid(host.error)).map((host) => host.error);
  if (unsaid.length === 0 && actionLogger.errorCount === 0) unsaid.push(`status: ${result.status}`);
  unsaid.forEach((error) => core.error(showControls(error, { colours: true })));
}
