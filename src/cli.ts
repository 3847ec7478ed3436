import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { InputError } from './errors.js';
import { type Logger, maskingLogger, secretMasker } from './logger.js';
import { type RunResult, renderStatus } from './result.js';
import { abortOnSignals, keySecretsOf, runCommand, secretsOf } from './run.js';
import { COMMANDS, COMMAND_INPUTS, type Command, INPUT_NAMES, type InputName, type RunContext, parseSettings } from './settings.js';
import { readSshConfig } from './ssh-config.js';

const USAGE = `usage: tagflip <command> [--input value ...] [--config file.yml]

commands: deploy, rollback, status, prune
inputs are the action's, as flags: --hosts, --deploy-path, --release, --build, ...
  --dry-run, --force-build,
  --insecure-ignore-host-key               boolean flags (no value means true; --dry-run=false)
  --config FILE                            a YAML map of input names to values
  --private-key @FILE, --passphrase @FILE, --env @FILE, --secret-env @FILE, --known-hosts @FILE
                                           read the value from a file (a passphrase without its final newline)
  TAGFLIP_PRIVATE_KEY, TAGFLIP_PASSPHRASE, TAGFLIP_ENV, TAGFLIP_SECRET_ENV
                                           environment variables holding those values, read when
                                           neither a flag nor the --config file gives them
every user of this machine can read a command line (ps): give secrets by @FILE or a variable,
never as --passphrase VALUE (tagflip warns when you do).
without --private-key, the ssh-agent at SSH_AUTH_SOCK is used, else ~/.ssh/id_ed25519, id_ecdsa or id_rsa;
without --known-hosts, ~/.ssh/known_hosts is used.
host names are looked up in ~/.ssh/config (or --ssh-config FILE): HostName, User, Port,
IdentityFile, ProxyJump and UserKnownHostsFile apply; flags win over them.
a flag the command does not use is refused (a --config file may hold more).`;

const BOOLEAN_INPUTS = new Set<string>(['dry-run', 'force-build', 'insecure-ignore-host-key']);
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
}

/** Parse argv into raw inputs: `deploy --hosts web1 --dry-run --build=make`. */
export function parseArgs(argv: readonly string[]): Record<string, string> {
  return readCommandLine(argv).inputs;
}

/** The inputs (flags over the --config file), and the flags alone: what stood on the command line. */
function readCommandLine(argv: readonly string[]): { inputs: Record<string, string>; flags: Record<string, string> } {
  const raw: Record<string, string> = {};
  const known = new Set<string>([...INPUT_NAMES, 'config']);
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!known.has(name)) throw new InputError(name || arg, `'${arg}' is not an option`, 'one of --' + [...known].join(', --'));
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    // A boolean flag takes the next word only if it is a boolean: `--dry-run deploy` is a flag and a command.
    else if (BOOLEAN_INPUTS.has(name)) value = BOOLEAN_WORDS.has(argv[i + 1] ?? '') ? argv[++i] : 'true';
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    else throw new InputError(name, 'has no value', `--${name} VALUE (or --${name}=VALUE for a value starting with --)`);
    raw[name] = value;
  }
  if (positional.length > 1) throw new InputError('command', `unexpected arguments: ${positional.slice(1).join(' ')}`, 'one command');
  if (positional.length === 1) raw.command = positional[0];
  const { config: configPath, ...flags } = raw;
  const merged = configPath ? { ...readConfig(configPath), ...flags } : flags;
  refuseUnusedFlags(Object.keys(flags), merged.command || 'deploy');
  return { inputs: merged, flags };
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
    if (!(INPUT_NAMES as readonly string[]).includes(name)) throw new InputError('config', `${path} sets unknown input '${name}'`, `input names: ${INPUT_NAMES.join(', ')}`);
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

function cliLogger(io: CliIo): Logger {
  return {
    info: (message) => io.stderr(`${message}\n`),
    warning: (message) => io.stderr(`warning: ${message}\n`),
    error: (message) => io.stderr(`error: ${message}\n`),
    debug: (message) => (io.env.TAGFLIP_DEBUG ? io.stderr(`debug: ${message}\n`) : undefined),
    startGroup: (name) => io.stderr(`── ${name}\n`),
    endGroup: () => undefined,
  };
}

/** What the command produced, for stdout: the status report, or the outputs as `name: value` lines. */
function renderResult(result: RunResult, command: string): string {
  if (command === 'status') return `${result.hosts.flatMap(renderStatus).join('\n')}\n`;
  const lines = [`status: ${result.status}`, `release: ${result.release}`, `previous-release: ${result.previousRelease}`, `release-path: ${result.releasePath}`];
  if (result.dataRelease) lines.push(`data-release: ${result.dataRelease}`, `previous-data-release: ${result.previousDataRelease}`);
  return `${lines.join('\n')}\n`;
}

/** The CLI: returns the process exit code (0 ok, 1 failed, 2 bad usage). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    io.stdout(`${USAGE}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  let mask = secretMasker([]);
  try {
    const { inputs, flags } = readCommandLine(argv);
    for (const warning of commandLineSecretWarnings(flags)) io.stderr(`warning: ${warning}\n`);
    const raw = withDefaults(inputs, io.env);
    // No runner masks for us: every line we print passes through this.
    const secrets = secretsOf(raw);
    mask = secretMasker(secrets);
    const settings = parseSettings(raw as Partial<Record<InputName, string>>, {
      refType: io.env.GITHUB_REF_TYPE,
      refName: io.env.GITHUB_REF_NAME,
      actor: io.env.GITHUB_ACTOR || io.env.USER || loginName(),
      workspace: process.cwd(),
      ...sshSetup(raw, io.env),
    });
    secrets.push(...keySecretsOf(settings).filter((secret) => !secrets.includes(secret)));
    mask = secretMasker(secrets);
    const logger = maskingLogger(cliLogger(io), secrets);
    abortOnSignals(logger, (code) => process.exit(code));
    const result = await runCommand(settings, logger);
    io.stdout(mask(renderResult(result, settings.command)));
    return result.ok ? 0 : 1;
  } catch (error) {
    io.stderr(mask(`error: ${(error as Error).message}\n`));
    return error instanceof InputError ? 2 : 1;
  }
}
