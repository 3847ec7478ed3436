import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseSettings } from '../../src/core/settings.js';
import { deployRootFor, gitRepoWithTags, runTagflip } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

// Shared paths and versioned data (SPEC steps 7–9), over SSH to a real sshd.
let sshd: TestSshd;
let repo: string;
let root: string;
let sites = 0;

beforeAll(async () => {
  sshd = await startSshd();
  repo = gitRepoWithTags(['v1', 'v2', 'v3', 'v4'], sshd.user);
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

const newSite = () => join(root, `site${++sites}`);

const run = (site: string, inputs: Record<string, string>) => runTagflip(sshd, site, repo, inputs);

const read = (path: string) => readFileSync(path, 'utf8');
const link = (path: string) => readlinkSync(path);
const manifest = (site: string, release: string) => JSON.parse(read(join(site, '.tagflip/releases', `${release}.json`)));
/** A migration that appends the release to the data's log: shows which copy it ran on. */
const MIGRATE = 'echo "$TAGFLIP_RELEASE" >> "$TAGFLIP_DATA_PATH/migrations"';

describe('shared paths', () => {
  test('logs written by v1 through var/log are still there, and appended to, under v2', async () => {
    const site = newSite();
    const build = 'echo "built $TAGFLIP_RELEASE" >> var/log/app.log';
    expect((await run(site, { release: 'v1', 'shared-dirs': 'var/log', build })).result.status).toBe('deployed');
    expect(link(join(site, 'releases/v1/var/log'))).toBe(`${site}/shared/var/log`);
    expect((await run(site, { release: 'v2', 'shared-dirs': 'var/log', build })).result.status).toBe('deployed');
    expect(read(join(site, 'current/var/log/app.log'))).toBe('built v1\nbuilt v2\n');
    expect(read(join(site, 'shared/var/log/app.log'))).toBe('built v1\nbuilt v2\n');
  });

  test('a shared file must exist, unless the release brings one to seed it; it replaces the checkout\'s', async () => {
    const site = newSite();
    const missing = await run(site, { release: 'v1', 'shared-files': 'etc/app.cfg' });
    expect(missing.result.status).toBe('failed');
    expect(missing.host.error).toContain(`shared file etc/app.cfg does not exist: create ${site}/shared/etc/app.cfg on the host`);
    expect(existsSync(join(site, 'current'))).toBe(false);

    // `version` is in the checkout: it seeds shared/version on first use, then the shared copy wins.
    const first = await run(site, { release: 'v1', 'shared-files': 'version' });
    expect(first.result.status).toBe('deployed');
    expect(read(join(site, 'shared/version'))).toBe('v1\n');
    writeFileSync(join(site, 'shared/version'), 'edited on the host\n');
    await run(site, { release: 'v2', 'shared-files': 'version' });
    expect(link(join(site, 'releases/v2/version'))).toBe(`${site}/shared/version`);
    expect(read(join(site, 'current/version'))).toBe('edited on the host\n');
  });

  test('overlapping, absolute and .. entries are refused before connecting', () => {
    const base = { hosts: 'local', 'deploy-path': '/srv/app', release: 'v1' };
    expect(() => parseSettings({ ...base, 'shared-dirs': 'var\nvar/log' })).toThrow(/shared-dirs: 'var\/log' is inside 'var'/);
    expect(() => parseSettings({ ...base, 'shared-dirs': '/var/log' })).toThrow(/shared-dirs: '\/var\/log' is not a relative path/);
    expect(() => parseSettings({ ...base, 'shared-files': '../etc/passwd' })).toThrow(/shared-files: '..\/etc\/passwd' is not a relative path/);
    expect(() => parseSettings({ ...base, 'shared-dirs': 'var', 'shared-files': 'var/app.cfg' })).toThrow(/shared-files: 'var\/app.cfg' is inside 'var'/);
  });
});

describe('versioned data', () => {
  test('migrate runs on a copy; data/current flips with current; the old data release is untouched', async () => {
    const site = newSite();
    const first = await run(site, { release: 'v1', migrate: MIGRATE });
    expect(first.result.status).toBe('deployed');
    expect(link(join(site, 'data/current'))).toBe('releases/v1');
    expect(read(join(site, 'data/current/migrations'))).toBe('v1\n');
    writeFileSync(join(site, 'data/current/Data.fs'), 'records written while v1 ran\n');
    const before = execFileSync('sh', ['-c', 'cd "$1" && find . -type f | sort | xargs sha256sum', 'sh', join(site, 'data/releases/v1')]).toString();

    const second = await run(site, { release: 'v2', migrate: MIGRATE });
    expect(second.result).toMatchObject({ status: 'deployed', release: 'v2' });
    expect(second.result.dataRelease).toBe('v2');
    expect(second.result.previousDataRelease).toBe('v1');
    expect(link(join(site, 'data/current'))).toBe('releases/v2');
    expect(read(join(site, 'data/current/migrations'))).toBe('v1\nv2\n');
    expect(read(join(site, 'data/current/Data.fs'))).toBe('records written while v1 ran\n');
    const after = execFileSync('sh', ['-c', 'cd "$1" && find . -type f | sort | xargs sha256sum', 'sh', join(site, 'data/releases/v1')]).toString();
    expect(after).toBe(before);
    expect(manifest(site, 'v2').dataRelease).toBe('v2');
  });

  test('a failed migrate moves neither link and removes the copy', async () => {
    const site = newSite();
    await run(site, { release: 'v1', migrate: MIGRATE });
    const failed = await run(site, { release: 'v2', migrate: `${MIGRATE}; exit 3` });
    expect(failed.result.status).toBe('failed');
    expect(failed.host.error).toContain('migrate failed: migrate exited with status 3');
    expect(link(join(site, 'current'))).toBe('releases/v1');
    expect(link(join(site, 'data/current'))).toBe('releases/v1');
    expect(existsSync(join(site, 'data/releases/v2'))).toBe(false);
    expect(existsSync(join(site, 'releases/v2'))).toBe(false);
    expect(read(join(site, 'data/current/migrations'))).toBe('v1\n');
  });

  test('with a data-path of its own, every message names it, not data/current', async () => {
    const site = newSite();
    const store = `${site}-store`;
    const withStore = (inputs: Record<string, string>) => run(site, { 'data-path': store, ...inputs });
    const first = await withStore({ release: 'v1', migrate: MIGRATE });
    expect(first.log).toContain(`current -> releases/v1, ${store}/current -> releases/v1`);
    const failed = await withStore({ release: 'v2', migrate: `${MIGRATE}; exit 3` });
    expect(failed.host.error).toContain(`migrate exited with status 3; ${store}/current and current are unchanged`);
    await withStore({ release: 'v2', migrate: MIGRATE });
    const back = await withStore({ command: 'rollback' });
    expect(back.log).toContain(`${store}/current goes back from data release v2 to v1`);
    expect(back.log).toContain(`(it stays in ${store}/releases/v2)`);
    await withStore({ command: 'rollback', 'rollback-to': 'v2' });
    await withStore({ release: 'v3', migrate: MIGRATE });
    const keepData = await withStore({ command: 'rollback', 'rollback-data': 'false' });
    expect(keepData.log).toContain(`rollback-data is false: ${store}/current stays at v3`);
    for (const { log, host } of [first, failed, back, keepData]) expect(`${log}\n${host.error}`).not.toMatch(/data\/(current|releases)/);

    // Inside deploy-path, messages name it relative to deploy-path.
    const inside = newSite();
    const nested = await run(inside, { 'data-path': `${inside}/var/db`, release: 'v1', migrate: MIGRATE });
    expect(nested.log).toContain('current -> releases/v1, var/db/current -> releases/v1');
  });

  test('a release without migrate uses the data release that is current', async () => {
    const site = newSite();
    await run(site, { release: 'v1', migrate: MIGRATE });
    const plain = await run(site, { release: 'v2', build: 'printf %s "$TAGFLIP_DATA_PATH" > data-path' });
    expect(plain.result.status).toBe('deployed');
    expect(manifest(site, 'v2').dataRelease).toBe('v1');
    expect(link(join(site, 'data/current'))).toBe('releases/v1');
    expect(read(join(site, 'current/data-path'))).toBe(`${site}/data/current`);
  });

  test('rollback across a migration restores the old data release; with rollback-data false it does not', async () => {
    const site = newSite();
    await run(site, { release: 'v1', migrate: MIGRATE });
    await run(site, { release: 'v2', migrate: MIGRATE });

    const back = await run(site, { command: 'rollback' });
    expect(back.result).toMatchObject({ status: 'rolled-back', release: 'v1', dataRelease: 'v1', previousDataRelease: 'v2' });
    expect(back.log).toMatch(/warning: .*data written since the migration to v2 is not in the restored data release v1/);
    expect(link(join(site, 'data/current'))).toBe('releases/v1');

    await run(site, { command: 'rollback', 'rollback-to': 'v2' });
    expect(link(join(site, 'data/current'))).toBe('releases/v2');
    await run(site, { release: 'v3', migrate: MIGRATE });
    const keepData = await run(site, { command: 'rollback', 'rollback-data': 'false' });
    expect(keepData.result).toMatchObject({ status: 'rolled-back', release: 'v2', dataRelease: 'v3' });
    expect(link(join(site, 'current'))).toBe('releases/v2');
    expect(link(join(site, 'data/current'))).toBe('releases/v3');
  });

  test('a live writer appending under data/current during a deploy without migrate is never interrupted', async () => {
    const site = newSite();
    await run(site, { release: 'v1', migrate: MIGRATE });
    const stop = join(site, 'stop-writer');
    // Opens data/current/journal afresh for every line, as a server writing a log would.
    const writer = spawn('sh', ['-c', 'n=0; while [ ! -e "$1" ]; do n=$((n+1)); echo "$n" >> "$2/current/journal" || echo FAIL; done; echo "$n"', 'writer', stop, join(site, 'data')]);
    let out = '';
    writer.stdout.on('data', (chunk) => (out += chunk));
    const exited = new Promise((resolve) => writer.on('close', resolve));
    for (const release of ['v2', 'v3', 'v4']) expect((await run(site, { release })).result.status).toBe('deployed');
    writeFileSync(stop, '');
    await exited;
    expect(out).not.toContain('FAIL');
    const count = Number(out.trim());
    const lines = read(join(site, 'data/current/journal')).trim().split('\n');
    expect(lines).toHaveLength(count);
    expect(lines.at(-1)).toBe(String(count));
  });

  test('prune keeps the data releases kept releases use, and removes the others', async () => {
    const site = newSite();
    for (const release of ['v1', 'v2', 'v3']) await run(site, { release, migrate: MIGRATE, 'keep-releases': '1' });
    // Kept: v3 (current, data v3) and v2 (rollback target, data v2); v1 and its data go.
    expect(readdirSync(join(site, 'releases')).sort()).toEqual(['v2', 'v3']);
    expect(readdirSync(join(site, 'data/releases')).sort()).toEqual(['v2', 'v3']);
    await run(site, { release: 'v4', 'keep-releases': '1' }); // no migrate: v4 uses data v3
    expect(readdirSync(join(site, 'releases')).sort()).toEqual(['v3', 'v4']);
    expect(readdirSync(join(site, 'data/releases')).sort()).toEqual(['v3']);
    expect(link(join(site, 'data/current'))).toBe('releases/v3');
    mkdirSync(join(site, 'data/releases/stray'));
    await run(site, { command: 'prune', 'keep-releases': '1' });
    expect(readdirSync(join(site, 'data/releases')).sort()).toEqual(['v3']);
  });
});
