/**
 * One upload to a fleet of three hosts, each a real sshd in a mount namespace
 * of its own (as in fleet.test.ts): the runner reads the tree once, every host
 * gets an identical tree, all flip.
 */
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type TestFleet, runOnFleet, startFleet } from '../support/fleet.js';
import { sampleTree, treeHash } from '../support/trees.js';

let fleet: TestFleet;

beforeAll(async () => {
  fleet = await startFleet(3, 'tagflip-upload-fleet-');
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

test('three hosts: one read of the tree, identical trees everywhere, all flip', async () => {
  const tree = sampleTree(4);
  const { result, log } = await runOnFleet(fleet, fleet.hosts, 'site', { release: 'v1', upload: tree });
  expect(result.hosts.map((host) => host.error)).toEqual(['', '', '']);
  expect(result.status).toBe('deployed');
  expect(log.split('\n').filter((line) => line.startsWith('upload: '))).toHaveLength(1);
  const expected = treeHash(tree);
  for (const host of fleet.hosts) {
    expect(readlinkSync(join(host.files, 'site/current'))).toBe('releases/v1');
    expect(treeHash(join(host.files, 'site/releases/v1'))).toEqual(expected);
  }
  expect(result.hosts.every((host) => (host.uploadBytes ?? 0) > 4 * 1024 * 1024)).toBe(true);
}, 60_000);
