/**
 * One upload to a fleet of three hosts, each a real sshd in a mount namespace
 * of its own (as in fleet.test.ts): the runner reads the tree once, every host
 * gets an identical tree, all flip.
 */
import { readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../../src/run.js';
import { parseSettings } from '../../src/settings.js';
import { openTempDir, recordingLogger } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';
import { sampleTree, treeHash } from '../support/trees.js';

let fleetRoot: string;
let srv: string;
let hosts: TestSshd[];
const files = (i: number) => join(fleetRoot, `host${i}`);

beforeAll(async () => {
  fleetRoot = openTempDir('tagflip-upload-fleet-');
  srv = join(fleetRoot, 'srv');
  const first = await startSshd({ bindMount: { source: files(0), target: srv } });
  const clientKey = { privateKey: first.privateKey, publicKey: first.publicKey };
  hosts = [first, ...(await Promise.all([1, 2].map((i) => startSshd({ bindMount: { source: files(i), target: srv }, clientKey }))))];
}, 60_000);

afterAll(async () => {
  await Promise.all((hosts ?? []).map((host) => host.stop()));
  if (fleetRoot) rmSync(fleetRoot, { recursive: true, force: true });
});

test('three hosts: one read of the tree, identical trees everywhere, all flip', async () => {
  const tree = sampleTree(4);
  const logger = recordingLogger();
  const settings = parseSettings({
    hosts: hosts.map((host) => `${host.user}@${host.host}:${host.port}`).join(', '),
    'private-key': hosts[0].privateKey,
    'known-hosts': hosts.map((host) => host.knownHosts).join(''),
    'deploy-path': join(srv, 'site'),
    release: 'v1',
    upload: tree,
  });
  const result = await runCommand(settings, logger);
  expect(result.hosts.map((host) => host.error)).toEqual(['', '', '']);
  expect(result.status).toBe('deployed');
  expect(logger.lines.filter((line) => line.startsWith('upload: '))).toHaveLength(1);
  const expected = treeHash(tree);
  for (const i of [0, 1, 2]) {
    expect(readlinkSync(join(files(i), 'site/current'))).toBe('releases/v1');
    expect(treeHash(join(files(i), 'site/releases/v1'))).toEqual(expected);
  }
  expect(result.hosts.every((host) => (host.uploadBytes ?? 0) > 4 * 1024 * 1024)).toBe(true);
}, 60_000);
