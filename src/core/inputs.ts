/** What the front ends hand to parseSettings (the inputs by name, the run's context) and the form each input's value must have. */
import { isAbsolute, resolve } from 'node:path';
import { InputError } from './errors.js';
import type { FrontEnd } from './front-end.js';

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

export const COMMANDS = ['deploy', 'prepare', 'rollback', 'status', 'prune'] as const;
export type Command = (typeof COMMANDS)[number];

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
  'migrate-check',
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
  'drift',
  'drift-ignore',
  'drift-record',
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
  'env', 'secret-env', 'command-timeout', 'lock-timeout', 'force-build', 'drift-record', 'dry-run',
];

/** The inputs each command reads; the CLI refuses a flag its command would ignore. */
export const COMMAND_INPUTS: Readonly<Record<Command, readonly InputName[]>> = {
  deploy: INPUT_NAMES.filter((name) => !['rollback-to', 'drift', 'drift-ignore'].includes(name)),
  prepare: PREPARE_INPUTS,
  rollback: [...REACH_INPUTS, ...HOOK_INPUTS, 'lock-timeout', 'keep-releases', 'rollback-to', 'rollback-data', 'dry-run'],
  status: [...REACH_INPUTS, 'drift', 'drift-ignore'],
  prune: [...REACH_INPUTS, 'lock-timeout', 'keep-releases', 'dry-run'],
};

/** Names a release may not take: they mean something else in the layout. */
const RESERVED_RELEASES = new Set(['current', '.', '..']);
const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const DEPLOY_PATH_CHARS = /^\/[A-Za-z0-9._+@%,=:~/-]*$/;
const REF = /^[A-Za-z0-9][A-Za-z0-9._/+-]{0,254}$/;
const REPOSITORY_CHARS = /^[A-Za-z0-9._~:/?#[\]@!$&'()*+,;=%-]+$/;
export const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;
const MAX_SCRIPT = 65536;

/** Show a bad value in an error without letting it forge log lines. */
export function printable(value: string): string {
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return shown.slice(1, -1);
}

export function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').slice(0, 512);
}

export function parseBoolean(input: string, value: string, fallback: boolean): boolean {
  if (value === '') return fallback;
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE'].includes(value)) return false;
  throw new InputError(input, `'${printable(value)}' is not a boolean`, "'true' or 'false'");
}

export function parseSeconds(input: string, value: string, fallback: number, max: number, min = 1): number {
  if (value === '') return fallback;
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new InputError(input, `'${printable(value)}' is not a number of seconds`, `a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

export function parseCount(input: string, value: string, fallback: number, max = 1000, what = 'releases to keep'): number {
  if (value === '') return fallback;
  if (!/^[0-9]{1,4}$/.test(value) || Number(value) < 1 || Number(value) > max) {
    const note = input === 'keep-releases' ? ' (current and the rollback target are always kept)' : '';
    throw new InputError(input, `'${printable(value)}' is not a number of ${what}`, `a whole number from 1 to ${max}${note}`);
  }
  return Number(value);
}

export function parseRollbackTo(value: string): string {
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
export function parseDataPath(value: string, deployPath: string): string {
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
export function parseUploadExclude(value: string): string[] {
  const lines = value.split('\n').map((line) => line.replace(/\r$/, '').trim()).filter((line) => line && !line.startsWith('#'));
  for (const line of lines) {
    if (CONTROL.test(line)) throw new InputError('upload-exclude', `'${printable(line)}' has a control character`, "gitignore-style patterns, one a line, e.g. 'node_modules/' or '*.log'");
  }
  return lines;
}

/** drift-ignore: read as upload-exclude's lines are (gitignore style), naming its own input. */
export function parseDriftIgnore(value: string): string[] {
  const lines = value.split('\n').map((line) => line.replace(/\r$/, '').trim()).filter((line) => line && !line.startsWith('#'));
  for (const line of lines) {
    if (CONTROL.test(line)) throw new InputError('drift-ignore', `'${printable(line)}' has a control character`, "gitignore-style patterns, one a line, e.g. 'var/cache/' or '*.pyc'");
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

export function parseScript(input: string, value: string): string {
  if (value.includes('\0')) throw new InputError(input, 'contains a NUL byte', 'shell commands as text');
  if (value.length > MAX_SCRIPT) throw new InputError(input, `is ${value.length} characters long`, `at most ${MAX_SCRIPT} characters; put longer scripts in the repository`);
  return value.trim() ? value : '';
}
