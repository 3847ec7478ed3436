import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseSettings } from '../../src/core/settings.js';
import { newSite, repo, sshd, startDeploySuite } from '../support/deploy-suite.js';
import { runTagflip } from '../support/fixtures.js';

// migrate-check (issue 25): exit 0 means the data is up to date, so the new
// release uses the current data release with no copy and no migration; over
// SSH to a real sshd.
startDeploySuite(['v1', 'v2', 'v3', 'v4']);

const run = (site: string, inputs: Record<string, string>) => runTagflip(sshd, site, repo, inputs);
const read = (path: string) => readFileSync(path, 'utf8');
const manifest = (site: string, release: string) => JSON.parse(read(join(site, '.tagflip/releases', `${release}.json`)));
/** A migration that appends the release to the data's log: shows which copy it ran on. */
const MIGRATE = 'echo "$TAGFLIP_RELEASE" >> "$TAGFLIP_DATA_PATH/migrations"';
/** Up to date unless the release's version file says v3 (a schema change). */
const CHECK = 'echo "$TAGFLIP_RELEASE $PWD $TAGFLIP_DATA_PATH" >> "$TAGFLIP_DEPLOY_PATH/checks"; ! grep -q v3 version';
const deploy = (site: string, release: string, more: Record<string, string> = {}) => run(site, { release, migrate: MIGRATE, 'migrate-check': CHECK, ...more });

test('up to date: no copy, no migration, the release uses the current data release and its record says so; otherwise copy and migrate', async () => {
  const site = newSite();
  // The first deploy has no data/current: nothing to check, an empty copy is migrated.
  const first = await deploy(site, 'v1');
  expect(first.result.status).toBe('deployed');
  expect(first.log).toContain('no data/current yet: migrate-check is not run');
  expect(existsSync(join(site, 'checks'))).toBe(false);
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v1');

  const reuse = await deploy(site, 'v2');
  expect(reuse.result.status).toBe('deployed');
  expect(reuse.log).toContain('migrate-check exited 0: releases/v2 uses data release v1 as it is (no copy, no migration)');
  expect(reuse.log).toContain('group: migrate-check');
  expect(reuse.log).not.toContain('group: migrate ·');
  // Run in the new release, with the hook environment: TAGFLIP_DATA_PATH is data/current.
  expect(read(join(site, 'checks'))).toBe(`v2 ${site}/releases/v2 ${site}/data/current\n`);
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v1');
  expect(existsSync(join(site, 'data/releases/v2'))).toBe(false);
  expect(read(join(site, 'data/current/migrations'))).toBe('v1\n');
  expect(manifest(site, 'v2')).toMatchObject({ state: 'active', dataRelease: 'v1', dataReused: true });
  expect(reuse.host).toMatchObject({ dataRelease: 'v1', previousDataRelease: '' });

  // v3 changes the schema: the check fails, so the data is copied and migrated.
  const migrated = await deploy(site, 'v3');
  expect(migrated.result.status).toBe('deployed');
  expect(migrated.log).toContain('migrate-check exited with status 1: copying and migrating the data');
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v3');
  expect(read(join(site, 'data/current/migrations'))).toBe('v1\nv3\n');
  expect(manifest(site, 'v3').dataReused).toBeUndefined();
  expect(manifest(site, 'v3').dataRelease).toBe('v3');
  expect(migrated.host).toMatchObject({ dataRelease: 'v3', previousDataRelease: 'v1' });
});

test('rollback: across a migrated copy data goes back to the release before it; across a reuse it stays', async () => {
  const site = newSite();
  for (const release of ['v1', 'v2', 'v3', 'v4']) expect((await deploy(site, release)).result.status).toBe('deployed');
  // v1: data v1 (migrated); v2: reuses v1; v3: data v3 (migrated); v4: reuses v3.
  expect(manifest(site, 'v4')).toMatchObject({ dataRelease: 'v3', dataReused: true });

  // v4 -> v3: both use data v3: nothing to flip back, no warning.
  const toV3 = await run(site, { command: 'rollback', 'rollback-to': 'v3' });
  expect(toV3.result.status).toBe('rolled-back');
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v3');
  expect(toV3.host.warnings ?? []).toEqual([]);

  // v3 -> v2 crosses the migration: data goes back to v1, which v2 used, with the warning.
  const toV2 = await run(site, { command: 'rollback', 'rollback-to': 'v2' });
  expect(toV2.result.status).toBe('rolled-back');
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v1');
  expect(toV2.host).toMatchObject({ dataRelease: 'v1', previousDataRelease: 'v3' });
  expect(toV2.log).toContain('data/current goes back from data release v3 to v1');

  // And forward again to v4 (its data release, v3).
  const toV4 = await run(site, { command: 'rollback', 'rollback-to': 'v4' });
  expect(toV4.result.status).toBe('rolled-back');
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v3');
});

test('a verify that fails after a reuse flips code back and leaves the data where it was', async () => {
  const site = newSite();
  await deploy(site, 'v1');
  const failed = await deploy(site, 'v2', { verify: 'exit 3' });
  expect(failed.result.status).toBe('rolled-back');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v1');
  expect(read(join(site, 'data/current/migrations'))).toBe('v1\n');
});

test('retention never removes a data release that a kept release uses', async () => {
  const site = newSite();
  await deploy(site, 'v1', { 'keep-releases': '1' });
  await deploy(site, 'v2', { 'keep-releases': '1' });
  await deploy(site, 'v4', { 'keep-releases': '1' });
  // v4 and v2 (current and rollback target) both use data v1, which v1's removal leaves.
  expect(existsSync(join(site, 'releases/v1'))).toBe(false);
  expect(manifest(site, 'v4')).toMatchObject({ dataRelease: 'v1', dataReused: true });
  expect(existsSync(join(site, 'data/releases/v1'))).toBe(true);
  const pruned = await run(site, { command: 'prune', 'keep-releases': '1' });
  expect(pruned.result.ok).toBe(true);
  expect(existsSync(join(site, 'data/releases/v1'))).toBe(true);
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v1');

  // Once a migrated copy is current and the releases that used v1 are gone, v1's data goes.
  await deploy(site, 'v3', { 'keep-releases': '1' });
  await run(site, { release: 'v5', 'keep-releases': '1', repository: '', build: 'true' });
  expect(existsSync(join(site, 'releases/v2'))).toBe(false);
  expect(existsSync(join(site, 'data/releases/v1'))).toBe(false);
  expect(readlinkSync(join(site, 'data/current'))).toBe('releases/v3');
});

test('migrate-check without migrate is refused before connecting, naming the input', () => {
  const inputs = { hosts: 'local', 'deploy-path': '/srv/app', release: 'v1', 'migrate-check': 'true' };
  expect(() => parseSettings(inputs)).toThrow(/migrate-check: is set, but migrate is not/);
});
