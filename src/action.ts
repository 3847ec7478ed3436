import * as core from '@actions/core';
import { InputError } from './errors.js';
import { type Logger, secretMasker } from './logger.js';
import { hostsOutput, releasesOutput, renderStatus, renderSummary } from './result.js';
import { abortOnSignals, runCommand, secretsOf } from './run.js';
import { COMMANDS, INPUT_NAMES, type RunContext, parseSettings } from './settings.js';

const actionLogger: Logger = {
  info: (message) => core.info(message),
  warning: (message) => core.warning(message),
  error: (message) => core.error(message),
  debug: (message) => core.debug(message),
  startGroup: (name) => core.startGroup(name),
  endGroup: () => core.endGroup(),
};

function runContext(env: NodeJS.ProcessEnv): RunContext {
  const runUrl =
    env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
      ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
      : '';
  return { refType: env.GITHUB_REF_TYPE, refName: env.GITHUB_REF_NAME, actor: env.GITHUB_ACTOR, runUrl, workspace: env.GITHUB_WORKSPACE || process.cwd() };
}

/** The GitHub Action: inputs → settings → run → outputs and job summary. */
export async function run(): Promise<void> {
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
    const settings = parseSettings(raw, runContext(process.env));
    const result = await runCommand(settings, actionLogger);
    if (settings.command === 'status') result.hosts.forEach((host) => renderStatus(host).forEach((line) => core.info(line)));

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
      await core.summary.addRaw(mask(renderSummary(result, title))).write();
    }
    if (!result.ok) {
      const failed = result.hosts.filter((host) => host.error);
      core.setFailed(failed.map((host) => host.error).join('\n') || `status: ${result.status}`);
    }
  } catch (error) {
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
    await core.summary.addRaw(`### ${title}: failed\n\n${text}\n`).write();
  } catch (error) {
    core.warning(`could not write the job summary: ${(error as Error).message}`);
  }
}
