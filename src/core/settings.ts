import { isAbsolute, resolve } from 'node:path';
import { InputError } from './errors.js';
import type { FrontEnd } from './front-end.js';
import { parsePrivateKey } from './private-key.js';
import { buildsRelease, parseStages } from './stages.js';
// Only ssh2's key parser: the whole of ssh2 (client, protocol, SFTP) loads when a
// host is connected to, not before the first log line (see ssh-transport.ts).
import { type HostFingerprint, type KnownHostEntry, canonicalHost, fingerprintsFor, knownHostsName, matchesHost, parseKnownHosts } from './host-keys.js';

/** What the hosts' inputs learn about a host name from the config file, its files read. */
export interface SshConfigHost {
  hostName?: string;
  user?: string;
  port?: string;
  /** The first IdentityFile that exists, read; null when none does. */
  identity: { file: string; text: string } | null;
  /** The lines of UserKnownHostsFile's files (a missing one counts as empty), or null when it names none. */
  knownHosts: { files: string[]; text: string } | null;
  proxyJump?: string;
}

/** An ssh config file, as parseSettings asks it about each host name. */
export interface SshConfigSource {
  /** The file, as messages name it. */
  file: string;
  /** `user`: the login name given with the name (user@host, the user input), which Match user sees. */
  lookup(name: string, user?: string): SshConfigHost;
}

/**
 * Inputs, by their action.yml names, as the front ends read them: every value a
 * string, '' when not given. Both the action and the CLI produce this shape.
 */
export type RawInputs = Readonly<Record<string, string | undefined>>;

/** What the run knows about itself (GitHub's environment, or the CLI's). */
export interface RunContext {
  /** Who reads the messages: the action (inputs, workflows) unless the CLI says it is the CLI. */
  frontEnd?: FrontEnd;
  refType?: string;
  refName?: string;
  actor?: string;
  runUrl?: string;
  /** What a relative `upload` is relative to: GITHUB_WORKSPACE in the action, the working directory in the CLI. */
  workspace?: string;
  /** The ssh-agent's socket (SSH_AUTH_SOCK): how to log in when no private-key is given. */
  sshAgent?: string;
  /** The ssh config file host names are resolved through (ssh-config, or the CLI's ~/.ssh/config). */
  sshConfig?: SshConfigSource;
  /**
   * The CLI's fallbacks, as ssh has them: the first of ~/.ssh/id_ed25519, id_ecdsa,
   * id_rsa (after the agent), ~/.ssh/known_hosts, and the login name.
   */
  defaultKey?: { file: string; text: string };
  defaultKnownHosts?: string;
  localUser?: string;
}

/** How tagflip logs in over SSH; `from` says where the key came from, for the log. */
export type SshAuth =
  | { kind: 'key'; privateKey: string; passphrase: string; from: string }
  | { kind: 'agent'; socket: string };

export interface SshHost {
  kind: 'ssh';
  /** The host as written (an ssh-config alias stays the alias), with the user and a port other than 22. */
  label: string;
  /** What is connected to: the name written, or its HostName in ssh-config. */
  host: string;
  port: number;
  user: string;
  /** This host's IdentityFile from ssh-config, when no private-key input replaces it. */
  auth?: SshAuth;
  /** This host's UserKnownHostsFile from ssh-config, when no known-hosts input replaces it. */
  knownHosts?: { from: string; entries: KnownHostEntry[] };
  /** This host's ProxyJump from ssh-config, when no jump-host input replaces it. */
  jump?: SshHost;
}

export type HostTarget = { kind: 'local'; label: string } | SshHost;

export interface EnvVar {
  name: string;
  value: string;
  /** From secret-env: shown as *** wherever tagflip prints it. */
  secret?: boolean;
}


export const COMMANDS = ['deploy', 'prepare', 'rollback', 'status', 'prune'] as const;
export type Command = (typeof COMMANDS)[number];

export interface Settings {
  command: Command;
  /** Which front end gave the inputs, so that advice names them as its user writes them. */
  frontEnd: FrontEnd;
  /** Every host of the step, in the order given. */
  targets: HostTarget[];
  /** A bastion to reach the hosts through (the jump-host input), or null. */
  jumpHost: SshHost | null;
  maxParallel: number;
  /** Shell run after the flip (e.g. a reload), and the health check after it. */
  activate: string;
  verify: string;
  /** How a host without an IdentityFile of its own logs in; null when no host is reached over SSH, or every one has its own. */
  auth: SshAuth | null;
  knownHosts: KnownHostEntry[];
  hostFingerprints: HostFingerprint[];
  insecureIgnoreHostKey: boolean;
  deployPath: string;
  release: string;
  repository: string;
  ref: string;
  /** Absolute path on the runner of the tree or file to ship ('' for none); read by readUpload before connecting. */
  upload: string;
  /** gitignore-style lines left out of the upload (.git/ always is). */
  uploadExclude: string[];
  build: string;
  /** Paths inside each release that live in shared/ instead (SPEC step 7). */
  sharedDirs: string[];
  sharedFiles: string[];
  /** Shell that migrates a copy of the data (SPEC step 8); '' for none. */
  migrate: string;
  dataPath: string;
  rollbackData: boolean;
  /** env, then secret-env (those marked secret); no name twice. */
  env: EnvVar[];
  commandTimeout: number;
  connectTimeout: number;
  lockTimeout: number;
  keepReleases: number;
  /** With rollback: the release to go to; '' for the previous one. */
  rollbackTo: string;
  /** Rebuild a complete release that is not current even when its source is unchanged (never the current one). */
  forceBuild: boolean;
  /** With deploy: the first `canary` hosts flip and pass activate and verify before the others (0: all at once); stages.ts. */
  canary: number;
  /** Seconds to wait after the canary passed before verify runs on it again (0: no second verify). */
  canaryWait: number;
  dryRun: boolean;
  actor: string;
  runUrl: string;
}

export const INPUT_NAMES = [
  'command',
  'hosts',
  'user',
  'port',
  'private-key',
  'passphrase',
  'known-hosts',
  'host-fingerprint',
  'insecure-ignore-host-key',
  'jump-host',
  'ssh-config',
  'max-parallel',
  'activate',
  'verify',
  'deploy-path',
  'release',
  'repository',
  'ref',
  'upload',
  'upload-exclude',
  'build',
  'shared-dirs',
  'shared-files',
  'migrate',
  'data-path',
  'rollback-data',
  'env',
  'secret-env',
  'command-timeout',
  'connect-timeout',
  'lock-timeout',
  'keep-releases',
  'rollback-to',
  'force-build',
  'canary',
  'canary-wait',
  'dry-run',
] as const;

export type InputName = (typeof INPUT_NAMES)[number];

/** What every command reads: where the site is and how to reach it. */
const REACH_INPUTS: readonly InputName[] = [
  'command', 'hosts', 'user', 'port', 'private-key', 'passphrase', 'known-hosts', 'host-fingerprint',
  'insecure-ignore-host-key', 'jump-host', 'ssh-config', 'max-parallel', 'connect-timeout', 'deploy-path', 'data-path',
];
const HOOK_INPUTS: readonly InputName[] = ['activate', 'verify', 'env', 'secret-env', 'command-timeout'];

/** A prepare builds as a deploy does, up to ready: no flip, so no hooks after it, no data copy, no retention (stages.ts). */
const PREPARE_INPUTS: readonly InputName[] = [
  ...REACH_INPUTS, 'release', 'repository', 'ref', 'upload', 'upload-exclude', 'build', 'shared-dirs', 'shared-files',
  'env', 'secret-env', 'command-timeout', 'lock-timeout', 'force-build', 'dry-run',
];

/** The inputs each command reads; the CLI refuses a flag its command would ignore. */
export const COMMAND_INPUTS: Readonly<Record<Command, readonly InputName[]>> = {
  deploy: INPUT_NAMES.filter((name) => name !== 'rollback-to'),
  prepare: PREPARE_INPUTS,
  rollback: [...REACH_INPUTS, ...HOOK_INPUTS, 'lock-timeout', 'keep-releases', 'rollback-to', 'rollback-data', 'dry-run'],
  status: REACH_INPUTS,
  prune: [...REACH_INPUTS, 'lock-timeout', 'keep-releases', 'dry-run'],
};

/** Names a release may not take: they mean something else in the layout. */
const RESERVED_RELEASES = new Set(['current', '.', '..']);
const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;
const USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const DEPLOY_PATH_CHARS = /^\/[A-Za-z0-9._+@%,=:~/-]*$/;
const REF = /^[A-Za-z0-9][A-Za-z0-9._/+-]{0,254}$/;
const REPOSITORY_CHARS = /^[A-Za-z0-9._~:/?#[\]@!$&'()*+,;=%-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;
const MAX_SCRIPT = 65536;
/** Variables that change how sh parses or runs the scripts themselves. */
const SHELL_SPECIAL_NAMES = new Set(['IFS', 'ENV', 'BASH_ENV', 'CDPATH', 'SHELLOPTS', 'BASHOPTS', 'PS1', 'PS2', 'PS4', 'OPTIND', 'OPTARG', 'PPID', 'LINENO', 'PWD', 'OLDPWD', 'HOME']);

/** Turn raw inputs into validated settings, or throw an InputError naming the input. */
export function parseSettings(raw: RawInputs, context: RunContext = {}): Settings {
  const get = (name: InputName): string => (raw[name] ?? '').trim();

  const command = (get('command') || 'deploy') as Command;
  if (!COMMANDS.includes(command)) {
    throw new InputError('command', `'${printable(command)}' is not a command`, COMMANDS.map((name) => `'${name}'`).join(', '));
  }

  const port = get('port') ? parsePort('port', get('port')) : null;
  const user = get('user');
  if (user && !USER.test(user)) {
    throw new InputError('user', `'${printable(user)}' is not a valid login name`, 'letters, digits, _ . - (at most 32, not starting with - or a digit)');
  }
  const privateKey = raw['private-key'] ?? '';
  const passphrase = raw['passphrase'] ?? '';
  const knownHostsText = raw['known-hosts'] ?? '';
  const resolution: HostResolution = {
    sshConfig: context.sshConfig,
    localUser: context.localUser,
    passphrase,
    agent: Boolean(context.sshAgent),
    frontEnd: context.frontEnd,
    // An input that is given replaces what ssh-config says about every host.
    identity: !privateKey.trim(),
    knownHosts: !knownHostsText.trim(),
    proxyJump: !get('jump-host'),
  };
  const targets = parseHosts(get('hosts'), user, port, resolution);
  const jumpHost = parseJumpHost(get('jump-host'), user, port, resolution);
  if (jumpHost && targets[0].kind === 'local') {
    throw new InputError('jump-host', "is set, but hosts is 'local', which needs no SSH", "no jump-host with 'local', or SSH hosts");
  }

  const insecureIgnoreHostKey = parseBoolean('insecure-ignore-host-key', get('insecure-ignore-host-key'), false);
  // The CLI's ~/.ssh/known_hosts stands in for known-hosts only when host-fingerprint is not given either.
  const knownHosts = parseKnownHostsInput((knownHostsText.trim() || get('host-fingerprint')) ? knownHostsText : (context.defaultKnownHosts ?? ''));
  const sshHosts = targets.filter((target) => target.kind === 'ssh');
  const bastions = [...(jumpHost ? [jumpHost] : []), ...sshHosts.flatMap((target) => (target.jump ? [target.jump] : []))];
  const sshTargets = [...sshHosts, ...bastions.filter((bastion, index) => bastions.findIndex((other) => other.label === bastion.label) === index)];
  const hostFingerprints = parseFingerprints(get('host-fingerprint'), sshTargets);
  const auth = sshTargets.some((target) => !target.auth) ? parseAuth(privateKey, passphrase, context) : null;
  for (const target of sshTargets) checkHostKeyPolicy(target, knownHosts, hostFingerprints, insecureIgnoreHostKey);

  // Only a deploy (or a prepare) names a release; the other commands work on what is there.
  const builds = buildsRelease(command);
  const release = builds ? parseRelease(get('release'), context) : '';
  const repository = parseRepository(get('repository'));
  const ref = builds ? parseRef(get('ref') || release) : '';
  const upload = builds ? parseUpload(get('upload'), repository, context.workspace) : '';

  const deployPath = parseDeployPath(get('deploy-path'));
  const shared = parseSharedPaths(raw['shared-dirs'] ?? '', raw['shared-files'] ?? '');
  return {
    command,
    frontEnd: context.frontEnd ?? 'action',
    targets,
    jumpHost,
    maxParallel: parseCount('max-parallel', get('max-parallel'), 16, 256, 'hosts worked on at once'),
    activate: parseScript('activate', raw['activate'] ?? ''),
    verify: parseScript('verify', raw['verify'] ?? ''),
    auth,
    knownHosts,
    hostFingerprints,
    insecureIgnoreHostKey,
    deployPath,
    release,
    repository,
    ref,
    upload,
    uploadExclude: upload ? parseUploadExclude(raw['upload-exclude'] ?? '') : [],
    build: parseScript('build', raw['build'] ?? ''),
    sharedDirs: shared.dirs,
    sharedFiles: shared.files,
    migrate: parseScript('migrate', raw['migrate'] ?? ''),
    dataPath: parseDataPath(get('data-path'), deployPath),
    rollbackData: parseBoolean('rollback-data', get('rollback-data'), true),
    env: parseHookEnv(raw['env'] ?? '', raw['secret-env'] ?? ''),
    commandTimeout: parseSeconds('command-timeout', get('command-timeout'), 3600, 7 * 24 * 3600),
    connectTimeout: parseSeconds('connect-timeout', get('connect-timeout'), 30, 600),
    lockTimeout: parseSeconds('lock-timeout', get('lock-timeout'), 300, 24 * 3600, 0),
    keepReleases: parseCount('keep-releases', get('keep-releases'), 5),
    rollbackTo: parseRollbackTo(get('rollback-to')),
    forceBuild: parseBoolean('force-build', get('force-build'), false),
    ...parseStages(command, get('canary'), get('canary-wait'), targets.length, Boolean((raw['verify'] ?? '').trim())),
    dryRun: parseBoolean('dry-run', get('dry-run'), false),
    actor: oneLine(context.actor ?? ''),
    runUrl: oneLine(context.runUrl ?? ''),
  };
}

/** Show a bad value in an error without letting it forge log lines. */
function printable(value: string): string {
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return shown.slice(1, -1);
}

function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').slice(0, 512);
}

/**
 * How a host name becomes a host: its own `user@` and `:port` first, then the
 * user and port inputs, then what ssh-config says for the name, then the
 * fallbacks (the login name, port 22).
 */
export interface HostResolution {
  sshConfig?: SshConfigSource;
  localUser?: string;
  /** To check an IdentityFile with. */
  passphrase?: string;
  /** Whether an ssh-agent is there to use instead of an encrypted IdentityFile. */
  agent?: boolean;
  /** Whom the advice is for (flags or inputs). */
  frontEnd?: FrontEnd;
  /** Which per-host parts of ssh-config apply: an input that is given replaces each one for every host. */
  identity?: boolean;
  knownHosts?: boolean;
  proxyJump?: boolean;
}

export function parseHosts(value: string, user: string, port: number | null, resolution: HostResolution = {}): HostTarget[] {
  const entries = value.split(/[,\n]/).map((entry) => entry.trim()).filter(Boolean);
  if (entries.length === 0) {
    throw new InputError('hosts', 'no host given', "one or more '[user@]host[:port]' entries, comma or newline separated, or 'local' for this machine");
  }
  if (entries.length > 256) throw new InputError('hosts', `${entries.length} entries given`, 'at most 256 hosts per step (use a matrix)');
  const targets = entries.map((entry) => parseHostEntry(entry, user, port, 'hosts', resolution));
  if (targets.length > 1 && targets.some((target) => target.kind === 'local')) {
    throw new InputError('hosts', "'local' is given together with other hosts", "'local' alone, or SSH hosts only");
  }
  const seen = new Set<string>();
  for (const target of targets) {
    const key = target.kind === 'ssh' ? `${canonicalHost(target.host)}:${target.port}` : 'local';
    if (seen.has(key)) throw new InputError('hosts', `'${printable(target.label)}' is given twice`, 'each host once');
    seen.add(key);
  }
  return targets;
}

function parseJumpHost(value: string, user: string, port: number | null, resolution: HostResolution): SshHost | null {
  if (!value) return null;
  const target = parseHostEntry(value, user, port, 'jump-host', resolution);
  if (target.kind !== 'ssh') throw new InputError('jump-host', "'local' is not a bastion", "'[user@]host[:port]' of an SSH server that can reach the hosts");
  return target;
}

export function parseHostEntry(entry: string, defaultUser: string, defaultPort: number | null, input = 'hosts', resolution: HostResolution = {}): HostTarget {
  if (entry === 'local') return { kind: 'local', label: 'local' };
  const expected = "'[user@]host[:port]', e.g. 'deploy@web1.example.com:2222' or 'local'";
  const match = /^(?:([^@]*)@)?(\[[^\]]*\]|[^:]*)(?::([^:]*))?$/.exec(entry);
  if (!match) throw new InputError(input, `'${printable(entry)}' is not a host entry`, expected);
  const [, entryUser, rawHost, rawPort] = match;
  if (entryUser !== undefined && !USER.test(entryUser)) {
    throw new InputError(input, `'${printable(entry)}' has an invalid user '${printable(entryUser)}'`, expected);
  }
  const bracketed = rawHost.startsWith('[');
  const host = bracketed ? rawHost.slice(1, -1) : rawHost;
  if (!validHost(host, bracketed)) {
    throw new InputError(input, `'${printable(entry)}' has an invalid host name '${printable(host)}'`, `${expected}; IPv6 addresses in brackets`);
  }
  const { sshConfig } = resolution;
  const config = sshConfig?.lookup(host, entryUser ?? (defaultUser || undefined));
  const where = `${host} in ${sshConfig?.file}`;
  const hostName = config?.hostName ?? host;
  if (!validHost(hostName, hostName.includes(':'))) {
    throw new InputError('ssh-config', `the HostName '${printable(hostName)}' of ${where} is not a host name`, 'a DNS name or an IP address');
  }
  const port = rawPort !== undefined ? parsePort(input, rawPort) : (defaultPort ?? (config?.port === undefined ? 22 : parsePort('ssh-config', config.port)));
  if (config?.user !== undefined && !USER.test(config.user)) {
    throw new InputError('ssh-config', `the User '${printable(config.user)}' of ${where} is not a valid login name`, 'letters, digits, _ . - (at most 32, not starting with - or a digit)');
  }
  const user = entryUser ?? (defaultUser || config?.user || resolution.localUser || '');
  if (!user) {
    throw new InputError(input, `'${printable(entry)}' names no user and the 'user' input is empty`, `'user@${host}' or a 'user' input`);
  }
  const label = `${user}@${bracketed ? `[${host}]` : host}${port === 22 ? '' : `:${port}`}`;
  const target: SshHost = { kind: 'ssh', label, host: hostName, port, user };
  if (!config) return target;
  if (config.identity && resolution.identity) {
    const auth = identityAuth(config.identity, where, resolution);
    if (auth) target.auth = auth;
  }
  if (config.knownHosts && resolution.knownHosts) {
    const from = `the UserKnownHostsFile of ${where} (${config.knownHosts.files.join(', ')})`;
    target.knownHosts = { from, entries: parseKnownHostsOf(config.knownHosts.text, from) };
  }
  const proxyJump = config.proxyJump ?? 'none';
  if (proxyJump.toLowerCase() !== 'none') {
    // A bastion's own ProxyJump would be a second hop; tagflip tunnels through one.
    if (input === 'ssh-config') throw new InputError('ssh-config', `the jump host ${where} has a ProxyJump of its own (${printable(proxyJump)})`, 'one jump host: tagflip tunnels through one bastion');
    if (resolution.proxyJump) target.jump = parseProxyJump(proxyJump, where, resolution);
  }
  return target;
}

function validHost(host: string, bracketed: boolean): boolean {
  return bracketed ? IPV6.test(host) && host.includes(':') : HOSTNAME.test(host);
}

/** ProxyJump: one `[user@]host[:port]` (or `ssh://` URI), resolved through the config like any host. */
function parseProxyJump(value: string, where: string, resolution: HostResolution): SshHost {
  if (value.includes(',')) {
    throw new InputError('ssh-config', `the ProxyJump of ${where} names several jump hosts (${printable(value)})`, 'one jump host: tagflip tunnels through one bastion');
  }
  const entry = value.replace(/^ssh:\/\//, '');
  // The jump host's user and port are its own (from its entry or its config), not the hosts' inputs.
  const target = parseHostEntry(entry, '', null, 'ssh-config', resolution);
  if (target.kind !== 'ssh') throw new InputError('ssh-config', `the ProxyJump of ${where} is 'local'`, "'[user@]host[:port]' of an SSH server");
  return target;
}

/**
 * An IdentityFile as this host's key. An encrypted one without a passphrase
 * is left to the ssh-agent when there is one (as ssh signs with the agent's
 * copy of it); without an agent, it is an error.
 */
function identityAuth(identity: { file: string; text: string }, where: string, resolution: HostResolution): SshAuth | null {
  const passphrase = resolution.passphrase ?? '';
  const name = `${identity.file} (the IdentityFile of ${where})`;
  if (!passphrase && resolution.agent && keyIsEncrypted(identity.text)) return null;
  checkPrivateKey(identity.text, passphrase, 'ssh-config', name, { file: identity.file, frontEnd: resolution.frontEnd });
  return { kind: 'key', privateKey: identity.text, passphrase, from: `the key ${name}` };
}

function parsePort(input: string, value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new InputError(input, `'${printable(value)}' is not a port`, 'a whole number from 1 to 65535');
  }
  return Number(value);
}

function parseBoolean(input: string, value: string, fallback: boolean): boolean {
  if (value === '') return fallback;
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE'].includes(value)) return false;
  throw new InputError(input, `'${printable(value)}' is not a boolean`, "'true' or 'false'");
}

function parseSeconds(input: string, value: string, fallback: number, max: number, min = 1): number {
  if (value === '') return fallback;
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new InputError(input, `'${printable(value)}' is not a number of seconds`, `a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

function parseCount(input: string, value: string, fallback: number, max = 1000, what = 'releases to keep'): number {
  if (value === '') return fallback;
  if (!/^[0-9]{1,4}$/.test(value) || Number(value) < 1 || Number(value) > max) {
    const note = input === 'keep-releases' ? ' (current and the rollback target are always kept)' : '';
    throw new InputError(input, `'${printable(value)}' is not a number of ${what}`, `a whole number from 1 to ${max}${note}`);
  }
  return Number(value);
}

function parseRollbackTo(value: string): string {
  if (value === '' || value === 'previous') return '';
  if (!RELEASE.test(value) || RESERVED_RELEASES.has(value)) {
    throw new InputError('rollback-to', `'${printable(value)}' is not a release name`, "'previous' (the default) or the name of a release on the host, e.g. v2.9");
  }
  return value;
}

export function parseRelease(value: string, context: RunContext): string {
  let release = value;
  if (!release) {
    if (context.refType !== 'tag' || !context.refName) {
      const trigger = context.refType ? `a ${context.refType} (${printable(context.refName ?? '')})` : 'no tag';
      throw new InputError('release', `not given, and this run was triggered by ${trigger}`, 'a release name, or a run triggered by a tag push (the tag is then the release)');
    }
    release = context.refName;
  }
  if (!RELEASE.test(release)) {
    throw new InputError('release', `'${printable(release)}' is not a valid release name`, 'a letter or digit, then up to 127 letters, digits, . _ + - (like a tag: v3.0, 2024-06-01.1, v1.2.3-rc.1+build.5)');
  }
  if (RESERVED_RELEASES.has(release)) {
    throw new InputError('release', `'${release}' is reserved`, 'any other release name');
  }
  return release;
}

export function parseDeployPath(value: string, input = 'deploy-path'): string {
  const expected = "an absolute path such as '/srv/app/customer-a' (letters, digits and . _ + @ % , = : ~ - only)";
  if (!value) throw new InputError(input, 'not given', expected);
  if (value.length > 1024) throw new InputError(input, 'longer than 1024 characters', expected);
  if (!DEPLOY_PATH_CHARS.test(value)) {
    throw new InputError(input, `'${printable(value)}' is not an absolute path of plain characters`, expected);
  }
  const path = value.replace(/\/+$/, '');
  const segments = path.split('/').slice(1);
  if (path === '' || segments.some((segment) => segment === '' || segment === '.' || segment === '..' || segment.startsWith('-'))) {
    throw new InputError(input, `'${printable(value)}' has an empty, '.', '..' or '-'-leading segment, or is '/'`, expected);
  }
  return path;
}

/** data-path: anywhere but inside what tagflip manages for code (or around it). */
function parseDataPath(value: string, deployPath: string): string {
  if (!value) return `${deployPath}/data`;
  const path = parseDeployPath(value, 'data-path');
  const inside = (outer: string, inner: string) => inner === outer || inner.startsWith(`${outer}/`);
  const managed = ['releases', 'shared', '.tagflip', 'current'].map((name) => `${deployPath}/${name}`);
  if (path === deployPath || inside(path, deployPath) || managed.some((dir) => inside(dir, path))) {
    throw new InputError('data-path', `'${printable(value)}' overlaps deploy-path's own directories`, `a directory of its own, such as '${deployPath}/data' (the default) or one outside deploy-path`);
  }
  return path;
}

const SHARED_PATH = /^[A-Za-z0-9._+@%,=:~-]+(?:\/[A-Za-z0-9._+@%,=:~-]+)*$/;

/**
 * shared-dirs and shared-files: relative paths inside a release, one a line
 * (or comma separated). None may contain another, since each becomes one
 * symlink.
 */
export function parseSharedPaths(dirsText: string, filesText: string): { dirs: string[]; files: string[] } {
  const expected = "relative paths inside the release, one a line, such as 'var/log' or 'etc/app.cfg'";
  const entries: { input: string; path: string }[] = [];
  for (const [input, text] of [['shared-dirs', dirsText], ['shared-files', filesText]] as const) {
    for (const raw of text.split(/[\n,]/)) {
      const trimmed = raw.trim();
      const path = trimmed.replace(/\/+$/, '');
      if (!trimmed) continue;
      if (!path) throw new InputError(input, `'${printable(trimmed)}' is not a relative path inside the release`, expected);
      const segments = path.split('/');
      if (path.startsWith('/') || segments.some((segment) => segment === '..' || segment === '.')) {
        throw new InputError(input, `'${printable(path)}' is not a relative path inside the release`, expected);
      }
      if (!SHARED_PATH.test(path) || path.length > 512 || segments.some((segment) => segment.startsWith('-'))) {
        throw new InputError(input, `'${printable(path)}' has characters or segments a shared path cannot have`, `${expected}; letters, digits and . _ + @ % , = : ~ - (no segment starting with -)`);
      }
      if (segments[0] === '.git' || segments[0] === '.tagflip-source.tar') {
        throw new InputError(input, `'${printable(path)}' is reserved`, expected);
      }
      for (const other of entries) {
        const [outer, inner] = other.path.length <= path.length ? [other.path, path] : [path, other.path];
        if (inner === outer) throw new InputError(input, `'${printable(path)}' is given twice`, 'each path once, in shared-dirs or shared-files');
        if (inner.startsWith(`${outer}/`)) {
          throw new InputError(input, `'${printable(inner)}' is inside '${printable(outer)}'`, `${expected}, none inside another`);
        }
      }
      entries.push({ input, path });
    }
  }
  return {
    dirs: entries.filter((entry) => entry.input === 'shared-dirs').map((entry) => entry.path),
    files: entries.filter((entry) => entry.input === 'shared-files').map((entry) => entry.path),
  };
}

/** Transports git can fetch over without running a helper program. */
const REPOSITORY_SCHEMES = new Set(['https', 'http', 'ssh', 'git', 'git+ssh', 'ssh+git', 'file']);

/**
 * repository: a URL, git's scp form (`[user@]host:path`, no slash before the
 * colon) or an absolute path on the host. A relative path is refused: the host
 * would resolve it against whatever directory the fetch runs in.
 */
export function parseRepository(value: string): string {
  if (!value) return '';
  const expected = "a git URL the host can fetch: 'https://…', 'ssh://…', 'file:///path', 'git@host:path', or an absolute path on the host such as '/srv/git/app.git'";
  if (value.startsWith('-')) throw new InputError('repository', `'${printable(value)}' starts with '-'`, expected);
  if (value.length > 2048) throw new InputError('repository', 'longer than 2048 characters', expected);
  if (!REPOSITORY_CHARS.test(value)) {
    throw new InputError('repository', `'${printable(value)}' contains spaces or characters a URL cannot hold`, expected);
  }
  if (/^ext::/i.test(value) || /^[A-Za-z][A-Za-z0-9+.-]*::/.test(value)) {
    throw new InputError('repository', `'${printable(value)}' uses a git remote helper, which can run commands on the host`, expected);
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value)?.[1].toLowerCase();
  if (scheme !== undefined) {
    if (!REPOSITORY_SCHEMES.has(scheme)) throw new InputError('repository', `'${printable(value)}' uses ${scheme}://, which is not a git transport`, expected);
    return value;
  }
  if (value.startsWith('/')) return value;
  // git's own rule: a colon before any slash makes it [user@]host:path.
  const colon = value.indexOf(':');
  const slash = value.indexOf('/');
  if (colon > 0 && (slash < 0 || colon < slash) && value.slice(colon + 1) !== '') return value;
  throw new InputError('repository', `'${printable(value)}' is a relative path, which the host would resolve against an unknown directory`, expected);
}

/**
 * upload: a path on the runner, resolved against the workspace. Whether it
 * exists and has something in it is checked by readUpload, still before any
 * connection.
 */
export function parseUpload(value: string, repository: string, workspace = process.cwd()): string {
  if (!value) return '';
  const expected = "a directory or file on the runner, relative to the workspace (e.g. 'dist/' or 'site.tar.gz') or absolute";
  if (repository) {
    throw new InputError('upload', `is set together with repository (${printable(repository)}); a release has one source`, 'either upload (files from the runner) or repository (fetched by each host), not both');
  }
  if (value.includes('\0') || CONTROL.test(value)) throw new InputError('upload', `'${printable(value)}' has a control character`, expected);
  return isAbsolute(value) ? resolve(value) : resolve(workspace, value);
}

/** upload-exclude: gitignore-style lines; blank lines and # comments are skipped. */
function parseUploadExclude(value: string): string[] {
  const lines = value.split('\n').map((line) => line.replace(/\r$/, '').trim()).filter((line) => line && !line.startsWith('#'));
  for (const line of lines) {
    if (CONTROL.test(line)) throw new InputError('upload-exclude', `'${printable(line)}' has a control character`, "gitignore-style patterns, one a line, e.g. 'node_modules/' or '*.log'");
  }
  return lines;
}

export function parseRef(value: string): string {
  const expected = "a tag, branch or commit name (letters, digits, . _ / + -), e.g. 'v3.0'";
  if (!REF.test(value) || value.includes('..') || value.includes('//') || value.endsWith('/') || value.endsWith('.lock') || value.includes('@{')) {
    throw new InputError('ref', `'${printable(value)}' is not a git ref this tool accepts`, expected);
  }
  return value;
}

function parseScript(input: string, value: string): string {
  if (value.includes('\0')) throw new InputError(input, 'contains a NUL byte', 'shell commands as text');
  if (value.length > MAX_SCRIPT) throw new InputError(input, `is ${value.length} characters long`, `at most ${MAX_SCRIPT} characters; put longer scripts in the repository`);
  return value.trim() ? value : '';
}

/**
 * env and secret-env: the same lines, given to every hook the same way. Only
 * secret-env's values are secrets: the front ends mask them in everything they
 * print, and dry runs show them as ***. env's values are printed as they are,
 * so that `1` or `production` does not turn into *** all over the job log.
 */
function parseHookEnv(envText: string, secretText: string): EnvVar[] {
  const env = parseEnv(envText);
  const secrets = parseEnv(secretText, 'secret-env');
  const plain = new Set(env.map(({ name }) => name));
  const clash = secrets.find(({ name }) => plain.has(name));
  if (clash) throw new InputError('secret-env', `sets ${clash.name}, which env sets too`, 'each name in env or in secret-env, not in both');
  return [...env, ...secrets];
}

export function parseEnv(value: string, input: 'env' | 'secret-env' = 'env'): EnvVar[] {
  const env: EnvVar[] = [];
  const seen = new Set<string>();
  value.split('\n').forEach((rawLine, index) => {
    const line = rawLine.replace(/\r$/, '');
    if (!line.trim() || line.trim().startsWith('#')) return;
    const where = `line ${index + 1}`;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line.trim() : line.slice(0, eq).trim();
    if (eq < 0 || !ENV_NAME.test(name)) {
      // The value may be a secret: name the line, never echo it.
      throw new InputError(input, `${where} is not KEY=VALUE with a valid name`, 'lines of NAME=value, NAME being letters, digits and _ (not starting with a digit)');
    }
    if (name.startsWith('TAGFLIP_') || /^tf_/i.test(name)) {
      throw new InputError(input, `${where} sets ${name}, a name tagflip uses itself`, 'names not starting with TAGFLIP_ or tf_');
    }
    if (SHELL_SPECIAL_NAMES.has(name)) {
      throw new InputError(input, `${where} sets ${name}, which changes how the shell itself behaves`, 'ordinary variable names (not IFS, ENV, CDPATH, PS4, …)');
    }
    if (seen.has(name)) throw new InputError(input, `${where} sets ${name} a second time`, 'each name once');
    const envValue = line.slice(eq + 1);
    if (CONTROL.test(envValue) || envValue.includes('\0')) throw new InputError(input, `${where} (${name}) has a control character in its value`, 'printable values');
    seen.add(name);
    env.push(input === 'secret-env' ? { name, value: envValue, secret: true } : { name, value: envValue });
  });
  return env;
}

function parseKnownHostsOf(text: string, from: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(text);
  } catch (error) {
    throw new InputError('ssh-config', `${from}: ${(error as Error).message}`, 'known_hosts lines');
  }
}

function parseKnownHostsInput(value: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(value);
  } catch (error) {
    throw new InputError('known-hosts', (error as Error).message, "known_hosts lines as 'ssh-keyscan -p PORT HOST' prints them");
  }
}

const FINGERPRINT_FORM =
  "'SHA256:…' for a single host, or 'HOST=SHA256:…' binding each fingerprint to a host of hosts or jump-host (HOST as written there; 'HOST:PORT=' or '[HOST]:PORT=' for one port of it); comma or newline separated";

/**
 * host-fingerprint: each fingerprint is bound to the host whose key it is, so
 * that in a fleet (or through a bastion) one host's key never vouches for
 * another. A bare fingerprint is bound to the one SSH host there is; with
 * several, it would vouch for any of them, so it is refused.
 */
function parseFingerprints(value: string, sshTargets: readonly SshHost[]): HostFingerprint[] {
  if (!value) return [];
  const bound: HostFingerprint[] = [];
  for (const item of value.split(/[,\s]+/).filter(Boolean)) {
    const eq = item.indexOf('=');
    const fingerprint = eq < 0 ? item : item.slice(eq + 1);
    if (!FINGERPRINT.test(fingerprint)) {
      throw new InputError('host-fingerprint', `'${printable(fingerprint)}' is not an OpenSSH SHA256 fingerprint`, `'SHA256:' and 43 base64 characters, as 'ssh-keygen -lf' prints them; ${FINGERPRINT_FORM}`);
    }
    const hosts = eq < 0 ? bareFingerprintHosts(item, sshTargets) : boundFingerprintHosts(item.slice(0, eq), sshTargets);
    for (const { host, port } of hosts) bound.push({ host: canonicalHost(host), port, fingerprint });
  }
  return bound;
}

/** How host-fingerprint names a host: 'web1', '[2001:db8::1]', '[web1]:2222'. */
function fingerprintName(target: { host: string; port: number }): string {
  if (target.port !== 22) return `[${target.host}]:${target.port}`;
  return target.host.includes(':') ? `[${target.host}]` : target.host;
}

function bareFingerprintHosts(fingerprint: string, sshTargets: readonly SshHost[]): readonly { host: string; port: number }[] {
  if (sshTargets.length <= 1) return sshTargets;
  const labels = sshTargets.map((target) => target.label).join(', ');
  throw new InputError(
    'host-fingerprint',
    `'${fingerprint}' names no host, and this step connects to ${sshTargets.length} SSH hosts (${labels}): it would be accepted from any of them`,
    `one 'HOST=SHA256:…' per host, e.g. '${fingerprintName(sshTargets[0])}=${fingerprint}'; ${FINGERPRINT_FORM}`,
  );
}

function boundFingerprintHosts(name: string, sshTargets: readonly SshHost[]): { host: string; port: number }[] {
  const match = /^\[([^\]]+)\](?::([^:]*))?$/.exec(name) ?? /^([^:[\]]+)(?::([^:]*))?$/.exec(name);
  if (!match) throw new InputError('host-fingerprint', `'${printable(name)}' is not a host name (an IPv6 address goes in brackets)`, FINGERPRINT_FORM);
  const host = canonicalHost(match[1]);
  const port = match[2] === undefined ? null : parsePort('host-fingerprint', match[2]);
  const named = sshTargets.filter((target) => canonicalHost(target.host) === host && (port === null || target.port === port));
  if (named.length === 0) {
    const labels = sshTargets.map((target) => target.label).join(', ') || 'none';
    throw new InputError('host-fingerprint', `'${printable(name)}' names no SSH host of hosts or jump-host (${labels})`, FINGERPRINT_FORM);
  }
  const ports = [...new Set(named.map((target) => target.port))];
  if (ports.length > 1) {
    throw new InputError('host-fingerprint', `'${printable(name)}' names ${ports.length} hosts, on ports ${ports.join(', ')}`, `the port too, e.g. '${name}:${ports[0]}=SHA256:…'`);
  }
  return named;
}

/**
 * How hosts without an IdentityFile of their own log in: the private-key
 * input, else the ssh-agent, else (the CLI) the first default key file.
 */
function parseAuth(privateKey: string, passphrase: string, context: RunContext): SshAuth {
  if (privateKey.trim()) {
    checkPrivateKey(privateKey, passphrase);
    return { kind: 'key', privateKey, passphrase, from: 'the private-key input' };
  }
  if (context.sshAgent) return { kind: 'agent', socket: context.sshAgent };
  if (context.defaultKey) {
    const { file, text } = context.defaultKey;
    checkPrivateKey(text, passphrase, 'private-key', file, { file, frontEnd: context.frontEnd });
    return { kind: 'key', privateKey: text, passphrase, from: `the key ${file}` };
  }
  throw new InputError(
    'private-key',
    'not given, and there is no ssh-agent (SSH_AUTH_SOCK is not set)',
    'the text of an OpenSSH or PEM private key (usually from a secret), or an ssh-agent holding the key with its socket in SSH_AUTH_SOCK (as an ssh-agent step before this one sets it)',
  );
}

function keyIsEncrypted(privateKey: string): boolean {
  const parsed = parsePrivateKey(privateKey);
  return parsed instanceof Error && ENCRYPTED_KEY.test(parsed.message);
}

const ENCRYPTED_KEY = /encrypted|passphrase|decrypt/i;

/**
 * `name` is the key's name in messages: the input, or the file it came from
 * (with where that file was named). A key read from a file (an IdentityFile,
 * the CLI's ~/.ssh/id_*) may be given to an ssh-agent instead of a passphrase,
 * as ssh users do: the refusal says how.
 */
function checkPrivateKey(privateKey: string, passphrase: string, input = 'private-key', name = 'private-key', from: { file?: string; frontEnd?: FrontEnd } = {}): void {
  const subject = name === input ? '' : `${name} `;
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(privateKey)) {
    // Never echo any of it: it may be a secret pasted into the wrong input.
    throw new InputError(input, `${subject}does not look like a private key (no BEGIN … PRIVATE KEY line)`, 'the text of an OpenSSH or PEM private key, BEGIN and END lines included');
  }
  const parsed = parsePrivateKey(privateKey, passphrase || undefined);
  if (parsed instanceof Error) {
    if (!ENCRYPTED_KEY.test(parsed.message)) {
      throw new InputError(input, `${subject}could not be read as a private key`, 'an unencrypted or passphrase-protected OpenSSH/PEM key (ed25519, ecdsa or rsa)');
    }
    const frontEnd = from.frontEnd ?? 'action';
    const passphraseInput = frontEnd === 'cli' ? '--passphrase @FILE (or TAGFLIP_PASSPHRASE)' : 'the passphrase input';
    if (passphrase) throw new InputError('passphrase', `does not decrypt ${name}`, `the passphrase of ${from.file ?? name}`);
    const agent = from.file
      ? `, or the key in a running ssh-agent instead: eval "$(ssh-agent)"; ssh-add ${from.file} (then run again in that shell, with SSH_AUTH_SOCK set)`
      : '';
    throw new InputError('passphrase', `not given, but ${name} is encrypted`, `its passphrase in ${passphraseInput}${agent}`);
  }
}

function checkHostKeyPolicy(target: SshHost, runKnownHosts: KnownHostEntry[], fingerprints: HostFingerprint[], insecure: boolean): void {
  if (insecure || fingerprintsFor(fingerprints, target.host, target.port).length > 0) return;
  const remedy = `known_hosts lines from 'ssh-keyscan -p ${target.port} ${target.host}' (checked against the server), or host-fingerprint`;
  const knownHosts = target.knownHosts?.entries ?? runKnownHosts;
  const listed = knownHosts.some((entry) => !entry.revoked && matchesHost(entry.patterns, target.host, target.port));
  if (listed) return;
  if (target.knownHosts) {
    throw new InputError('ssh-config', `${target.knownHosts.from} has no line for ${knownHostsName(target.host, target.port)} (${target.label})`, `its line from 'ssh-keyscan -p ${target.port} ${target.host}' (checked against the server) in that file, or a known-hosts or host-fingerprint input`);
  }
  if (fingerprints.length > 0) {
    throw new InputError('host-fingerprint', `has no fingerprint for ${target.label}, and known-hosts no line for it`, `'${fingerprintName(target)}=SHA256:…' too, or its known_hosts line`);
  }
  if (knownHosts.length === 0) {
    throw new InputError('known-hosts', `no way to verify the host key of ${target.label}`, remedy);
  }
  throw new InputError('known-hosts', `no line names ${knownHostsName(target.host, target.port)}`, remedy);
}
