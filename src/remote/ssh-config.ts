import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { InputError } from '../core/errors.js';
import type { SshConfigSource } from '../core/inputs.js';
import { type ConfigLine, hostLineMatches, matchHostname, matchPattern, matchPatternList, parseConfigLines } from './ssh-config-syntax.js';

/**
 * The ssh_config options tagflip honours for one host name, as OpenSSH's ssh
 * resolves them (checked against `ssh -G`): `Host` blocks, `Match` blocks (all,
 * host, originalhost, user, localuser, canonical, final), `Include`, the first
 * value found winning. Only these options; every other option of the file
 * (IdentitiesOnly, Ciphers, …) is ignored.
 *
 * Reading a config runs nothing and looks nothing up. So what would need a command
 * or DNS to know is refused, when it decides something about the host: a `Match
 * exec` (or another criterion tagflip cannot evaluate: localnetwork, tagged, …), a
 * ProxyCommand, and CanonicalizeHostName yes or always.
 */
export interface SshHostOptions {
  hostName?: string;
  user?: string;
  port?: string;
  /** Paths with `~` and tokens expanded, in the order ssh tries them. */
  identityFiles: string[];
  proxyJump?: string;
  userKnownHostsFiles: string[];
}

/** Who reads the config: what `~`, %d and %u stand for (and Match localuser). */
export interface LocalAccount {
  home: string;
  user: string;
}

/** A parsed config file; the files it includes are read when a lookup reaches them. */
export interface SshConfigFile {
  file: string;
  lines: ConfigLine[];
}

/** OpenSSH's READCONF_MAX_DEPTH: how deep Include may nest. */
const MAX_DEPTH = 16;

/** `text`, the content of `file`, parsed; a syntax error is refused, naming ssh-config. */
export function parseSshConfig(text: string, file: string): SshConfigFile {
  try {
    return { file, lines: parseConfigLines(text) };
  } catch (error) {
    throw new InputError('ssh-config', `${file} cannot be parsed (${(error as Error).message})`, 'an OpenSSH client config file, such as ~/.ssh/config');
  }
}

/** What the passes over the config have set: the first value of each option. */
interface Found {
  hostName?: string;
  user?: string;
  port?: string;
  identityFiles: string[];
  userKnownHostsFiles?: string[];
  /** ProxyJump and ProxyCommand share one slot in ssh: the first of either wins. */
  proxy?: { option: 'ProxyJump' | 'ProxyCommand'; value: string };
  canonicalize?: { value: string; where: string };
  wantFinalPass: boolean;
}

/** One pass: `host` is what Host lines match; `final`, whether Match canonical/final match. */
interface Pass {
  host: string;
  originalHost: string;
  final: boolean;
  local: LocalAccount;
}

/**
 * The options for `name` (a host name as written in hosts or jump-host), with
 * `user` the login name given with it (user@host or the user input), which ssh
 * knows before it reads the config (-l) and Match user sees.
 */
export function hostOptions(config: SshConfigFile, name: string, local: LocalAccount, user?: string): SshHostOptions {
  const found: Found = { user, identityFiles: [], wantFinalPass: false };
  // The first pass matches Host lines against the name as written, case and all, as ssh does.
  readLines(config, { host: name, originalHost: name, final: false, local }, found, 0);
  refuseCanonicalization(found, name, config.file);
  if (found.wantFinalPass) {
    // ssh's final pass: Host lines match the host name it connects to, lower-cased; HostName is that now.
    const host = (found.hostName === undefined ? name : expandHostName(found.hostName, name)).toLowerCase();
    found.hostName = host;
    readLines(config, { host, originalHost: name, final: true, local }, found, 0);
  }
  const hostName = found.hostName === undefined ? undefined : expandHostName(found.hostName, name).toLowerCase();
  if (found.proxy?.option === 'ProxyCommand' && found.proxy.value.toLowerCase() !== 'none') {
    throw new InputError('ssh-config', `the ProxyCommand of ${name} in ${config.file} (${found.proxy.value}) is a command, and tagflip runs none from ssh-config`, `a ProxyJump for ${name} instead (ssh -W %h:%p bastion is ProxyJump bastion), or ProxyCommand none in a block before`);
  }
  const tokens: Record<string, string> = { '%': '%', h: hostName ?? name, n: name, d: local.home, u: local.user };
  const path = (option: string) => (value: string) => expandPath(value, option, tokens, local.home);
  const files = (option: string, values: readonly string[]) => values.filter((value) => value.toLowerCase() !== 'none').map(path(option));
  return {
    hostName,
    // A user given with the name is not the config's: only a User found there is returned.
    user: found.user === user ? undefined : found.user,
    port: found.port,
    identityFiles: files('IdentityFile', found.identityFiles),
    proxyJump: found.proxy?.option === 'ProxyJump' ? found.proxy.value : undefined,
    userKnownHostsFiles: files('UserKnownHostsFile', found.userKnownHostsFiles ?? []),
  };
}

/**
 * ssh canonicalizes a name by looking name.domain up in DNS for each of
 * CanonicalDomains (and the name itself); which one answers decides the host.
 * tagflip looks nothing up while it reads the config, so it cannot know.
 */
function refuseCanonicalization(found: Found, name: string, file: string): void {
  const value = found.canonicalize?.value.toLowerCase();
  if (value === undefined || value === 'no' || value === 'false') return;
  throw new InputError(
    'ssh-config',
    `CanonicalizeHostName ${found.canonicalize?.value} (${found.canonicalize?.where}) applies to ${name} in ${file}: ssh would look ${name}.<domain> up in DNS for each of CanonicalDomains, and tagflip runs nothing and looks nothing up while it reads the config`,
    `CanonicalizeHostName no for ${name} (first value wins: a 'Host ${name}' block before that line, with 'CanonicalizeHostName no'), and its full name as HostName or in hosts`,
  );
}

/** One pass over `config`'s lines (and the files it includes), as ssh's read_config_file. */
function readLines(config: SshConfigFile, pass: Pass, found: Found, depth: number, initiallyActive = true): void {
  let active = initiallyActive;
  for (const line of config.lines) {
    const where = `line ${line.line} of ${config.file}`;
    if (line.keyword === 'host') active = hostLineMatches(pass.host, line.args);
    else if (line.keyword === 'match') active = matchLine(line.args, pass, found, where);
    else if (line.keyword === 'include') {
      // An Include in a block that does not apply includes nothing (ssh reads it, matching nothing).
      if (active) for (const file of includedFiles(line.args, config.file, pass.local, where)) readLines(readIncluded(file, depth + 1, where), pass, found, depth + 1, active);
    } else if (active) setOption(line, found, where);
  }
}

function setOption({ keyword, args }: ConfigLine, found: Found, where: string): void {
  const [value] = args;
  if (keyword === 'hostname') found.hostName ??= value;
  else if (keyword === 'user') found.user ??= value;
  else if (keyword === 'port') found.port ??= value;
  else if (keyword === 'identityfile') found.identityFiles.push(value);
  else if (keyword === 'userknownhostsfile') found.userKnownHostsFiles ??= args;
  else if (keyword === 'proxyjump') found.proxy ??= { option: 'ProxyJump', value };
  else if (keyword === 'proxycommand') found.proxy ??= { option: 'ProxyCommand', value: args.join(' ') };
  else if (keyword === 'canonicalizehostname') found.canonicalize ??= { value, where };
}

/**
 * A Match line's criteria, all of which must hold (a `!` before one negates it),
 * as ssh's match_cfg_line. `exec` would run a command, and localnetwork, tagged and
 * the others need what tagflip does not know: when one of them would decide whether
 * the block applies (every other criterion holds), the config is refused.
 */
function matchLine(args: readonly string[], pass: Pass, found: Found, where: string): boolean {
  let result = true;
  let undecidable: string | undefined;
  for (let index = 0; index < args.length; index++) {
    const negated = args[index].startsWith('!');
    const criterion = (negated ? args[index].slice(1) : args[index]).toLowerCase();
    let holds: boolean;
    if (criterion === 'all') holds = true;
    else if (criterion === 'canonical' || criterion === 'final') {
      if (criterion === 'final' && !negated && !pass.final) found.wantFinalPass = true;
      holds = pass.final;
    } else {
      const value = args[++index];
      if (value === undefined) throw new InputError('ssh-config', `Match ${args.join(' ')} (${where}) has no value after ${criterion}`, 'Match criteria as ssh_config(5) has them, such as Match host web*');
      if (criterion === 'host') holds = matchHostname(found.hostName === undefined ? pass.host : expandHostName(found.hostName, pass.host), value);
      else if (criterion === 'originalhost') holds = matchHostname(pass.originalHost, value);
      else if (criterion === 'user') holds = matchPatternList(found.user ?? pass.local.user, value, false) === 1;
      else if (criterion === 'localuser') holds = matchPatternList(pass.local.user, value, false) === 1;
      else {
        undecidable ??= `${args[index - 1]} ${value}`;
        continue;
      }
    }
    if (holds === negated) result = false;
  }
  if (result && undecidable !== undefined) {
    const exec = undecidable.replace(/^!/, '').toLowerCase().startsWith('exec ');
    throw new InputError(
      'ssh-config',
      `Match ${args.join(' ')} (${where}) applies to ${pass.originalHost} unless ${exec ? 'its command' : undecidable}, which ${exec ? 'tagflip does not run: it runs nothing while it reads the config' : 'tagflip cannot evaluate'}, says otherwise`,
      `a Match on host, originalhost, user, localuser, all, canonical or final, or a Host block, for the hosts tagflip deploys to`,
    );
  }
  return result;
}

/** Include's arguments: ~ expanded, relative to ~/.ssh (ssh's rule for a user config), globbed, sorted. */
function includedFiles(args: readonly string[], from: string, local: LocalAccount, where: string): string[] {
  return args.flatMap((arg) => {
    const path = arg === '~' || arg.startsWith('~/') ? local.home + arg.slice(1) : isAbsolute(arg) ? arg : join(local.home, '.ssh', arg);
    if (/%|\$\{/.test(path)) throw new InputError('ssh-config', `Include ${arg} (${where}, in ${from}) uses a token or a variable, which tagflip does not expand`, 'a path, with ~ and * ? only');
    return glob(path);
  });
}

/** The files `path` names, `*` and `?` matched in each part (not a leading dot), sorted, as glob(3). */
function glob(path: string): string[] {
  const parts = path.split('/').filter((part, index) => part !== '' || index === 0);
  let found = [parts[0] === '' ? '/' : parts[0]];
  for (const part of parts.slice(1)) {
    found = found.flatMap((dir) => {
      if (!/[*?]/.test(part)) return [join(dir, part)];
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return [];
      }
      return names.filter((name) => matchPattern(name, part) && (!name.startsWith('.') || part.startsWith('.'))).sort().map((name) => join(dir, name));
    });
  }
  return found.filter((file) => existsSync(file));
}

function readIncluded(file: string, depth: number, where: string): SshConfigFile {
  if (depth > MAX_DEPTH) throw new InputError('ssh-config', `Include nests deeper than ${MAX_DEPTH} (${where}): an Include loop?`, 'Include files that do not include themselves');
  return parseSshConfig(readOrRefuse(file, `a config file included from ${dirname(file)} (${where})`), file);
}

/** HostName may hold %h (the name given) and %%; nothing else. */
function expandHostName(value: string, name: string): string {
  return value.replace(/%(.)/g, (token, letter: string) => {
    if (letter === 'h') return name;
    if (letter === '%') return '%';
    throw new InputError('ssh-config', `HostName '${value}' uses ${token}, which tagflip does not expand`, "a host name, or one with %h (the name given) in it");
  });
}

/** `~/…` and the %-tokens that do not depend on the connection: %d %u %h %n %%. */
function expandPath(value: string, option: string, tokens: Record<string, string>, home: string): string {
  const expanded = value.replace(/%(.)/g, (token, letter: string) => {
    const replacement = tokens[letter];
    if (replacement === undefined) {
      throw new InputError('ssh-config', `${option} '${value}' uses ${token}, which tagflip does not expand`, 'a path, with ~ and the tokens %d %u %h %n %% only');
    }
    return replacement;
  });
  return expanded === '~' || expanded.startsWith('~/') ? home + expanded.slice(1) : expanded;
}

/** Read and parse `file`; an unreadable file is an error naming the ssh-config input. */
export function readSshConfig(file: string, local: LocalAccount): SshConfigSource {
  const config = parseSshConfig(readOrRefuse(file, 'an OpenSSH client config file, such as ~/.ssh/config'), file);
  return {
    file,
    lookup(name, user) {
      const options = hostOptions(config, name, local, user);
      const identityFile = options.identityFiles.find((path) => existsSync(path));
      // A missing file is skipped, as ssh skips it; one that is there but unreadable is an error.
      const knownHostsFiles = options.userKnownHostsFiles;
      return {
        hostName: options.hostName,
        user: options.user,
        port: options.port,
        identity: identityFile === undefined ? null : { file: identityFile, text: readOrRefuse(identityFile, `a private key file (IdentityFile of ${name} in ${file})`) },
        knownHosts:
          knownHostsFiles.length === 0
            ? null
            : { files: knownHostsFiles, text: knownHostsFiles.filter((path) => existsSync(path)).map((path) => readOrRefuse(path, `a known_hosts file (UserKnownHostsFile of ${name} in ${file})`)).join('\n') },
        proxyJump: options.proxyJump,
      };
    },
  };
}

function readOrRefuse(path: string, expected: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError('ssh-config', `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, expected);
  }
}
