/**
 * host-fingerprint with two hosts (issue 9): a fingerprint is accepted only from
 * the host it is bound to. Two real sshd with their own host keys, one client
 * key; `command: status` reads both without changing anything, so they need no
 * files of their own.
 */
import { runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { deployRootFor, recordingLogger } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

let a: TestSshd;
let b: TestSshd;
let site: string;

beforeAll(async () => {
  a = await startSshd();
  b = await startSshd({ clientKey: { privateKey: a.privateKey, publicKey: a.publicKey } });
  site = `${deployRootFor(a.user)}/site`;
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

const name = (sshd: TestSshd) => `[${sshd.host}]:${sshd.port}`;

async function status(hostFingerprint: string) {
  const settings = parseSettings({
    command: 'status',
    hosts: [a, b].map((sshd) => `${sshd.user}@${sshd.host}:${sshd.port}`).join(', '),
    'private-key': a.privateKey,
    'host-fingerprint': hostFingerprint,
    'deploy-path': site,
  });
  const logger = recordingLogger();
  const result = await runCommand(settings, logger);
  return { hosts: result.hosts, log: logger.text() };
}

test('each host is accepted with its own bound fingerprint', async () => {
  const { hosts } = await status(`${name(a)}=${a.hostKeyFingerprints[0]}, ${name(b)}=${b.hostKeyFingerprints[0]}`);
  expect(hosts.map((host) => [host.status, host.error])).toEqual([
    ['unchanged', ''],
    ['unchanged', ''],
  ]);
});

test("host A's fingerprint, bound to A, is refused from B", async () => {
  // B is bound to A's key: the old rule (any listed fingerprint for any host) accepted B.
  const { hosts } = await status(`${name(a)}=${a.hostKeyFingerprints[0]}, ${name(b)}=${a.hostKeyFingerprints[0]}`);
  expect(hosts[0]).toMatchObject({ status: 'unchanged', error: '' });
  expect(hosts[1].status).toBe('failed');
  expect(hosts[1].error).toContain(`host key verification failed: the server offered ssh-ed25519 ${b.hostKeyFingerprints[0]}`);
  expect(hosts[1].error).toContain(`host-fingerprint lists only ${a.hostKeyFingerprints[0]} for ${name(b)}`);
});

test('a bare list of both fingerprints is refused before connecting, telling the form', async () => {
  await expect(status(`${a.hostKeyFingerprints[0]}, ${b.hostKeyFingerprints[0]}`)).rejects.toThrow(/host-fingerprint: '.*' names no host, and this step connects to 2 SSH hosts/);
});
