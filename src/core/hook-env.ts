/** The variables every hook is given: the env and secret-env inputs. */
import { InputError } from './errors.js';
import { CONTROL } from './inputs.js';

export interface EnvVar {
  name: string;
  value: string;
  /** From secret-env: shown as *** wherever tagflip prints it. */
  secret?: boolean;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Variables that change how sh parses or runs the scripts themselves. */
const SHELL_SPECIAL_NAMES = new Set(['IFS', 'ENV', 'BASH_ENV', 'CDPATH', 'SHELLOPTS', 'BASHOPTS', 'PS1', 'PS2', 'PS4', 'OPTIND', 'OPTARG', 'PPID', 'LINENO', 'PWD', 'OLDPWD', 'HOME']);

/**
 * env and secret-env: the same lines, given to every hook the same way. Only
 * secret-env's values are secrets: the front ends mask them in everything they
 * print, and dry runs show them as ***. env's values are printed as they are,
 * so that `1` or `production` does not turn into *** all over the job log.
 */
export function parseHookEnv(envText: string, secretText: string): EnvVar[] {
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
