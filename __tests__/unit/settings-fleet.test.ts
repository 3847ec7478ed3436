/**
 * The fleet inputs of parseSettings: host lists, jump-host, max-parallel,
 * activate and verify (issue 5).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type HostTarget, parseHosts } from '../../src/core/host-targets.js';
import type { RunContext } from '../../src/core/inputs.js';
import { parseSettings } from '../../src/core/settings.js';
import { type GeneratedKey, KeyDir } from './keygen.js';
import { inputErrorOf } from './input-error.js';

const TAG_CONTEXT: RunContext = { refType: 'tag', refName: 'v3.0' };

const keys = new KeyDir();
let client: GeneratedKey;
let hostKey: GeneratedKey;
let bastionKey: GeneratedKey;

beforeAll(() => {
  client = keys.generate('client');
  hostKey = keys.generate('host');
  bastionKey = keys.generate('bastion');
});
afterAll(() => keys.cleanup());

/** A valid ssh deploy whose host keys are not checked (so host lists can vary freely). */
function unverified(changes: Record<string, string> = {}): Record<string, string> {
  return {
    hosts: 'deploy@web1',
    'private-key': client.privateKey,
    'insecure-ignore-host-key': 'true',
    'deploy-path': '/srv/app',
    ...changes,
  };
}

const ssh = (label: string, host: string, port: number, user: string): HostTarget => ({ kind: 'ssh', label, host, port, user });

describe('hosts: lists', () => {
  test.each([
    ['comma separated', 'web1,web2,web3'],
    ['comma and space separated', 'web1, web2 , web3'],
    ['newline separated', 'web1\nweb2\nweb3\n'],
    ['CRLF lines', 'web1\r\nweb2\r\nweb3'],
    ['mixed, with empty entries', '\n web1,\n\nweb2 ,, web3 ,\n'],
  ])('%s: three targets, in order', (_what, hosts) => {
    const settings = parseSettings(unverified({ hosts, user: 'deploy' }), TAG_CONTEXT);
    expect(settings.targets).toEqual([ssh('deploy@web1', 'web1', 22, 'deploy'), ssh('deploy@web2', 'web2', 22, 'deploy'), ssh('deploy@web3', 'web3', 22, 'deploy')]);
  });

  test('per-entry user and port override the user and port inputs, each on its own', () => {
    const settings = parseSettings(unverified({ hosts: 'web1, ops@web2, web3:2200, root@web4:22, web5.example.com', user: 'deploy', port: '2222' }), TAG_CONTEXT);
    expect(settings.targets).toEqual([
      ssh('deploy@web1:2222', 'web1', 2222, 'deploy'),
      ssh('ops@web2:2222', 'web2', 2222, 'ops'),
      ssh('deploy@web3:2200', 'web3', 2200, 'deploy'),
      ssh('root@web4', 'web4', 22, 'root'),
      ssh('deploy@web5.example.com:2222', 'web5.example.com', 2222, 'deploy'),
    ]);
  });

  test('IPv6 addresses in brackets, with and without a port; the label keeps the brackets', () => {
    const settings = parseSettings(unverified({ hosts: '[::1], ops@[fe80::1:2]:2200\n[2001:db8::7]', user: 'deploy' }), TAG_CONTEXT);
    expect(settings.targets).toEqual([
      ssh('deploy@[::1]', '::1', 22, 'deploy'),
      ssh('ops@[fe80::1:2]:2200', 'fe80::1:2', 2200, 'ops'),
      ssh('deploy@[2001:db8::7]', '2001:db8::7', 22, 'deploy'),
    ]);
  });

  test('an IPv4-mapped IPv6 address in brackets', () => {
    expect(parseHosts('[::ffff:10.0.0.1]:2222', 'deploy', 22)).toEqual([ssh('deploy@[::ffff:10.0.0.1]:2222', '::ffff:10.0.0.1', 2222, 'deploy')]);
  });

  test('the same host on two ports is two hosts', () => {
    expect(parseHosts('web1:2201, web1:2202', 'deploy', 22).map((target) => target.label)).toEqual(['deploy@web1:2201', 'deploy@web1:2202']);
  });

  test('256 hosts are accepted', () => {
    const hosts = Array.from({ length: 256 }, (_, index) => `web${index + 1}`).join(',');
    const settings = parseSettings(unverified({ hosts, user: 'deploy' }), TAG_CONTEXT);
    expect(settings.targets).toHaveLength(256);
    expect(settings.targets[255]).toEqual(ssh('deploy@web256', 'web256', 22, 'deploy'));
  });

  test('local alone is one local target', () => {
    expect(parseHosts(' local ', '', 22)).toEqual([{ kind: 'local', label: 'local' }]);
    expect(parseHosts('local,\n', '', 22)).toEqual([{ kind: 'local', label: 'local' }]);
  });

  test.each([
    ['the same entry twice', 'deploy@web1, deploy@web1', "hosts: 'deploy@web1' is given twice; expected each host once"],
    ['the same host in another case', 'web1.example.com\nWEB1.Example.COM', "hosts: 'deploy@WEB1.Example.COM' is given twice; expected each host once"],
    ['the same host with the default port written out', 'web1, web1:22', "hosts: 'deploy@web1' is given twice; expected each host once"],
    ['the same host and port with another user', 'deploy@web1:2200, ops@web1:2200', "hosts: 'ops@web1:2200' is given twice; expected each host once"],
    ['the same port given by the port input and by the entry', 'web1, web1:2222', "hosts: 'deploy@web1:2222' is given twice; expected each host once"],
    ['an IPv6 address in another case', '[fe80::a], [FE80::A]', "hosts: 'deploy@[FE80::A]' is given twice; expected each host once"],
    ['the third entry repeats the first', 'web1, web2, web1', "hosts: 'deploy@web1' is given twice; expected each host once"],
  ])('duplicates are refused: %s', (_what, hosts, message) => {
    const port = hosts.includes('web1:2222') ? '2222' : '';
    const error = inputErrorOf(() => parseSettings(unverified({ hosts, user: 'deploy', port }), TAG_CONTEXT));
    expect(error.input).toBe('hosts');
    expect(error.message).toBe(message);
  });

  // The duplicate check compares the text lowercased, not the address: two
  // spellings of one IPv6 address are taken as two hosts, and the run then
  // deadlocks on its own deploy lock until lock-timeout.
  test('duplicates are refused: one IPv6 address written two ways', () => {
    const error = inputErrorOf(() => parseSettings(unverified({ hosts: '[::1], [0:0:0:0:0:0:0:1]', user: 'deploy' }), TAG_CONTEXT));
    expect(error.input).toBe('hosts');
  });

  test.each([
    ['local first', 'local, web1'],
    ['local last', 'web1\nlocal'],
    ['local twice', 'local, local'],
  ])("'local' with other entries is refused: %s", (_what, hosts) => {
    const error = inputErrorOf(() => parseSettings(unverified({ hosts, user: 'deploy' }), TAG_CONTEXT));
    expect(error.input).toBe('hosts');
    expect(error.message).toBe("hosts: 'local' is given together with other hosts; expected 'local' alone, or SSH hosts only");
  });

  test('257 hosts are refused before any entry is looked at', () => {
    const hosts = [...Array.from({ length: 256 }, (_, index) => `web${index + 1}`), 'not a host!'].join('\n');
    const error = inputErrorOf(() => parseSettings(unverified({ hosts, user: 'deploy' }), TAG_CONTEXT));
    expect(error.input).toBe('hosts');
    expect(error.message).toBe('hosts: 257 entries given; expected at most 256 hosts per step (use a matrix)');
  });

  test.each([
    ['IPv6 without brackets', '::1'],
    ['IPv6 without brackets, with a user', 'deploy@fe80::1'],
    ['brackets around nothing', '[]'],
    ['brackets around a colon-free name', '[web1]'],
    ['brackets around garbage', '[::1;id]'],
    ['an unclosed bracket', '[::1:22'],
    ['text after the closing bracket', '[::1]x'],
    ['one bad entry in a list', 'web1, web 2, web3'],
    ['a bad port in the second entry', 'web1, web2:99999'],
  ])('a malformed entry is refused naming hosts: %s', (_what, hosts) => {
    const error = inputErrorOf(() => parseSettings(unverified({ hosts, user: 'deploy' }), TAG_CONTEXT));
    expect(error.input).toBe('hosts');
    expect(error.message).toMatch(/^hosts: .*; expected /);
  });

  test('every ssh host of the list needs a known_hosts line: the message names the one missing', () => {
    const known = `web1 ssh-ed25519 ${hostKey.blob}\n[web3]:2200 ssh-ed25519 ${hostKey.blob}\n`;
    const raw = { hosts: 'web1, web2, web3:2200', user: 'deploy', 'private-key': client.privateKey, 'known-hosts': known, 'deploy-path': '/srv/app' };
    const error = inputErrorOf(() => parseSettings(raw, TAG_CONTEXT));
    expect(error.message).toBe(
      "known-hosts: no line names web2; expected known_hosts lines from 'ssh-keyscan -p 22 web2' (checked against the server), or host-fingerprint",
    );
    const settings = parseSettings({ ...raw, 'known-hosts': `${known}web2 ssh-ed25519 ${hostKey.blob}\n` }, TAG_CONTEXT);
    expect(settings.targets.map((target) => target.label)).toEqual(['deploy@web1', 'deploy@web2', 'deploy@web3:2200']);
  });
});

describe('jump-host', () => {
  /** Hosts and bastion with known_hosts lines for both. */
  function verified(changes: Record<string, string> = {}): Record<string, string> {
    return {
      hosts: 'deploy@10.0.0.5',
      'jump-host': 'jump@bastion.example.com:2200',
      'private-key': client.privateKey,
      'known-hosts': `10.0.0.5 ssh-ed25519 ${hostKey.blob}\n[bastion.example.com]:2200 ssh-ed25519 ${bastionKey.blob}\n`,
      'deploy-path': '/srv/app',
      ...changes,
    };
  }

  test('none by default', () => {
    expect(parseSettings(unverified(), TAG_CONTEXT).jumpHost).toBeNull();
    expect(parseSettings(unverified({ 'jump-host': '  \n' }), TAG_CONTEXT).jumpHost).toBeNull();
  });

  test('a full entry with its own user and port', () => {
    const settings = parseSettings(verified(), TAG_CONTEXT);
    expect(settings.jumpHost).toEqual(ssh('jump@bastion.example.com:2200', 'bastion.example.com', 2200, 'jump'));
    // The hosts themselves are unchanged by it.
    expect(settings.targets).toEqual([ssh('deploy@10.0.0.5', '10.0.0.5', 22, 'deploy')]);
  });

  test.each([
    ['bastion', 'deploy', '', ssh('deploy@bastion', 'bastion', 22, 'deploy')],
    ['bastion', 'deploy', '2222', ssh('deploy@bastion:2222', 'bastion', 2222, 'deploy')],
    ['ops@bastion', 'deploy', '2222', ssh('ops@bastion:2222', 'bastion', 2222, 'ops')],
    ['bastion:2200', 'deploy', '2222', ssh('deploy@bastion:2200', 'bastion', 2200, 'deploy')],
    ['ops@[2001:db8::1]:2200', '', '', ssh('ops@[2001:db8::1]:2200', '2001:db8::1', 2200, 'ops')],
    [' ops@bastion \n', '', '', ssh('ops@bastion', 'bastion', 22, 'ops')],
  ])('jump-host %j (user %j, port %j) is parsed like a host entry', (jump, user, port, expected) => {
    const settings = parseSettings(unverified({ hosts: 'deploy@web1', 'jump-host': jump, user, port }), TAG_CONTEXT);
    expect(settings.jumpHost).toEqual(expected);
  });

  test.each([
    ['a space', 'bastion host'],
    ['two entries', 'bastion1,bastion2'],
    ['two entries on lines', 'bastion1\nbastion2'],
    ['port 0', 'ops@bastion:0'],
    ['port 65536', 'ops@bastion:65536'],
    ['a non-numeric port', 'ops@bastion:ssh'],
    ['an empty port', 'ops@bastion:'],
    ["'user@' only", 'ops@'],
    ['a bad user', 'root;id@bastion'],
    ['an ssh option', '-oProxyCommand=id'],
    ['IPv6 without brackets', 'ops@fe80::1'],
    ['shell text', 'ops@$(id)'],
  ])('%s is refused, and the error names jump-host', (_what, jump) => {
    const error = inputErrorOf(() => parseSettings(unverified({ 'jump-host': jump }), TAG_CONTEXT));
    expect(error.input).toBe('jump-host');
    expect(error.message).toMatch(/^jump-host: .*; expected /);
  });

  test('without any user the error names jump-host, not hosts', () => {
    const error = inputErrorOf(() => parseSettings(unverified({ hosts: 'deploy@web1', 'jump-host': 'bastion', user: '' }), TAG_CONTEXT));
    expect(error.message).toBe("jump-host: 'bastion' names no user and the 'user' input is empty; expected 'user@bastion' or a 'user' input");
  });

  test('an invalid port is reported as jump-host', () => {
    const error = inputErrorOf(() => parseSettings(unverified({ 'jump-host': 'ops@bastion:0' }), TAG_CONTEXT));
    expect(error.message).toBe("jump-host: '0' is not a port; expected a whole number from 1 to 65535");
  });

  test("'local' is not a bastion", () => {
    const error = inputErrorOf(() => parseSettings(unverified({ 'jump-host': 'local' }), TAG_CONTEXT));
    expect(error.input).toBe('jump-host');
    expect(error.message).toBe("jump-host: 'local' is not a bastion; expected '[user@]host[:port]' of an SSH server that can reach the hosts");
  });

  test('its host key must be verifiable: known-hosts without a line for the bastion is refused, naming known-hosts and the bastion', () => {
    const error = inputErrorOf(() => parseSettings(verified({ 'known-hosts': `10.0.0.5 ssh-ed25519 ${hostKey.blob}\n` }), TAG_CONTEXT));
    expect(error.input).toBe('known-hosts');
    expect(error.message).toBe(
      "known-hosts: no line names [bastion.example.com]:2200; expected known_hosts lines from 'ssh-keyscan -p 2200 bastion.example.com' (checked against the server), or host-fingerprint",
    );
  });

  test('a line for the bastion on another port does not count', () => {
    const error = inputErrorOf(() =>
      parseSettings(verified({ 'known-hosts': `10.0.0.5 ssh-ed25519 ${hostKey.blob}\nbastion.example.com ssh-ed25519 ${bastionKey.blob}\n` }), TAG_CONTEXT),
    );
    expect(error.message).toContain('no line names [bastion.example.com]:2200');
  });

  test('a revoked line for the bastion does not count', () => {
    const known = `10.0.0.5 ssh-ed25519 ${hostKey.blob}\n@revoked [bastion.example.com]:2200 ssh-ed25519 ${bastionKey.blob}\n`;
    expect(inputErrorOf(() => parseSettings(verified({ 'known-hosts': known }), TAG_CONTEXT)).input).toBe('known-hosts');
  });

  test('no known-hosts at all: refused naming known-hosts', () => {
    const error = inputErrorOf(() => parseSettings(verified({ 'known-hosts': '' }), TAG_CONTEXT));
    expect(error.input).toBe('known-hosts');
    expect(error.message).toMatch(/^known-hosts: no way to verify the host key of /);
  });

  test("a bastion in front of hosts 'local' is refused: local needs no SSH", () => {
    const error = inputErrorOf(() => parseSettings({ hosts: 'local', 'jump-host': 'ops@bastion', 'deploy-path': '/srv/app' }, TAG_CONTEXT));
    expect(error.input).toBe('jump-host');
    expect(error.message).toBe("jump-host: is set, but hosts is 'local', which needs no SSH; expected no jump-host with 'local', or SSH hosts");
  });

  test("jump-host with hosts 'local' is refused even with a key and host-key settings that would cover the bastion", () => {
    const error = inputErrorOf(() => parseSettings({ ...unverified({ hosts: 'local' }), 'jump-host': 'ops@bastion' }, TAG_CONTEXT));
    expect(error.input).toBe('jump-host');
  });

  test("hosts 'local' without jump-host is still accepted, with no bastion", () => {
    expect(parseSettings({ hosts: 'local', 'deploy-path': '/srv/app' }, TAG_CONTEXT).jumpHost).toBeNull();
  });

  test('host-fingerprint bound to the host and to the bastion, or insecure-ignore-host-key, cover the bastion', () => {
    const [a, b] = [`SHA256:${'A'.repeat(43)}`, `SHA256:${'B'.repeat(43)}`];
    const settings = parseSettings(verified({ 'known-hosts': '', 'host-fingerprint': `10.0.0.5=${a}, [bastion.example.com]:2200=${b}` }), TAG_CONTEXT);
    expect(settings.jumpHost?.label).toBe('jump@bastion.example.com:2200');
    expect(settings.hostFingerprints).toEqual([
      { host: '10.0.0.5', port: 22, fingerprint: a },
      { host: 'bastion.example.com', port: 2200, fingerprint: b },
    ]);
    expect(parseSettings(verified({ 'known-hosts': '', 'insecure-ignore-host-key': 'true' }), TAG_CONTEXT).jumpHost?.label).toBe('jump@bastion.example.com:2200');
  });

  test('the bastion needs the private key like the hosts', () => {
    const error = inputErrorOf(() => parseSettings(verified({ 'private-key': '' }), TAG_CONTEXT));
    expect(error.message).toBe(
      'private-key: not given, and there is no ssh-agent (SSH_AUTH_SOCK is not set); expected the text of an OpenSSH or PEM private key (usually from a secret), or an ssh-agent holding the key with its socket in SSH_AUTH_SOCK (as an ssh-agent step before this one sets it)',
    );
  });
});

describe('max-parallel', () => {
  test.each([
    ['', 16],
    ['1', 1],
    ['4', 4],
    [' 8 \n', 8],
    ['016', 16],
    ['256', 256],
  ])('%j means %j hosts at once', (value, expected) => {
    expect(parseSettings(unverified({ 'max-parallel': value }), TAG_CONTEXT).maxParallel).toBe(expected);
  });

  test.each(['0', '257', '1000', 'x', '1.5', '-1', '+4', '1e2', '4 hosts', '0x10', '99999'])('%j is refused', (value) => {
    const error = inputErrorOf(() => parseSettings(unverified({ 'max-parallel': value }), TAG_CONTEXT));
    expect(error.input).toBe('max-parallel');
    expect(error.message).toMatch(/^max-parallel: '.*' is not a number of hosts worked on at once; expected a whole number from 1 to 256$/);
  });

  test('the message quotes the value', () => {
    expect(inputErrorOf(() => parseSettings(unverified({ 'max-parallel': '257' }), TAG_CONTEXT)).message).toBe(
      "max-parallel: '257' is not a number of hosts worked on at once; expected a whole number from 1 to 256",
    );
  });

  test('the value is independent of the number of hosts', () => {
    expect(parseSettings(unverified({ hosts: 'web1, web2', user: 'deploy', 'max-parallel': '200' }), TAG_CONTEXT).maxParallel).toBe(200);
  });
});

describe.each(['activate', 'verify'] as const)('%s', (input) => {
  const key = input;

  test('none by default', () => {
    expect(parseSettings(unverified(), TAG_CONTEXT)[key]).toBe('');
  });

  test('kept exactly as given, multi-line, quotes and all', () => {
    const script = '  sudo systemctl reload app\ncurl -fsS "http://localhost:8080/health?x=$TAGFLIP_RELEASE" \n';
    expect(parseSettings(unverified({ [input]: script }), TAG_CONTEXT)[key]).toBe(script);
  });

  test.each([' ', '\n\n', ' \t\r\n '])('whitespace only (%j) means none', (value) => {
    expect(parseSettings(unverified({ [input]: value }), TAG_CONTEXT)[key]).toBe('');
  });

  test('a NUL byte is refused', () => {
    const error = inputErrorOf(() => parseSettings(unverified({ [input]: 'systemctl reload app\0' }), TAG_CONTEXT));
    expect(error.input).toBe(input);
    expect(error.message).toBe(`${input}: contains a NUL byte; expected shell commands as text`);
  });

  test('65536 characters are accepted, 65537 refused', () => {
    expect(parseSettings(unverified({ [input]: 'x'.repeat(65536) }), TAG_CONTEXT)[key]).toHaveLength(65536);
    const error = inputErrorOf(() => parseSettings(unverified({ [input]: 'x'.repeat(65537) }), TAG_CONTEXT));
    expect(error.input).toBe(input);
    expect(error.message).toBe(`${input}: is 65537 characters long; expected at most 65536 characters; put longer scripts in the repository`);
  });

  test('the other hook is not affected', () => {
    const settings = parseSettings(unverified({ [input]: 'true' }), TAG_CONTEXT);
    expect(settings[input === 'activate' ? 'verify' : 'activate']).toBe('');
  });
});

describe('host-fingerprint: bound to its host', () => {
  const [a, b, c] = ['A', 'B', 'C'].map((letter) => `SHA256:${letter.repeat(43)}`);
  const fleet = (fingerprints: string, changes: Record<string, string> = {}) =>
    parseSettings({ hosts: 'deploy@web1.example.com, deploy@web2.example.com:2222', 'private-key': client.privateKey, 'deploy-path': '/srv/app', 'host-fingerprint': fingerprints, ...changes }, TAG_CONTEXT);

  test('each fingerprint is bound to the host it names: by name (any case), name:port or [name]:port', () => {
    expect(fleet(`WEB1.example.com=${a}\nweb2.example.com:2222=${b}, [web2.example.com]:2222=${c}`).hostFingerprints).toEqual([
      { host: 'web1.example.com', port: 22, fingerprint: a },
      { host: 'web2.example.com', port: 2222, fingerprint: b },
      { host: 'web2.example.com', port: 2222, fingerprint: c },
    ]);
  });

  test('a name without a port binds to that host on the port it is reached on', () => {
    expect(fleet(`web1.example.com=${a}, web2.example.com=${b}`).hostFingerprints).toEqual([
      { host: 'web1.example.com', port: 22, fingerprint: a },
      { host: 'web2.example.com', port: 2222, fingerprint: b },
    ]);
  });

  test('IPv6 hosts are named in brackets, in any spelling', () => {
    const settings = parseSettings(
      { hosts: 'deploy@[2001:db8::1], deploy@[2001:db8::2]:2200', 'private-key': client.privateKey, 'deploy-path': '/srv/app', 'host-fingerprint': `[2001:DB8:0::1]=${a}, [2001:db8::2]:2200=${b}` },
      TAG_CONTEXT,
    );
    expect(settings.hostFingerprints).toEqual([
      { host: '2001:db8::1', port: 22, fingerprint: a },
      { host: '2001:db8::2', port: 2200, fingerprint: b },
    ]);
  });

  test('a bare fingerprint with several hosts is refused: it would vouch for any of them', () => {
    const error = inputErrorOf(() => fleet(`web1.example.com=${a}, ${b}`));
    expect(error.input).toBe('host-fingerprint');
    expect(error.message).toContain(`'${b}' names no host, and this step connects to 2 SSH hosts (deploy@web1.example.com, deploy@web2.example.com:2222): it would be accepted from any of them`);
    expect(error.message).toContain(`expected one 'HOST=SHA256:…' per host, e.g. 'web1.example.com=${b}'`);
  });

  test('a bare fingerprint with one host and a jump host is refused too', () => {
    const error = inputErrorOf(() =>
      parseSettings({ hosts: 'deploy@10.0.0.5', 'jump-host': 'jump@bastion:2200', 'private-key': client.privateKey, 'deploy-path': '/srv/app', 'host-fingerprint': a }, TAG_CONTEXT),
    );
    expect(error.input).toBe('host-fingerprint');
    expect(error.message).toContain('connects to 2 SSH hosts (deploy@10.0.0.5, jump@bastion:2200)');
  });

  test.each([
    ['a host that is not in hosts', `web3.example.com=${a}`, "'web3.example.com' names no SSH host of hosts or jump-host (deploy@web1.example.com, deploy@web2.example.com:2222)"],
    ['a port the host is not reached on', `web1.example.com:2222=${a}`, "'web1.example.com:2222' names no SSH host"],
    ['a bad port', `web1.example.com:0=${a}`, "'0' is not a port"],
    ['an IPv6 address without brackets', `2001:db8::1=${a}`, "'2001:db8::1' is not a host name (an IPv6 address goes in brackets)"],
    ['a bad fingerprint after the name', 'web1.example.com=SHA256:short', "'SHA256:short' is not an OpenSSH SHA256 fingerprint"],
  ])('%s is refused, naming the input', (_what, value, problem) => {
    const error = inputErrorOf(() => fleet(value));
    expect(error.input).toBe('host-fingerprint');
    expect(error.message).toContain(problem);
  });

  test('a name matching hosts on two ports must say which', () => {
    const error = inputErrorOf(() =>
      parseSettings({ hosts: 'deploy@127.0.0.1:2201, deploy@127.0.0.1:2202', 'private-key': client.privateKey, 'deploy-path': '/srv/app', 'host-fingerprint': `127.0.0.1=${a}` }, TAG_CONTEXT),
    );
    expect(error.message).toBe(`host-fingerprint: '127.0.0.1' names 2 hosts, on ports 2201, 2202; expected the port too, e.g. '127.0.0.1:2201=SHA256:…'`);
  });

  test('a host without a fingerprint needs its known-hosts line; the error names that host', () => {
    const error = inputErrorOf(() => fleet(`web1.example.com=${a}`));
    expect(error.message).toBe(
      "host-fingerprint: has no fingerprint for deploy@web2.example.com:2222, and known-hosts no line for it; expected '[web2.example.com]:2222=SHA256:…' too, or its known_hosts line",
    );
    const mixed = fleet(`web1.example.com=${a}`, { 'known-hosts': `[web2.example.com]:2222 ssh-ed25519 ${hostKey.blob}` });
    expect(mixed.hostFingerprints).toEqual([{ host: 'web1.example.com', port: 22, fingerprint: a }]);
    expect(mixed.knownHosts).toHaveLength(1);
  });
});
