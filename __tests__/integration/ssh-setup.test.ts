/**
 * SSH the way its users already set it up (issue 13): a real ssh-agent at
 * SSH_AUTH_SOCK instead of a private-key, and host aliases of an ssh config
 * file (HostName, Port, User, IdentityFile, UserKnownHostsFile, ProxyJump),
 * against real sshd, in-process and through the bundled CLI and action.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployRootFor, gitRepoWithTags, openTempDir, runTagflip } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

let sshd: TestSshd;
let bastion: TestSshd;
let repo: string;
let root: string;
let files: string;
let keyFile: string;
let wrongKeyFile: string;
const agents: ChildProcess[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  // The bastion lets the same client key in, as one key reaches both through ProxyJump.
  bastion = await startSshd({ clientKey: { privateKey: sshd.privateKey, publicKey: sshd.publicKey } });
  repo = gitRepoWithTags(['v1', 'v2'], sshd.user);
  root = deployRootFor(sshd.user);
  files = openTempDir('tagflip-ssh-setup-');
  keyFile = join(files, 'deploy_key');
  wrongKeyFile = join(files, 'wrong_key');
  writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
  writeFileSync(wrongKeyFile, sshd.wrongPrivateKey, { mode: 0o600 });
});

afterAll(async () => {
  for (const agent of agents) agent.kill();
  await Promise.all([sshd?.stop(), bastion?.stop()]);
});

/** A real ssh-agent on a socket of its own, holding `keys` (key files). Returns the socket. */
async function startAgent(keys: string[]): Promise<string> {
  const socket = join(openTempDir('tagflip-agent-'), 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  agents.push(agent);
  // The socket exists from bind(), a moment before the agent listens: wait until it answers
  // (ssh-add -l: 0 keys listed, 1 none; 2 is no agent there yet).
  const answers = () => existsSync(socket) && spawnSync('ssh-add', ['-l'], { env: { PATH: process.env.PATH, SSH_AUTH_SOCK: socket }, stdio: 'ignore' }).status !== 2;
  for (let i = 0; i < 100 && !answers(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  for (const key of keys) execFileSync('ssh-add', ['-q', key], { env: { PATH: process.env.PATH, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
  return socket;
}

const entry = () => `${sshd.user}@${sshd.host}:${sshd.port}`;
let sites = 0;
const newSite = () => join(root, `site-${++sites}`);

/** The bundled CLI with a HOME of its own (no ~/.ssh unless a test writes one) and `env`. */
function tagflip(args: string[], env: Record<string, string>) {
  const run = spawnSync(process.execPath, ['bin/tagflip.js', ...args], {
    env: { PATH: process.env.PATH, HOME: openTempDir('tagflip-home-'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('ssh-agent', () => {
  test('no private-key: the agent at SSH_AUTH_SOCK logs in, and the log says so', async () => {
    const socket = await startAgent([keyFile]);
    const site = newSite();
    const { result, log } = await runTagflip(sshd, site, repo, { 'private-key': '', release: 'v1', build: 'sh build.sh' }, { sshAgent: socket });
    expect(result).toMatchObject({ ok: true, status: 'deployed' });
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
    expect(log).toContain(`authenticating with the ssh-agent at ${socket} (1 key)`);
    expect(log).not.toContain('OPENSSH PRIVATE KEY');
  });

  test('the CLI uses the agent before ~/.ssh/id_ed25519, and says which it used', async () => {
    const socket = await startAgent([keyFile]);
    const home = openTempDir('tagflip-home-');
    mkdirSync(join(home, '.ssh'));
    // An unauthorized default key: only the agent can log in.
    writeFileSync(join(home, '.ssh', 'id_ed25519'), sshd.wrongPrivateKey, { mode: 0o600 });
    writeFileSync(join(home, '.ssh', 'known_hosts'), sshd.knownHosts);
    const site = newSite();
    const common = ['deploy', '--hosts', entry(), '--deploy-path', site, '--repository', repo, '--build', 'sh build.sh', '--release', 'v1'];

    const viaAgent = tagflip(common, { HOME: home, SSH_AUTH_SOCK: socket });
    expect(viaAgent.stderr).toContain(`authenticating with the ssh-agent at ${socket} (1 key)`);
    expect(viaAgent.code).toBe(0);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');

    // Without the agent, the default key file is the one tried (and refused here).
    const viaFile = tagflip([...common.slice(0, -1), 'v2'], { HOME: home });
    expect(viaFile.stderr).toContain(`authenticating with the key ${join(home, '.ssh', 'id_ed25519')}`);
    expect(viaFile.stderr).toContain(`the server refused the private key for user '${sshd.user}' (the key ${join(home, '.ssh', 'id_ed25519')})`);
    expect(viaFile.code).toBe(1);
  });

  test('an agent holding no key the host accepts: a clear refusal naming the agent; nothing changes', async () => {
    const socket = await startAgent([wrongKeyFile]);
    const site = newSite();
    const { result } = await runTagflip(sshd, site, repo, { 'private-key': '', release: 'v1' }, { sshAgent: socket });
    expect(result).toMatchObject({ ok: false, status: 'failed' });
    expect(result.hosts[0].error).toContain(`the server refused every key of the ssh-agent at ${socket} for user '${sshd.user}'`);
    expect(existsSync(site)).toBe(false);
  });

  test('an empty agent, or SSH_AUTH_SOCK naming no socket, is refused before connecting', async () => {
    const empty = await startAgent([]);
    const logins = () => sshd.log().match(/Connection from/g)?.length ?? 0;
    const before = logins();
    await expect(runTagflip(sshd, newSite(), repo, { 'private-key': '', release: 'v1' }, { sshAgent: empty })).rejects.toThrow(`private-key: not given, and the ssh-agent at ${empty} holds no keys`);
    const gone = join(files, 'no-agent.sock');
    await expect(runTagflip(sshd, newSite(), repo, { 'private-key': '', release: 'v1' }, { sshAgent: gone })).rejects.toThrow(`private-key: not given, and the ssh-agent socket SSH_AUTH_SOCK names (${gone}) is not there (ENOENT)`);
    expect(logins()).toBe(before);
  });

  test('neither a key nor an agent: the CLI exits 2, naming both ways, before connecting', () => {
    const before = sshd.log().match(/Connection from/g)?.length ?? 0;
    const run = tagflip(['deploy', '--hosts', entry(), '--insecure-ignore-host-key', '--deploy-path', newSite(), '--release', 'v1'], {});
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('error: private-key: not given, and there is no ssh-agent (SSH_AUTH_SOCK is not set); expected the text of an OpenSSH or PEM private key');
    expect(run.stderr).toContain('an ssh-agent holding the key with its socket in SSH_AUTH_SOCK');
    expect(sshd.log().match(/Connection from/g)?.length ?? 0).toBe(before);
  });

  test('the bundled action: no private-key input, SSH_AUTH_SOCK from an agent step', async () => {
    const socket = await startAgent([keyFile]);
    const site = newSite();
    const run = runAction({ hosts: entry(), 'known-hosts': sshd.knownHosts, 'deploy-path': site, repository: repo, release: 'v1', build: 'sh build.sh' }, { SSH_AUTH_SOCK: socket });
    expect(run.stdout).toContain(`authenticating with the ssh-agent at ${socket} (1 key)`);
    expect(run.code).toBe(0);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  });
});

describe('ssh config', () => {
  /** A HOME whose ~/.ssh/config holds `config`, and the known_hosts file it names. */
  function homeWith(config: string): string {
    const home = openTempDir('tagflip-home-');
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'config'), config);
    return home;
  }
  const knownHostsFile = () => {
    const file = join(files, 'fleet_known_hosts');
    writeFileSync(file, sshd.knownHosts + bastion.knownHosts);
    return file;
  };
  const web1 = (port = sshd.port, user = sshd.user) => `Host web1
  HostName 127.0.0.1
  Port ${port}
  User ${user}
  IdentityFile ${keyFile}
  UserKnownHostsFile ${knownHostsFile()}
`;

  test('--hosts web1 deploys to its HostName, Port and User, with its IdentityFile and UserKnownHostsFile; results name web1', () => {
    const home = homeWith(web1());
    const site = newSite();
    const run = tagflip(['deploy', '--hosts', 'web1', '--deploy-path', site, '--repository', repo, '--build', 'sh build.sh', '--release', 'v1'], { HOME: home });
    expect(run.stderr).toContain(`authenticating with the key ${keyFile} (the IdentityFile of web1 in ${join(home, '.ssh', 'config')})`);
    expect(run.code).toBe(0);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  });

  test('the alias stays the alias in the results (in-process, through --ssh-config)', async () => {
    const config = join(files, 'config-alias');
    writeFileSync(config, web1());
    const { readSshConfig } = await import('../../src/remote/ssh-config.js');
    const site = newSite();
    const { result } = await runTagflip(sshd, site, repo, { hosts: 'web1', 'private-key': '', 'known-hosts': '', release: 'v1' }, { sshConfig: readSshConfig(config, { home: files, user: sshd.user }) });
    expect(result).toMatchObject({ ok: true, status: 'deployed' });
    expect(result.hosts[0].host).toBe(`${sshd.user}@web1:${sshd.port}`);
  });

  test('an explicit user and port in hosts win over User and Port', () => {
    const closed = 9; // discard: nothing listens there
    const home = homeWith(web1(closed, 'nobody'));
    const site = newSite();
    const run = tagflip(['deploy', '--hosts', `${sshd.user}@web1:${sshd.port}`, '--deploy-path', site, '--repository', repo, '--build', 'sh build.sh', '--release', 'v1'], { HOME: home });
    expect(run.code).toBe(0);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  });

  test('ProxyJump: the alias is reached through the bastion alias', async () => {
    const config = `${web1()}  ProxyJump gate

Host gate
  HostName 127.0.0.1
  Port ${bastion.port}
  User ${bastion.user}
  IdentityFile ${keyFile}
  UserKnownHostsFile ${knownHostsFile()}
`;
    const home = homeWith(config);
    const accepted = () => bastion.log().match(/Accepted publickey/g)?.length ?? 0;
    const before = accepted();
    const site = newSite();
    const run = tagflip(['deploy', '--hosts', 'web1', '--deploy-path', site, '--repository', repo, '--build', 'sh build.sh', '--release', 'v1'], { HOME: home });
    expect(run.code).toBe(0);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
    // The bastion's log arrives through this process's event loop, which spawnSync held up.
    for (let i = 0; i < 50 && accepted() === before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(accepted()).toBe(before + 1);
  });

  test('the action reads a config only from the ssh-config input', () => {
    const config = join(files, 'config-action');
    writeFileSync(config, web1());
    const site = newSite();
    const home = homeWith(web1(9, 'nobody')); // the runner's own ~/.ssh/config is not read
    const run = runAction({ hosts: 'web1', 'ssh-config': config, 'deploy-path': site, repository: repo, release: 'v1', build: 'sh build.sh' }, { HOME: home });
    expect(run.code).toBe(0);
    // The IdentityFile's lines are masked like private-key's.
    expect(run.stdout).toContain(`::add-mask::${sshd.privateKey.split('\n')[1]}`);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
    const without = runAction({ hosts: 'web1', user: sshd.user, 'private-key': sshd.privateKey, 'insecure-ignore-host-key': 'true', 'deploy-path': newSite(), release: 'v1' }, { HOME: home });
    expect(without.code).not.toBe(0);
    expect(without.stdout).toContain("the host name 'web1' does not resolve");
  });
});

/** The bundled action as the runner runs it (INPUT_* variables). */
function runAction(inputs: Record<string, string>, env: Record<string, string>) {
  const runner = openTempDir('tagflip-runner-');
  const output = join(runner, 'output');
  writeFileSync(output, '');
  chmodSync(output, 0o644);
  const inputEnv = Object.fromEntries(Object.entries(inputs).map(([name, value]) => [`INPUT_${name.toUpperCase()}`, value]));
  const run = spawnSync(process.execPath, ['dist/index.js'], { env: { PATH: process.env.PATH, GITHUB_OUTPUT: output, ...inputEnv, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, stdout: run.stdout };
}
