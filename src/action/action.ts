import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { InputError } from '../core/errors.js';
import { type Logger, secretMasker } from '../core/logger.js';
import { hostsOutput, releasesOutput, renderStatus, renderSummary } from '../core/result.js';
import { abortOnSignals, keySecretsOf, runCommand, secretsOf } from '../commands/run.js';
import { COMMANDS, INPUT_NAMES, type RunContext, parseSettings } from '../core/settings.js';
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

  constructor(private readonly token = `tagflip-${randomBytes(16).toString('hex')}`) {}

  info(message: string): void {
    if (!this.stopped) {
      core.info(`::stop-commands::${this.token}`);
      this.stopped = true;
    }
    core.info(message);
  }

  /** Before a command of tagflip's own: the runner obeys commands again. */
  commands(): void {
    if (!this.stopped) return;
    core.info(`::${this.token}::`);
    this.stopped = false;
  }

  warning(message: string): void {
    this.commands();
    core.warning(message);
  }

  error(message: string): void {
    this.commands();
    core.error(message);
  }

  debug(message: string): void {
    this.commands();
    core.debug(message);
  }

  startGroup(name: string): void {
    this.commands();
    core.startGroup(name);
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
    refType: env.GITHUB_REF_TYPE,
    refName: env.GITHUB_REF_NAME,
    actor: env.GITHUB_ACTOR,
    runUrl,
    workspace,
    sshAgent: env.SSH_AUTH_SOCK || undefined,
    sshConfig: sshConfigFile ? readSshConfig(resolve(workspace, sshConfigFile), local) : undefined,
  };
}

/** The GitHub Action: inputs → settings → run → outputs and job summary. */
export async function run(): Promise<void> {
  const actionLogger = new ActionLogger();
  // However the step ends, it leaves the runner obeying commands (of later steps too).
  process.once('exit', () => actionLogger.commands());
  abortOnSignals(actionLogger, (code) => process.exit(code));
  let command = '';
  let mask = secretMasker([]);
  try {
    // Secrets keep their spaces: a passphrase or an env value may end with one.
    const untrimmed = new Set(['passphrase', 'env', 'secret-env']);
    const raw = Object.fromEntries(INPUT_NAMES.map((name) => [name, core.getInput(name, { trimWhitespace: !untrimmed.has(name) })]));
    // Mask first: nothing that follows may print a secret, even in an error.
    const secrets = secretsOf(raw);
    secrets.forEach((secret) => core.setSecret(secret));
    // The runner masks the log; the summary file and outputs we mask ourselves.
    mask = secretMasker(secrets);
    const given = raw.command || 'deploy';
    command = (COMMANDS as readonly string[]).includes(given) ? given : '';
    const settings = parseSettings(raw, runContext(process.env, raw['ssh-config']));
    const keySecrets = keySecretsOf(settings).filter((secret) => !secrets.includes(secret));
    keySecrets.forEach((secret) => core.setSecret(secret));
    mask = secretMasker([...secrets, ...keySecrets]);
    const result = await runCommand(settings, actionLogger);
    if (settings.command === 'status') result.hosts.forEach((host) => renderStatus(host).forEach((line) => actionLogger.info(line)));
    // Outputs fall back to ::set-output:: without GITHUB_OUTPUT; the failure is ::error::.
    actionLogger.commands();

    core.setOutput('release', result.release);
    core.setOutput('previous-release', result.previousRelease);
    core.setOutput('release-path', result.releasePath);
    core.setOutput('data-release', result.dataRelease);
    core.setOutput('previous-data-release', result.previousDataRelease);
    core.setOutput('status', result.status);
    core.setOutput('hosts', mask(hostsOutput(result.hosts)));
    if (settings.command === 'status') core.setOutput('releases', mask(releasesOutput(result.hosts)));
    if (process.env.GITHUB_STEP_SUMMARY) {
      const title = ['tagflip', settings.command, settings.release || settings.rollbackTo].filter(Boolean).join(' ');
      await core.appendSummary(mask(renderSummary(result, title)));
    }
    if (!result.ok) {
      const failed = result.hosts.filter((host) => host.error);
      core.setFailed(failed.map((host) => host.error).join('\n') || `status: ${result.status}`);
    }
  } catch (error) {
    actionLogger.commands();
    const refused = error instanceof InputError;
    const message = mask(refused ? `bad input: ${error.message}` : (error as Error).message);
    // Without these a follow-up job (if: failure()) has nothing to read.
    core.setOutput('status', 'failed');
    await writeFailureSummary(command, refused ? `${message}\n\nThe input was refused before any connection: nothing changed on any host.` : message);
    core.setFailed(message);
  }
}

/** The job summary of a step that stopped before any host was worked on. */
async function writeFailureSummary(command: string, text: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  try {
    const title = ['tagflip', command].filter(Boolean).join(' ');
    await core.appendSummary(`### ${title}: failed\n\n${text}\n`);
  } catch (error) {
    core.warning(`could not write the job summary: ${(error as Error).message}`);
  }
}
