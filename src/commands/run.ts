import { deployFleet, prepareFleet } from './deploy.js';
import { flipsInFlightNow } from './fleet.js';
import type { HostDependencies } from './host-run.js';
import { LocalTransport } from '../remote/local-transport.js';
import { type Logger, hostLogger } from '../core/logger.js';
import { inPool } from '../core/pool.js';
import { type HostResult, type RunResult, summarize } from '../core/result.js';
import { rollbackFleet } from './rollback.js';
import type { HostTarget, SshHost } from '../core/host-targets.js';
import type { Command } from '../core/inputs.js';
import type { Settings } from '../core/settings.js';
import type { SshAuth } from '../core/ssh-auth.js';
import { countAgentKeys } from '../remote/ssh-agent.js';
import { pruneHost, statusOfHost } from './status.js';
import { type SshEndpoint, SshTransport } from '../remote/ssh-transport.js';
import type { Transport } from '../remote/transport.js';

/** The transport for the settings' host: SSH, or this machine for `local`. */
export function createTransport(settings: Settings, target: HostTarget): Transport {
  if (target.kind === 'local') return new LocalTransport();
  const jump = target.jump ?? settings.jumpHost;
  return new SshTransport({
    ...endpoint(settings, target),
    connectTimeout: settings.connectTimeout,
    jump: jump ? endpoint(settings, jump) : null,
  });
}

/** How to log in to one server: its own IdentityFile and UserKnownHostsFile, else the run's. */
function endpoint(settings: Settings, host: SshHost): SshEndpoint {
  const auth = host.auth ?? settings.auth;
  // parseSettings gives the run credentials whenever a host has none of its own.
  if (!auth) throw new Error(`no credentials for ${host.label}`);
  return {
    label: host.label,
    host: host.host,
    port: host.port,
    user: host.user,
    auth,
    hostKeys: { knownHosts: host.knownHosts?.entries ?? settings.knownHosts, fingerprints: settings.hostFingerprints, insecure: settings.insecureIgnoreHostKey },
  };
}

/**
 * Say, before connecting, how the hosts are logged in to (never any key
 * material): one line for the run, or one per host when they differ. The
 * agent is asked for its keys first, so that an agent that is not there or
 * holds no key is reported as such, once, rather than as a refusal by every host.
 */
export async function announceAuth(settings: Settings, logger: Logger): Promise<void> {
  const hosts = settings.targets.filter((target) => target.kind === 'ssh');
  if (hosts.length === 0) return;
  // settings.auth is set only when some host or bastion has no key of its own, so then the agent is used.
  const agentKeys = settings.auth?.kind === 'agent' ? await countAgentKeys(settings.auth.socket) : 0;
  const describe = (auth: SshAuth | null) =>
    !auth ? '' : auth.kind === 'agent' ? `the ssh-agent at ${auth.socket} (${agentKeys} ${agentKeys === 1 ? 'key' : 'keys'})` : auth.from;
  const descriptions = hosts.map((host) => describe(host.auth ?? settings.auth));
  if (descriptions.every((description) => description === descriptions[0])) {
    logger.info(`authenticating with ${descriptions[0]}`);
  } else {
    hosts.forEach((host, index) => logger.info(`${host.label}: authenticating with ${descriptions[index]}`));
  }
}

/** Commands that work on each host on its own; deploy and rollback move current on all hosts together, and prepare builds on all. */
const COMMAND_RUNNERS: Record<Exclude<Command, 'deploy' | 'prepare' | 'rollback'>, (settings: Settings, deps: HostDependencies) => Promise<HostResult>> = {
  status: statusOfHost,
  prune: pruneHost,
};

/** Run the command the settings ask for; both front ends call this. */
export async function runCommand(settings: Settings, logger: Logger, transports: Transport[] = settings.targets.map((target) => createTransport(settings, target))): Promise<RunResult> {
  if (settings.insecureIgnoreHostKey && settings.targets.some((target) => target.kind === 'ssh')) {
    const labels = settings.targets.map((target) => target.label).join(', ');
    logger.warning(
      `insecure-ignore-host-key is true: the host keys of ${labels} are NOT verified, so anyone who can intercept the connection can receive your deploy and run it. Set known-hosts instead.`,
    );
  }
  await announceAuth(settings, logger);
  transports.forEach((transport) => openTransports.add(transport));
  const members = transports.map((transport) => ({ transport, logger }));
  let hosts: HostResult[];
  if (settings.command === 'deploy') {
    hosts = await deployFleet(settings, members, logger);
  } else if (settings.command === 'prepare') {
    hosts = await prepareFleet(settings, members, logger);
  } else if (settings.command === 'rollback') {
    hosts = await rollbackFleet(settings, members, logger);
  } else {
    const runner = COMMAND_RUNNERS[settings.command];
    const fleet = members.length > 1;
    hosts = await inPool(members, settings.maxParallel, (member) => runner(settings, fleet ? { ...member, logger: hostLogger(logger, member.transport.label) } : member));
  }
  transports.forEach((transport) => openTransports.delete(transport));
  return summarize(hosts, settings.command);
}

const openTransports = new Set<Transport>();

/**
 * On SIGTERM or SIGINT (a cancelled job): drop every connection now. The hosts
 * finish the job without us: each host's watchdog stops the running hook's
 * process group, the build script removes its release and records it as
 * failed, and only then does the remote shell exit and release the lock.
 */
export function abortOnSignals(logger: Logger, exit: (code: number) => void): void {
  const abort = (signal: NodeJS.Signals) => {
    const hosts = [...openTransports].map((transport) => transport.label);
    const dropping = hosts.length === 0 ? '' : `: dropping the ${hosts.length > 1 ? 'connections' : 'connection'} to ${hosts.join(', ')}`;
    logger.warning(
      `received ${signal}${dropping}. On each host the running hook is stopped, a release still being built is removed and recorded as failed (interrupted: connection lost), and then the lock is released. A host that had not flipped keeps its current release; one that had keeps the new one, without its remaining hooks.`,
    );
    flipsInFlightNow().forEach((line) => logger.warning(line));
    // Do not wait long: a local shell only learns we are gone when we exit.
    const closed = Promise.allSettled([...openTransports].map((transport) => transport.close()));
    void Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000))]).then(() => exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGTERM', abort);
  process.once('SIGINT', abort);
}

/**
 * The lines of the keys that were read from files (IdentityFile, the CLI's
 * ~/.ssh/id_*), to mask like private-key's.
 */
export function keySecretsOf(settings: Settings): string[] {
  const hosts = settings.targets.flatMap((target) => (target.kind === 'ssh' ? [target, ...(target.jump ? [target.jump] : [])] : []));
  const auths = [settings.auth, settings.jumpHost?.auth, ...hosts.map((host) => host.auth)];
  const keys = new Set(auths.flatMap((auth) => (auth?.kind === 'key' ? [auth.privateKey] : [])));
  return [...keys].flatMap((key) => secretsOf({ 'private-key': key }));
}

/**
 * Secret values a front end must mask before anything is logged: the key, its
 * passphrase and secret-env's values. env's values are not: masking `1` or
 * `production` would turn every such string of the job log into ***, and
 * values from `${{ secrets.* }}` are masked by the runner already.
 */
export function secretsOf(raw: Readonly<Record<string, string | undefined>>): string[] {
  const secrets: string[] = [];
  const key = raw['private-key'] ?? '';
  if (key.trim()) {
    secrets.push(key, ...key.split('\n').map((line) => line.trim()).filter((line) => line.length > 8));
  }
  if (raw['passphrase']) secrets.push(raw['passphrase']);
  for (const line of (raw['secret-env'] ?? '').split('\n')) {
    const eq = line.indexOf('=');
    const value = eq < 0 || line.trim().startsWith('#') ? '' : line.slice(eq + 1).replace(/\r$/, '');
    if (value.trim()) secrets.push(value);
  }
  return secrets;
}
