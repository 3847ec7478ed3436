import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { type CliNotes, type CliRewording, readInputDocs, renderCommandHelp, renderMainHelp } from './help.js';
import { didYouMean } from '../core/did-you-mean.js';
import { showControls } from '../core/host-text.js';
import { InputError } from '../core/errors.js';
import { type Logger, maskingLogger, secretMasker, tidyGroups } from '../core/logger.js';
import { type RunResult, hostRows, releaseRows, renderStatus } from '../core/result.js';
import { abortOnSignals, keySecretsOf, runCommand, secretsOf } from '../commands/run.js';
import { COMMANDS, COMMAND_INPUTS, type Command, INPUT_NAMES, type InputName, type RunContext } from '../core/inputs.js';
import { parseSettings } from '../core/settings.js';
import { readSshConfig } from '../remote/ssh-config.js';
import { VERSION } from '../core/version.js';

const BOOLEAN_INPUTS = new Set<string>(['dry-run', 'force-build', 'insecure-ignore-host-key', 'drift', 'drift-record']);
const BOOLEAN_WORDS = new Set<string>(['true', 'True', 'TRUE', 'false', 'False', 'FALSE']);
/**
 * Inputs whose values need not be on the command line, where every user of the
 * machine can read them: each may be `@FILE`, or come from TAGFLIP_<NAME>.
 */
const OFF_COMMAND_LINE_INPUTS = ['private-key', 'passphrase', 'env', 'secret-env'] as const;
/** Of those, the secrets: tagflip warns when one is written on the command line itself. */
const SECRET_INPUTS = new Set<string>(['private-key', 'passphrase', 'secret-env']);
const FILE_INPUTS = new Set<string>([...OFF_COMMAND_LINE_INPUTS, 'known-hosts']);

/** The environment variable an input may come from: TAGFLIP_SECRET_ENV for secret-env. */
export function variableFor(input: string): string {
  return `TAGFLIP_${input.toUpperCase().replace(/-/g, '_')}`;
}

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Whether stderr, where the log goes, is full (writerBacklog): a host's output then waits for it to drain. */
  stderrBacklog?: () => Promise<void> | undefined;
}

/** Parse argv into raw inputs: `deploy --hosts web1 --dry-run --build=make`. */
export function parseArgs(argv: readonly string[]): Record<string, string> {
  return readCommandLine(argv).inputs;
}

/** Flags of the CLI itself, not inputs: they choose what to read and how to print. */
const CLI_FLAGS = ['config', 'json'] as const;
/** Known only to be suggested: runCli answers them before reading anything else. */
const ANSWERED_FLAGS = ['help', 'version'] as const;
const KNOWN_FLAGS: readonly string[] = [...INPUT_NAMES, ...CLI_FLAGS];

interface CommandLine {
  /** Flags over the --config file. */
  inputs: Record<string, string>;
  /** The inputs the command line itself gave. */
  flags: Record<string, string>;
  json: boolean;
}

function readCommandLine(argv: readonly string[]): CommandLine {
  const raw: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!KNOWN_FLAGS.includes(name)) throw notAnOption(arg, name);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    // A boolean flag takes the next word only if it is a boolean: `--dry-run deploy` is a flag and a command.
    else if (isBooleanFlag(name)) value = BOOLEAN_WORDS.has(argv[i + 1] ?? '') ? argv[++i] : 'true';
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    else throw new InputError(name, 'has no value', `--${name} VALUE (or --${name}=VALUE for a value starting with --)`);
    raw[name] = value;
  }
  if (positional.length > 1) throw new InputError('command', `unexpected arguments: ${positional.slice(1).join(' ')}`, 'one command');
  if (positional.length === 1) raw.command = positional[0];
  const { config: configPath, json, ...flags } = raw;
  const merged = configPath ? { ...readConfig(configPath), ...flags } : flags;
  if (merged.command) refuseMistypedCommand(merged.command);
  refuseUnusedFlags(Object.keys(flags), merged.command || 'deploy');
  if (json !== undefined && !BOOLEAN_WORDS.has(json)) throw new InputError('json', `'${json}' is not true or false`, '--json alone, or --json=true or --json=false');
  return { inputs: merged, flags, json: json !== undefined && json.toLowerCase() === 'true' };
}

function isBooleanFlag(name: string): boolean {
  return BOOLEAN_INPUTS.has(name) || name === 'json';
}

/**
 * A name that is not one of `known`: when one is close, the error asks
 * "did you mean …?" instead of listing them all.
 */
function unknownName(input: string, problem: string, typed: string, known: readonly string[], expected: string, spell = (name: string) => name): InputError {
  const error = new InputError(input, problem, expected);
  const guesses = didYouMean(typed, known);
  if (guesses.length > 0) error.message = `${input}: ${problem}; did you mean ${guesses.map(spell).join(' or ')}?`;
  return error;
}

function notAnOption(arg: string, name: string): InputError {
  const flag = (name: string) => `--${name}`;
  return unknownName(name || arg, `'${arg}' is not an option`, name, [...KNOWN_FLAGS, ...ANSWERED_FLAGS], `one of ${KNOWN_FLAGS.map(flag).join(', ')}`, flag);
}

/** `tagflip deplyo`: name the command meant. A command far from every one is left for parseSettings to name. */
function refuseMistypedCommand(command: string): void {
  if ((COMMANDS as readonly string[]).includes(command) || didYouMean(command, COMMANDS).length === 0) return;
  throw unknownName('command', `'${command}' is not a command`, command, COMMANDS, COMMANDS.join(', '));
}

/**
 * Secrets written on the command line (not `@FILE`): every user of this
 * machine can read them in `ps` for as long as tagflip runs. Say so, and how
 * to give them instead.
 */
export function commandLineSecretWarnings(flags: Readonly<Record<string, string>>): string[] {
  return [...SECRET_INPUTS]
    .filter((name) => flags[name] && !flags[name].startsWith('@'))
    .map((name) => `--${name} is written on the command line, where every user of this machine can read it (ps); use --${name} @FILE or the ${variableFor(name)} variable instead`);
}

/**
 * A flag the command would ignore is a mistake (`rollback --release v1.0` goes
 * to the previous release, not to v1.0): refuse it. A --config file may hold
 * inputs for other commands; those are left unused.
 */
function refuseUnusedFlags(given: readonly string[], command: string): void {
  if (!(COMMANDS as readonly string[]).includes(command)) return; // parseSettings names the bad command
  const uses = COMMAND_INPUTS[command as Command];
  const unused = given.filter((name) => name !== 'command' && !(uses as readonly string[]).includes(name));
  if (unused.length === 0) return;
  const flags = unused.map((name) => `--${name}`).join(', ');
  const hint = unused.includes('release') && command === 'rollback' ? " (to go to a named release: --rollback-to)" : '';
  throw new InputError(unused[0], `${flags} ${unused.length > 1 ? 'are' : 'is'} not used by ${command}${hint}`, `only the inputs ${command} uses: ${uses.filter((name) => name !== 'command').map((name) => `--${name}`).join(', ')}`);
}

function readConfig(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError('config', `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'a YAML file mapping input names to values');
  }
  const document = YAML.parseDocument(text);
  if (document.errors.length > 0) {
    // The parser's message quotes the offending line, which may hold a secret.
    const line = document.errors[0].linePos?.[0].line;
    throw new InputError('config', `${path} is not valid YAML${line ? ` (line ${line})` : ''}`, 'a YAML file mapping input names to values');
  }
  if (!YAML.isMap(document.contents)) {
    throw new InputError('config', `${path} is not a YAML map`, 'a YAML file mapping input names to values');
  }
  const raw: Record<string, string> = {};
  for (const pair of document.contents.items) {
    const name = String(YAML.isScalar(pair.key) ? pair.key.value : pair.key);
    if (!(INPUT_NAMES as readonly string[]).includes(name)) {
      throw unknownName('config', `${path} sets unknown input '${name}'`, name, INPUT_NAMES, `input names: ${INPUT_NAMES.join(', ')}`);
    }
    const value = configText(pair.value);
    if (value === null) throw new InputError('config', `${path} sets '${name}' to a map`, 'a text value or a list of lines');
    if (value !== '') raw[name] = value;
  }
  return raw;
}

/**
 * A config value as the text a workflow's `with:` would pass: scalars keep
 * their source spelling (`1.10` stays "1.10"), null (`build:`, `~`) is not
 * given, a list becomes lines. null for a map.
 */
function configText(node: unknown): string | null {
  if (node === null || node === undefined) return '';
  if (YAML.isScalar(node)) {
    if (node.value === null) return '';
    return typeof node.value === 'string' ? node.value : (node.source ?? String(node.value));
  }
  if (YAML.isSeq(node)) return node.items.map((item) => configText(item) ?? '').join('\n');
  return null;
}

/** @FILE inputs whose empty file is a mistake: without them, tagflip would fall back to ~/.ssh unasked. */
const EMPTY_FILE_REFUSALS: Readonly<Record<string, (file: string) => InputError>> = {
  'known-hosts': (file) => new InputError(
    'known-hosts',
    `${file} is empty: there is no host key to check the hosts against`,
    "known_hosts lines in it, e.g. from 'ssh-keyscan -p PORT HOST > FILE', checked against the fingerprint the server prints for 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' (or leave --known-hosts out to use ~/.ssh/known_hosts)",
  ),
  'private-key': (file) => new InputError(
    'private-key',
    `${file} is empty: there is no key in it`,
    "the private key's file, e.g. one made with ssh-keygen -t ed25519 -f FILE (or leave --private-key out to use ~/.ssh/config, the ssh-agent or ~/.ssh/id_ed25519)",
  ),
};

/**
 * Read @FILE values, take the inputs a flag or the config file left unset from
 * their TAGFLIP_ variables, and fill what an ssh user expects from ~/.ssh.
 */
export function withDefaults(raw: Record<string, string>, env: NodeJS.ProcessEnv): Record<string, string> {
  const filled = { ...raw };
  for (const name of FILE_INPUTS) {
    const value = filled[name];
    if (value?.startsWith('@')) {
      let text: string;
      try {
        text = readFileSync(value.slice(1), 'utf8');
      } catch (error) {
        throw new InputError(name, `cannot read ${value.slice(1)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, `--${name} @FILE naming a readable file`);
      }
      // An empty file would silently hand over to ~/.ssh (known_hosts, a default key): say so instead.
      if (!text.trim() && EMPTY_FILE_REFUSALS[name]) throw EMPTY_FILE_REFUSALS[name](value.slice(1));
      // `echo secret > file` ends it with a newline that is not part of the passphrase.
      filled[name] = name === 'passphrase' ? text.replace(/\r?\n$/, '') : text;
    }
  }
  for (const name of OFF_COMMAND_LINE_INPUTS) {
    const variable = variableFor(name);
    const value = env[variable];
    if (value === undefined) continue;
    if (filled[name] === undefined) filled[name] = value;
    // Read once, then gone: no child (a hook with --hosts local) inherits it.
    delete env[variable];
  }
  return filled;
}

/**
 * What an ssh user has set up, as ssh would use it: SSH_AUTH_SOCK, ~/.ssh/config
 * (or --ssh-config FILE), the first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa,
 * ~/.ssh/known_hosts and the login name. The inputs given win over each
 * (parseSettings applies them in that order).
 */
export function sshSetup(raw: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv): Pick<RunContext, 'sshAgent' | 'sshConfig' | 'defaultKey' | 'defaultKnownHosts' | 'localUser'> {
  const home = env.HOME || homedir();
  const ssh = join(home, '.ssh');
  const localUser = env.USER || loginName();
  const configFile = raw['ssh-config'] ? resolve(raw['ssh-config']) : join(ssh, 'config');
  // An explicit --ssh-config must be there; ~/.ssh/config is read when it is.
  const sshConfig = raw['ssh-config'] || existsSync(configFile) ? readSshConfig(configFile, { home, user: localUser }) : undefined;
  const keyFile = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((name) => join(ssh, name)).find((path) => existsSync(path));
  const knownHostsFile = join(ssh, 'known_hosts');
  return {
    sshAgent: env.SSH_AUTH_SOCK || undefined,
    sshConfig,
    defaultKey: keyFile ? { file: keyFile, text: readFileSync(keyFile, 'utf8') } : undefined,
    defaultKnownHosts: existsSync(knownHostsFile) ? readFileSync(knownHostsFile, 'utf8') : undefined,
    localUser,
  };
}

/** The login name of this process, '' when the system has none for its uid. */
function loginName(): string {
  try {
    return userInfo().username;
  } catch {
    return '';
  }
}

/**
 * The log on stderr; a group is its heading line (tidyGroups leaves out the
 * heading of a group with nothing in it). Much of it comes from hosts (their
 * output, their error text, the names they report), so control characters
 * are shown, not obeyed (host-text.ts), colours included: the terminal is the
 * operator's, not the host's.
 */
function cliLogger(io: CliIo): Logger {
  const say = (text: string) => io.stderr(`${showControls(text)}\n`);
  return {
    info: (message) => say(message),
    warning: (message) => say(`warning: ${message}`),
    error: (message) => say(`error: ${message}`),
    debug: (message) => (io.env.TAGFLIP_DEBUG ? say(`debug: ${message}`) : undefined),
    startGroup: (name) => say(`── ${name}`),
    endGroup: () => undefined,
    backlog: () => io.stderrBacklog?.(),
  };
}

/** What the command produced, for stdout: the status report, or the outputs as `name: value` lines. */
function renderResult(result: RunResult, command: string): string {
  if (command === 'status') return renderStatusReport(result);
  const lines = [`status: ${result.status}`, `release: ${result.release}`, `previous-release: ${result.previousRelease}`, `release-path: ${result.releasePath}`];
  // With status unknown: what each host may be on instead (the flip was sent, its answer never came).
  result.hosts.filter((host) => host.unconfirmedRelease).forEach((host) => lines.push(`unconfirmed-release: ${host.host}: ${host.unconfirmedRelease}`));
  if (result.dataRelease) lines.push(`data-release: ${result.dataRelease}`, `previous-data-release: ${result.previousDataRelease}`);
  return `${lines.join('\n')}\n`;
}

function renderStatusReport(result: RunResult): string {
  return `${result.hosts.flatMap(renderStatus).join('\n')}\n`;
}

/**
 * The result for scripts, as one line of JSON: the action's outputs under
 * their names, with `hosts` (and `releases`, for status) as arrays rather
 * than JSON text. Each string is masked before it is escaped, so a secret
 * with a newline or a quote in it is still found.
 */
export function renderJson(result: RunResult, command: string, mask: (text: string) => string = (text) => text): string {
  const outputs = {
    status: result.status,
    release: result.release,
    'previous-release': result.previousRelease,
    'release-path': result.releasePath,
    'data-release': result.dataRelease,
    'previous-data-release': result.previousDataRelease,
    hosts: hostRows(result.hosts),
    ...(command === 'status' ? { releases: releaseRows(result.hosts) } : {}),
  };
  return jsonLine(outputs, mask);
}

/**
 * One line of JSON, each string masked. JSON.stringify escapes C0 controls
 * but leaves DEL and C1 (U+009B is CSI to some terminals) as they are: those
 * are escaped too, so that a host's text does nothing in a terminal here either.
 */
function jsonLine(value: unknown, mask: (text: string) => string): string {
  const json = JSON.stringify(value, (_key, item: unknown) => (typeof item === 'string' ? mask(item) : item));
  return `${json.replace(/[\u007f-\u009f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

/** With --json, a run that ended before it had a result still answers with an object: status failed, and why. */
export function renderJsonError(message: string, mask: (text: string) => string = (text) => text): string {
  return jsonLine({ status: 'failed', error: message }, mask);
}

/**
 * The help a command line asks for: the command it names (the first word
 * that is not a flag's value), or none. Lenient: `tagflip deploy --hosts
 * web1 --help` helps with deploy whatever else is wrong on the line.
 */
function helpTopic(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-')) return arg;
    const name = arg.slice(2);
    if (KNOWN_FLAGS.includes(name) && !isBooleanFlag(name)) i++;
  }
  return undefined;
}

/**
 * What the CLI adds to action.yml's text of an input: the other ways to give
 * it, and its default from ~/.ssh, in the order the code tries them (sshSetup
 * and parseSettings).
 */
function cliNotes(): CliNotes {
  const notes: Record<string, string[]> = {};
  const add = (name: string, note: string) => (notes[name] ??= []).push(note);
  for (const name of FILE_INPUTS) add(name, `--${name} @FILE reads it from a file.`);
  for (const name of OFF_COMMAND_LINE_INPUTS) add(name, `Or set ${variableFor(name)}.`);
  add('passphrase', "A file's final newline is not part of it.");
  add('private-key', "Without it: the host's IdentityFile in ~/.ssh/config, else the ssh-agent at SSH_AUTH_SOCK, else the first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa.");
  add('known-hosts', "Without it (and --host-fingerprint): the host's UserKnownHostsFile in ~/.ssh/config, else ~/.ssh/known_hosts. An empty @FILE is refused: there would be no host key to check against.");
  add('user', "Without it: the host's User in ~/.ssh/config, else $USER.");
  add('ssh-config', 'Without it: ~/.ssh/config when it exists.');
  return Object.fromEntries(Object.entries(notes).map(([name, lines]) => [name, lines.join(' ')]));
}

/**
 * action.yml speaks to a workflow (the runner, its workspace, `secrets.*`, the
 * step); the CLI's help says the same for a command line. Each phrase must be
 * in action.yml (rewordForCli throws otherwise, and the help tests render
 * every command).
 */
export const CLI_REWORDING: CliRewording = {
  hosts: [['on the runner itself', 'on this machine']],
  'ssh-config': [
    ['(relative to the workspace)', '(relative to the current directory)'],
    [" Not set: no config file is read (the runner's ~/.ssh/config is not).", ''],
    ['Inputs that are given win over it.', 'Flags (and --config) win over it.'],
  ],
  'private-key': [
    [', usually `secrets.DEPLOY_KEY`', ''],
    [' Not set: a host\'s `IdentityFile` from ssh-config, else the ssh-agent at `SSH_AUTH_SOCK` (as a `webfactory/ssh-agent` step before this one sets it up).', ''],
  ],
  release: [['Defaults to the pushed tag.', 'Must be given, unless GITHUB_REF_TYPE=tag (the tag in GITHUB_REF_NAME is then the release).']],
  upload: [
    ['on the RUNNER', 'on this machine'],
    ['Relative to the workspace (`GITHUB_WORKSPACE`).', 'Relative to the current directory.'],
  ],
  verify: [['and the step fails', 'and tagflip exits with 1']],
  env: [[', or rely on the runner, which masks values that come from `secrets.*`.', '.']],
  'secret-env': [["registered with the runner's masking", 'masked in everything tagflip prints']],
};

/** --help, -h or --version: the text to print, or undefined when the line asks for neither. */
function answerForHelp(argv: readonly string[]): string | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    const topic = helpTopic(argv);
    if (topic === undefined) return renderMainHelp(readInputDocs());
    if (!(COMMANDS as readonly string[]).includes(topic)) {
      throw unknownName('command', `'${topic}' is not a command`, topic, COMMANDS, COMMANDS.join(', '));
    }
    return renderCommandHelp(topic as Command, readInputDocs(), cliNotes(), new Set([...BOOLEAN_INPUTS]), CLI_REWORDING);
  }
  if (argv.includes('--version')) return VERSION;
  return undefined;
}

/** The CLI: returns the process exit code (0 ok, 1 failed, 2 bad usage). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.length === 0) {
    io.stderr(`${renderMainHelp(readInputDocs())}\n`);
    return 2;
  }
  let mask = secretMasker([]);
  // Known before the line is read, so that a bad line still answers in JSON.
  let json = argv.includes('--json') || argv.includes('--json=true');
  try {
    const answer = answerForHelp(argv);
    if (answer !== undefined) {
      io.stdout(`${answer}\n`);
      return 0;
    }
    const commandLine = readCommandLine(argv);
    json = commandLine.json;
    for (const warning of commandLineSecretWarnings(commandLine.flags)) io.stderr(`warning: ${warning}\n`);
    const raw = withDefaults(commandLine.inputs, io.env);
    // No runner masks for us: every line we print passes through this.
    const secrets = secretsOf(raw);
    mask = secretMasker(secrets);
    const settings = parseSettings(raw as Partial<Record<InputName, string>>, {
      frontEnd: 'cli',
      refType: io.env.GITHUB_REF_TYPE,
      refName: io.env.GITHUB_REF_NAME,
      actor: io.env.GITHUB_ACTOR || io.env.USER || loginName(),
      workspace: process.cwd(),
      ...sshSetup(raw, io.env),
    });
    secrets.push(...keySecretsOf(settings).filter((secret) => !secrets.includes(secret)));
    mask = secretMasker(secrets);
    const logger = maskingLogger(tidyGroups(cliLogger(io), Boolean(io.env.TAGFLIP_DEBUG)), secrets);
    abortOnSignals(logger, (code) => process.exit(code));
    const result = await runCommand(settings, logger);
    if (json) {
      // The report is for people: with --json it joins the log on stderr.
      if (settings.command === 'status') io.stderr(showControls(mask(renderStatusReport(result))));
      io.stdout(renderJson(result, settings.command, mask));
    } else io.stdout(showControls(mask(renderResult(result, settings.command))));
    return result.ok ? 0 : 1;
  } catch (error) {
    const message = (error as Error).message;
    io.stderr(showControls(mask(`error: ${message}\n`)));
    if (json) io.stdout(renderJsonError(message, mask));
    return error instanceof InputError ? 2 : 1;
  }
}
