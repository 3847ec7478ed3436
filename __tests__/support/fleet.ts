/**
 * A fleet of test hosts: every "host" is a real sshd on its own loopback port,
 * started in a mount namespace of its own where its own directory is
 * bind-mounted onto one shared deploy root, so all hosts use the same
 * deploy-path, as real hosts do, yet each has its own files. The test process
 * does not see those mounts: it reads each host's files through `files`.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResult } from '../../src/core/result.js';
import { runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { openTempDir, recordingLogger } from './fixtures.js';
import { type TestSshd, startSshd } from './sshd.js';

export interface FleetHost {
  sshd: TestSshd;
  /** `user@127.0.0.1:PORT`, as in the hosts input and in results. */
  entry: string;
  /** This host's own directory, which it sees at the fleet's `srv`. */
  files: string;
}

export interface TestFleet {
  /** The deploy root every host sees (each its own files): deploy-paths live below it. */
  srv: string;
  hosts: FleetHost[];
  /** Plain sshd (no mount namespace) that accept the same client key, e.g. a bastion. */
  extras: TestSshd[];
  stop(): Promise<void>;
}

/** Start `count` hosts (and `extras` plain sshd); one key pair logs in everywhere, as tagflip takes one private-key. */
export async function startFleet(count: number, prefix: string, extras = 0): Promise<TestFleet> {
  const root = openTempDir(prefix);
  const srv = join(root, 'srv');
  const bind = (i: number) => ({ source: join(root, `host${i}`), target: srv });
  const first = await startSshd({ bindMount: bind(1) });
  const clientKey = { privateKey: first.privateKey, publicKey: first.publicKey };
  const others = await Promise.all([
    ...Array.from({ length: count - 1 }, (_, i) => startSshd({ bindMount: bind(i + 2), clientKey })),
    ...Array.from({ length: extras }, () => startSshd({ clientKey })),
  ]);
  const plain = others.splice(count - 1);
  const hosts = [first, ...others].map((sshd, i) => ({ sshd, entry: `${sshd.user}@${sshd.host}:${sshd.port}`, files: bind(i + 1).source }));
  return {
    srv,
    hosts,
    extras: plain,
    async stop() {
      await Promise.all([...hosts.map((host) => host.sshd.stop()), ...plain.map((sshd) => sshd.stop())]);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Run tagflip on `members` of the fleet (one private key, their known_hosts)
 * with deploy-path `<srv>/<site>`; returns the result and the log.
 */
export async function runOnFleet(fleet: TestFleet, members: readonly FleetHost[], site: string, inputs: Record<string, string>): Promise<{ result: RunResult; log: string }> {
  const logger = recordingLogger();
  const settings = parseSettings({
    hosts: members.map((host) => host.entry).join(', '),
    'private-key': fleet.hosts[0].sshd.privateKey,
    'known-hosts': members.map((host) => host.sshd.knownHosts).join(''),
    'deploy-path': join(fleet.srv, site),
    ...inputs,
  });
  const result = await runCommand(settings, logger);
  if (process.env.DEBUG_TESTS) console.log(logger.text());
  return { result, log: logger.text() };
}
