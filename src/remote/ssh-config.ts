import { existsSync, readFileSync } from 'node:fs';
import SSHConfig from 'ssh-config';
import { InputError } from '../core/errors.js';
import type { SshConfigSource } from '../core/settings.js';

/**
 * The ssh_config options tagflip honours for one host name, as ssh resolves
 * them: every `Host` and `Match host/user` block that matches, the first value
 * found winning. Only these six; every other option of the file (ProxyCommand,
 * IdentitiesOnly, Ciphers, …) is ignored, and `Match exec` never matches, so
 * reading a config runs nothing.
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

/** Who reads the config: what `~`, %d and %u stand for. */
export interface LocalAccount {
  home: string;
  user: string;
}

/** The options for `name` (a host name as written in hosts or jump-host). */
export function hostOptions(config: SSHConfig, name: string, local: LocalAccount): SshHostOptions {
  const computed = config.compute(name, { ignoreCase: true, matchExec: false });
  const first = (key: string): string | undefined => {
    const value = computed[key];
    const text = Array.isArray(value) ? value[0] : value;
    return text === undefined || text === '' ? undefined : text;
  };
  const all = (key: string): string[] => {
    const value = computed[key];
    return value === undefined ? [] : ([] as string[]).concat(value);
  };
  const hostName = first('hostname');
  const tokens: Record<string, string> = { '%': '%', h: hostName ? expandHostName(hostName, name) : name, n: name, d: local.home, u: local.user };
  const path = (option: string) => (value: string) => expandPath(value, option, tokens, local.home);
  const files = (option: string, key: string) => all(key).filter((value) => value.toLowerCase() !== 'none').map(path(option));
  return {
    hostName: hostName === undefined ? undefined : expandHostName(hostName, name),
    user: first('user'),
    port: first('port'),
    identityFiles: files('IdentityFile', 'identityfile'),
    proxyJump: first('proxyjump'),
    userKnownHostsFiles: files('UserKnownHostsFile', 'userknownhostsfile'),
  };
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
  const expected = 'an OpenSSH client config file, such as ~/.ssh/config';
  const text = readOrRefuse(file, expected);
  let config: SSHConfig;
  try {
    config = SSHConfig.parse(text);
  } catch (error) {
    throw new InputError('ssh-config', `${file} cannot be parsed (${(error as Error).message})`, expected);
  }
  return {
    file,
    lookup(name) {
      const options = hostOptions(config, name, local);
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
