/**
 * ssh-agent and ssh config, as parseSettings applies them (issue 13): the
 * mapping of an ssh_config file to the options tagflip honours, and which of
 * the inputs, the config, the agent and the CLI's defaults wins.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sshSetup } from '../../src/cli/cli.js';
import type { RunContext } from '../../src/core/inputs.js';
import { parseSettings } from '../../src/core/settings.js';
import { hostOptions, parseSshConfig, readSshConfig } from '../../src/remote/ssh-config.js';
import { type GeneratedKey, KeyDir } from './keygen.js';
import { inputErrorOf } from './input-error.js';

const LOCAL = { home: '/home/op', user: 'op' };
const options = (text: string, name: string, user?: string) => hostOptions(parseSshConfig(text, 'config'), name, LOCAL, user);

describe('hostOptions: what an ssh config says about a name', () => {
  const config = `
Host web1
  HostName 10.0.0.11
  Port 2201
  user deploy
  IdentityFile ~/.ssh/web_key
  IdentityFile /keys/%u/%h-%n
  ProxyJump ops@bastion:2222
  UserKnownHostsFile ~/.ssh/known_fleet /etc/ssh/fleet_hosts
  ForwardAgent yes

Host web*
  HostName %h.example.com
  Port 2299
  User other

Host *
  User fallback
  IdentityFile ~/.ssh/id_ed25519
`;

  test('the six options of a Host block, ~ and tokens expanded; other options ignored', () => {
    expect(options(config, 'web1')).toEqual({
      hostName: '10.0.0.11',
      user: 'deploy',
      port: '2201',
      identityFiles: ['/home/op/.ssh/web_key', '/keys/op/10.0.0.11-web1', '/home/op/.ssh/id_ed25519'],
      proxyJump: 'ops@bastion:2222',
      userKnownHostsFiles: ['/home/op/.ssh/known_fleet', '/etc/ssh/fleet_hosts'],
    });
  });

  test('the first value found wins, as in ssh; %h in HostName is the name given', () => {
    expect(options(config, 'web2')).toEqual({
      hostName: 'web2.example.com',
      user: 'other',
      port: '2299',
      identityFiles: ['/home/op/.ssh/id_ed25519'],
      proxyJump: undefined,
      userKnownHostsFiles: [],
    });
  });

  test('a name no block names gets only the Host * options', () => {
    expect(options(config, 'db1')).toEqual({ hostName: undefined, user: 'fallback', port: undefined, identityFiles: ['/home/op/.ssh/id_ed25519'], proxyJump: undefined, userKnownHostsFiles: [] });
  });

  test('IdentityFile none and UserKnownHostsFile none name no file', () => {
    expect(options('Host a\n  IdentityFile none\n  UserKnownHostsFile none\n', 'a')).toMatchObject({ identityFiles: [], userKnownHostsFiles: [] });
  });

  test('option names are case-insensitive, as in ssh', () => {
    expect(options('host a\n  HOSTNAME 10.1.1.1\n  port 2\n', 'a')).toMatchObject({ hostName: '10.1.1.1', port: '2' });
  });

  test('Match exec runs nothing: where it would decide, the config is refused; where another criterion fails, the block just does not apply', () => {
    const marker = join(keys.dir, 'exec-ran');
    const config = `Match host other exec "touch ${marker}"\n  Port 8\nMatch exec "touch ${marker}"\n  Port 9\n`;
    expect(options(config.split('Match exec')[0], 'a').port).toBeUndefined();
    expect(inputErrorOf(() => options(config, 'a')).message).toBe(
      `ssh-config: Match exec touch ${marker} (line 3 of config) applies to a unless its command, which tagflip does not run: it runs nothing while it reads the config, says otherwise; expected a Match on host, originalhost, user, localuser, all, canonical or final, or a Host block, for the hosts tagflip deploys to`,
    );
    expect(inputErrorOf(() => options('Match !exec true\n  Port 9\n', 'a')).input).toBe('ssh-config');
    expect(inputErrorOf(() => options('Match localnetwork 10.0.0.0/8\n  Port 9\n', 'a')).message).toContain('unless localnetwork 10.0.0.0/8, which tagflip cannot evaluate');
    expect(existsSync(marker)).toBe(false);
  });

  test('a ProxyCommand that applies is refused (it is a command); ProxyCommand none takes the place of a later ProxyJump, as in ssh', () => {
    expect(inputErrorOf(() => options('Host a\n  ProxyCommand ssh -W %h:%p gate\n', 'a')).message).toBe(
      'ssh-config: the ProxyCommand of a in config (ssh -W %h:%p gate) is a command, and tagflip runs none from ssh-config; expected a ProxyJump for a instead (ssh -W %h:%p bastion is ProxyJump bastion), or ProxyCommand none in a block before',
    );
    expect(options('Host a\n  ProxyCommand none\nHost *\n  ProxyJump gate\n  ProxyCommand nc %h %p\n', 'a').proxyJump).toBeUndefined();
    expect(options('Host b\n  ProxyCommand nc %h %p\nHost *\n  ProxyJump gate\n', 'a').proxyJump).toBe('gate');
  });

  test('`?` is exactly one character, `*` any run; Host patterns keep their case, Match host lower-cases', () => {
    const config = 'Host stage?\n  HostName one\nMatch host WEB*\n  Port 2\nHost *\n  HostName other\n';
    expect(options(config, 'stage').hostName).toBe('other');
    expect(options(config, 'stage1').hostName).toBe('one');
    expect(options(config, 'stage12').hostName).toBe('other');
    expect(options(config, 'STAGE1').hostName).toBe('other');
    expect(options(config, 'web7')).toMatchObject({ hostName: 'other', port: '2' });
  });

  test('Match user sees the user given with the name, before the config\'s User', () => {
    const config = 'Match user deploy\n  Port 7\nHost *\n  User other\n';
    expect(options(config, 'a', 'deploy')).toMatchObject({ port: '7', user: undefined });
    expect(options(config, 'a')).toMatchObject({ port: undefined, user: 'other' });
  });
  test('a token tagflip cannot expand is refused, naming ssh-config and the option', () => {
    expect(inputErrorOf(() => options('Host a\n  IdentityFile ~/.ssh/%C\n', 'a')).message).toBe(
      "ssh-config: IdentityFile '~/.ssh/%C' uses %C, which tagflip does not expand; expected a path, with ~ and the tokens %d %u %h %n %% only",
    );
    expect(inputErrorOf(() => options('Host a\n  HostName %p.example\n', 'a')).input).toBe('ssh-config');
  });
});

const keys = new KeyDir();
let client: GeneratedKey;
let web1Key: GeneratedKey;
let encrypted: GeneratedKey;
let hostKey: GeneratedKey;
const TAG: RunContext = { refType: 'tag', refName: 'v1' };

beforeAll(() => {
  client = keys.generate('client');
  web1Key = keys.generate('web1');
  encrypted = keys.generate('encrypted', { passphrase: 'secretpass' });
  hostKey = keys.generate('host');
});
afterAll(() => keys.cleanup());

/** A config file in the key dir; returns the context that reads it. */
function withConfig(text: string, extra: RunContext = {}): RunContext {
  const file = join(keys.dir, `config-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text);
  return { ...TAG, localUser: 'op', ...extra, sshConfig: readSshConfig(file, { home: keys.dir, user: 'op' }) };
}

const KEY_ERROR =
  'private-key: not given, and there is no ssh-agent (SSH_AUTH_SOCK is not set); expected the text of an OpenSSH or PEM private key (usually from a secret), or an ssh-agent holding the key with its socket in SSH_AUTH_SOCK (as an ssh-agent step before this one sets it)';

describe('credentials: private-key, else the ssh-agent, else the CLI default key', () => {
  const inputs = (changes: Record<string, string> = {}) => ({ hosts: 'deploy@web1', 'insecure-ignore-host-key': 'true', 'deploy-path': '/srv/app', ...changes });

  test('no private-key and SSH_AUTH_SOCK: the agent', () => {
    expect(parseSettings(inputs(), { ...TAG, sshAgent: '/tmp/agent.sock' }).auth).toEqual({ kind: 'agent', socket: '/tmp/agent.sock' });
  });

  test('private-key wins over the agent', () => {
    expect(parseSettings(inputs({ 'private-key': client.privateKey }), { ...TAG, sshAgent: '/tmp/agent.sock' }).auth).toEqual({
      kind: 'key',
      privateKey: client.privateKey,
      passphrase: '',
      from: 'the private-key input',
    });
  });

  test('the agent comes before the default key; the default key without an agent', () => {
    const defaultKey = { file: '/home/op/.ssh/id_ed25519', text: client.privateKey };
    expect(parseSettings(inputs(), { ...TAG, sshAgent: '/tmp/a', defaultKey }).auth).toEqual({ kind: 'agent', socket: '/tmp/a' });
    expect(parseSettings(inputs(), { ...TAG, defaultKey }).auth).toMatchObject({ kind: 'key', from: 'the key /home/op/.ssh/id_ed25519' });
  });

  test('an encrypted default key without a passphrase names the file', () => {
    const defaultKey = { file: '/home/op/.ssh/id_ed25519', text: encrypted.privateKey };
    expect(inputErrorOf(() => parseSettings(inputs(), { ...TAG, defaultKey })).message).toBe(
      'passphrase: not given, but /home/op/.ssh/id_ed25519 is encrypted; expected its passphrase in the passphrase input, or the key in a running ssh-agent instead: eval "$(ssh-agent)"; ssh-add /home/op/.ssh/id_ed25519 (then run again in that shell, with SSH_AUTH_SOCK set)',
    );
  });

  test('neither a key nor an agent: the error names both ways', () => {
    expect(inputErrorOf(() => parseSettings(inputs(), TAG)).message).toBe(KEY_ERROR);
  });

  test("'local' needs neither", () => {
    expect(parseSettings({ hosts: 'local', 'deploy-path': '/srv/app' }, TAG).auth).toBeNull();
  });
});

describe('hosts through ssh-config', () => {
  const knownLine = (host: string, port: number) => `${port === 22 ? host : `[${host}]:${port}`} ${hostKey.keyType} ${hostKey.blob}\n`;
  let fleetKnownHosts: string;
  let identity: string;
  let encryptedIdentity: string;
  beforeAll(() => {
    fleetKnownHosts = join(keys.dir, 'known_fleet');
    writeFileSync(fleetKnownHosts, knownLine('10.0.0.11', 2201) + knownLine('10.0.0.99', 2222));
    identity = web1Key.path;
    encryptedIdentity = encrypted.path;
    chmodSync(identity, 0o600);
  });
  const config = () => `
Host web1
  HostName 10.0.0.11
  Port 2201
  User deploy
  IdentityFile ${identity}
  UserKnownHostsFile ${fleetKnownHosts}
Host web2
  HostName 10.0.0.12
  ProxyJump bastion
Host bastion
  HostName 10.0.0.99
  Port 2222
  User ops
Host hop
  ProxyJump bastion
Host locked
  HostName 10.0.0.13
  IdentityFile ${encryptedIdentity}
`;
  const base = { 'deploy-path': '/srv/app' };

  test('an alias connects to its HostName, Port and User, with its IdentityFile and UserKnownHostsFile; the label keeps the alias', () => {
    const settings = parseSettings({ ...base, hosts: 'web1' }, withConfig(config()));
    const [target] = settings.targets;
    expect(target).toMatchObject({ kind: 'ssh', label: 'deploy@web1:2201', host: '10.0.0.11', port: 2201, user: 'deploy' });
    expect(target.kind === 'ssh' && target.auth).toEqual({ kind: 'key', privateKey: web1Key.privateKey, passphrase: '', from: expect.stringContaining(`the key ${identity} (the IdentityFile of web1 in `) });
    expect(target.kind === 'ssh' && target.knownHosts?.entries.map((entry) => entry.patterns)).toEqual([['[10.0.0.11]:2201'], ['[10.0.0.99]:2222']]);
    // Every host has a key of its own: no run-wide credentials are needed.
    expect(settings.auth).toBeNull();
  });

  test('the entry, then the user and port inputs, win over User and Port', () => {
    const ctx = withConfig(config());
    const base = { 'deploy-path': '/srv/app', 'insecure-ignore-host-key': 'true' };
    expect(parseSettings({ ...base, hosts: 'root@web1:22' }, ctx).targets[0]).toMatchObject({ label: 'root@web1', host: '10.0.0.11', port: 22, user: 'root' });
    expect(parseSettings({ ...base, hosts: 'web1', user: 'admin', port: '2000' }, ctx).targets[0]).toMatchObject({ label: 'admin@web1:2000', port: 2000, user: 'admin' });
  });

  test('the login name and port 22 come last', () => {
    const settings = parseSettings({ ...base, hosts: 'web2', 'insecure-ignore-host-key': 'true', 'private-key': client.privateKey }, withConfig(config()));
    expect(settings.targets[0]).toMatchObject({ label: 'op@web2', host: '10.0.0.12', port: 22, user: 'op' });
  });

  test('private-key, known-hosts and jump-host, when given, replace IdentityFile, UserKnownHostsFile and ProxyJump', () => {
    const raw = { ...base, hosts: 'web1, web2', 'private-key': client.privateKey, 'known-hosts': knownLine('10.0.0.11', 2201) + knownLine('10.0.0.12', 22) + knownLine('10.0.0.5', 22), 'jump-host': 'ops@10.0.0.5' };
    const settings = parseSettings(raw, withConfig(config()));
    for (const target of settings.targets) {
      expect(target).not.toHaveProperty('auth');
      expect(target).not.toHaveProperty('knownHosts');
      expect(target).not.toHaveProperty('jump');
    }
    expect(settings.auth).toMatchObject({ from: 'the private-key input' });
  });

  test('ProxyJump is the host\'s jump host, itself resolved through the config', () => {
    const settings = parseSettings({ ...base, hosts: 'web2', 'insecure-ignore-host-key': 'true' }, withConfig(config(), { sshAgent: '/tmp/a' }));
    const [target] = settings.targets;
    expect(target.kind === 'ssh' && target.jump).toEqual({ kind: 'ssh', label: 'ops@bastion:2222', host: '10.0.0.99', port: 2222, user: 'ops' });
    expect(settings.jumpHost).toBeNull();
    expect(settings.auth).toEqual({ kind: 'agent', socket: '/tmp/a' });
  });

  test('a host with UserKnownHostsFile is checked against that file only', () => {
    const error = inputErrorOf(() => parseSettings({ ...base, hosts: 'web1:2299' }, withConfig(config())));
    expect(error.input).toBe('ssh-config');
    expect(error.message).toContain(`the UserKnownHostsFile of web1 in `);
    expect(error.message).toContain(`has no line for [10.0.0.11]:2299 (deploy@web1:2299)`);
  });

  test('an encrypted IdentityFile without a passphrase: the agent when there is one, else an error naming the file', () => {
    const insecure = { ...base, hosts: 'locked', 'insecure-ignore-host-key': 'true' };
    const viaAgent = parseSettings(insecure, withConfig(config(), { sshAgent: '/tmp/a' }));
    expect(viaAgent.targets[0]).not.toHaveProperty('auth');
    expect(viaAgent.auth).toEqual({ kind: 'agent', socket: '/tmp/a' });
    const error = inputErrorOf(() => parseSettings(insecure, withConfig(config())));
    expect(error.input).toBe('passphrase');
    expect(error.message).toContain(`not given, but ${encryptedIdentity} (the IdentityFile of locked in `);
    // Said once, then what to do (issue 22): its passphrase, or ssh-add it to a running agent.
    const onCli = inputErrorOf(() => parseSettings(insecure, withConfig(config(), { frontEnd: 'cli' }))).message;
    expect(onCli).toMatch(new RegExp(`is encrypted; expected its passphrase in --passphrase @FILE \\(or TAGFLIP_PASSPHRASE\\), or the key in a running ssh-agent instead: eval "\\$\\(ssh-agent\\)"; ssh-add ${encryptedIdentity.replace(/[.]/g, '\\.')} \\(then run again in that shell, with SSH_AUTH_SOCK set\\)$`));
    expect(onCli.split('IdentityFile of').length).toBe(2);
    const decrypted = parseSettings({ ...insecure, passphrase: 'secretpass' }, withConfig(config()));
    expect(decrypted.targets[0]).toMatchObject({ auth: { kind: 'key', privateKey: encrypted.privateKey, passphrase: 'secretpass' } });
  });

  test('one jump host only: a ProxyJump chain or list is refused', () => {
    const insecure = { ...base, 'insecure-ignore-host-key': 'true', 'private-key': client.privateKey };
    const chain = inputErrorOf(() => parseSettings({ ...insecure, hosts: 'far' }, withConfig(`${config()}Host far\n  ProxyJump hop\n`)));
    expect(chain.message).toMatch(/^ssh-config: the jump host hop in .* has a ProxyJump of its own \(bastion\); expected one jump host/);
    const list = inputErrorOf(() => parseSettings({ ...insecure, hosts: 'far' }, withConfig('Host far\n  ProxyJump a,b\n')));
    expect(list.message).toMatch(/^ssh-config: the ProxyJump of far in .* names several jump hosts \(a,b\)/);
  });

  test('a HostName or User that is not one is refused, naming ssh-config', () => {
    const insecure = { ...base, 'insecure-ignore-host-key': 'true', 'private-key': client.privateKey, hosts: 'odd' };
    expect(inputErrorOf(() => parseSettings(insecure, withConfig('Host odd\n  HostName -oProxyCommand=id\n'))).message).toMatch(/^ssh-config: the HostName '-oproxycommand=id' of odd in .* is not a host name/);
    expect(inputErrorOf(() => parseSettings(insecure, withConfig('Host odd\n  User -x\n'))).input).toBe('ssh-config');
  });

  test('a missing IdentityFile is skipped, as ssh skips it', () => {
    const settings = parseSettings({ ...base, hosts: 'gone', 'insecure-ignore-host-key': 'true' }, withConfig(`Host gone\n  IdentityFile ${join(keys.dir, 'nope')}\n`, { sshAgent: '/tmp/a' }));
    expect(settings.auth).toEqual({ kind: 'agent', socket: '/tmp/a' });
  });
});

describe('the CLI reads what an ssh user has set up', () => {
  test('~/.ssh/config when it is there, SSH_AUTH_SOCK, the default key and known_hosts', () => {
    const home = join(keys.dir, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    expect(sshSetup({}, { HOME: home, USER: 'op' })).toEqual({ sshAgent: undefined, sshConfig: undefined, defaultKey: undefined, defaultKnownHosts: undefined, localUser: 'op' });
    writeFileSync(join(home, '.ssh', 'config'), 'Host web1\n  HostName 10.0.0.11\n');
    writeFileSync(join(home, '.ssh', 'id_ecdsa'), 'key text');
    writeFileSync(join(home, '.ssh', 'known_hosts'), 'lines');
    const setup = sshSetup({}, { HOME: home, USER: 'op', SSH_AUTH_SOCK: '/tmp/a' });
    expect(setup).toMatchObject({ sshAgent: '/tmp/a', defaultKey: { file: join(home, '.ssh', 'id_ecdsa'), text: 'key text' }, defaultKnownHosts: 'lines' });
    expect(setup.sshConfig?.file).toBe(join(home, '.ssh', 'config'));
    expect(setup.sshConfig?.lookup('web1').hostName).toBe('10.0.0.11');
  });

  test('--ssh-config names another file, which must be there', () => {
    const other = join(keys.dir, 'other-config');
    writeFileSync(other, 'Host web1\n  Port 2022\n');
    expect(sshSetup({ 'ssh-config': other }, { HOME: keys.dir }).sshConfig?.lookup('web1').port).toBe('2022');
    expect(inputErrorOf(() => sshSetup({ 'ssh-config': join(keys.dir, 'missing') }, { HOME: keys.dir })).message).toMatch(/^ssh-config: cannot read .*missing \(ENOENT\)/);
    const broken = join(keys.dir, 'broken-config');
    writeFileSync(broken, 'Host a\n  IdentityFile "unterminated\n');
    expect(inputErrorOf(() => sshSetup({ 'ssh-config': broken }, { HOME: keys.dir })).message).toMatch(/^ssh-config: .*broken-config cannot be parsed \(line 2: a " quote is not closed\)/);
  });
});
