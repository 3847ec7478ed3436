import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderStatus } from '../../src/core/result.js';
import type { RunContext } from '../../src/core/inputs.js';
import { deployRootFor, gitRepoWithTags, runTagflip, loginFiles } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

// Rollback, status, retention and the deploy lock, over SSH to a real sshd.
let sshd: TestSshd;
let repo: string;
let root: string;
let sites = 0;

const TAGS = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6'];

beforeAll(async () => {
  sshd = await startSshd();
  repo = gitRepoWithTags(TAGS, sshd.user);
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

const newSite = () => join(root, `site${++sites}`);

const run = (site: string, inputs: Record<string, string>, context: RunContext = {}) =>
  runTagflip(sshd, site, repo, { build: 'sh build.sh', ...inputs }, context);

const deploy = (site: string, release: string, inputs: Record<string, string> = {}) => run(site, { release, ...inputs });
const rollback = (site: string, inputs: Record<string, string> = {}) => run(site, { command: 'rollback', ...inputs });

const current = (site: string) => readlinkSync(join(site, 'current'));
const state = (site: string, release: string) => JSON.parse(readFileSync(join(site, '.tagflip/releases', `${release}.json`), 'utf8')).state;
const dirs = (site: string) => readdirSync(join(site, 'releases')).sort();
const history = (site: string) =>
  readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

describe('rollback', () => {
  test('v1, v2, v3 → rollback → v2 → rollback → v1 → rollback-to v3', async () => {
    const site = newSite();
    for (const tag of ['v1', 'v2', 'v3']) expect((await deploy(site, tag)).result.status).toBe('deployed');

    const first = await rollback(site);
    expect(first.result).toMatchObject({ status: 'rolled-back', release: 'v2', previousRelease: 'v3', releasePath: `${site}/releases/v2` });
    expect(current(site)).toBe('releases/v2');
    expect(state(site, 'v3')).toBe('rolled-back');
    expect(state(site, 'v2')).toBe('active');

    // Again: back to v1, not forth to v3 (rolled-back releases are never picked).
    const second = await rollback(site);
    expect(second.result).toMatchObject({ status: 'rolled-back', release: 'v1', previousRelease: 'v2' });
    expect(current(site)).toBe('releases/v1');
    expect(state(site, 'v3')).toBe('rolled-back');

    // Nothing older is left: a bare rollback is refused and changes nothing.
    const none = await rollback(site);
    expect(none.result.status).toBe('failed');
    expect(none.host.error).toMatch(/there is no previous release to roll back to from v1/);
    expect(current(site)).toBe('releases/v1');

    // The user can still ask for v3 by name.
    const named = await rollback(site, { 'rollback-to': 'v3' });
    expect(named.result).toMatchObject({ status: 'rolled-back', release: 'v3', previousRelease: 'v1' });
    expect(current(site)).toBe('releases/v3');
    expect(readFileSync(join(site, 'current/built'), 'utf8')).toBe('v3\n');
    expect(dirs(site)).toEqual(['v1', 'v2', 'v3']);
    expect(history(site).map((entry) => `${entry.event}:${entry.release}`)).toEqual([
      'deploy:v1',
      'deploy:v2',
      'deploy:v3',
      'rollback:v2',
      'rollback:v1',
      'rollback:v3',
    ]);
  });

  test('a rollback to a missing, failed or half-built release is refused and changes nothing', async () => {
    const site = newSite();
    await deploy(site, 'v1');
    await deploy(site, 'v2');
    await deploy(site, 'v3', { build: 'exit 4' });
    // A half-built v4: directory and a `building` record, as an interrupted run leaves them.
    mkdirSync(join(site, 'releases/v4'));
    writeFileSync(join(site, '.tagflip/releases/v4.json'), JSON.stringify({ release: 'v4', state: 'building', started: '2024-01-01T00:00:00Z' }));
    const before = readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8');

    for (const [target, why] of [
      ['v9', 'v9 is not on the host'],
      ['v3', 'v3 is not on the host'],
      ['v4', 'v4 is not complete (state: building)'],
    ]) {
      const { result, host } = await rollback(site, { 'rollback-to': target });
      expect(result.status).toBe('failed');
      expect(host.error).toContain(`rollback-to ${why}`);
      expect(host.error).toContain('releases that can be rolled back to: v1');
      expect(current(site)).toBe('releases/v2');
    }
    expect(readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8')).toBe(before);
    expect(state(site, 'v2')).toBe('active');
  });

  test('dry-run rollback changes nothing', async () => {
    const site = newSite();
    await deploy(site, 'v1');
    await deploy(site, 'v2');
    const { result, log } = await rollback(site, { 'dry-run': 'true' });
    expect(result.status).toBe('dry-run');
    expect(log).toContain('would flip current to releases/v1');
    expect(current(site)).toBe('releases/v2');
  });
});

describe('retention', () => {
  test('keep-releases 2 over 6 deploys with a failure and a rollback in between', async () => {
    const site = newSite();
    const keep = { 'keep-releases': '2' };
    await deploy(site, 'v1', keep);
    await deploy(site, 'v2', keep);
    expect(dirs(site)).toEqual(['v1', 'v2']);
    const third = await deploy(site, 'v3', keep);
    expect(third.host.removed).toEqual(['v1']);
    expect(dirs(site)).toEqual(['v2', 'v3']);

    expect((await deploy(site, 'v4', { ...keep, build: 'exit 1' })).result.status).toBe('failed');
    expect(dirs(site)).toEqual(['v2', 'v3']);

    expect((await rollback(site, keep)).result.release).toBe('v2');
    expect(dirs(site)).toEqual(['v2', 'v3']);

    // v2 is the rollback target of v5: kept although two newer releases exist.
    await deploy(site, 'v5', keep);
    expect(current(site)).toBe('releases/v5');
    expect(dirs(site)).toEqual(['v2', 'v3', 'v5']);

    const sixth = await deploy(site, 'v6', keep);
    expect(dirs(site)).toEqual(['v5', 'v6']);
    expect(sixth.host.removed).toEqual(['v2', 'v3']);
    // Each kept release's record and its content (drift); nothing of the others.
    expect(readdirSync(join(site, '.tagflip/releases')).sort()).toEqual(['v5.json', 'v5.tree', 'v6.json', 'v6.tree']);
    const prunes = history(site).filter((entry) => entry.event === 'prune');
    // The failed v4 left only its record; the next successful deploy's prune took it.
    expect(prunes.map((entry) => entry.removed)).toEqual([['v1'], ['v4'], ['v2', 'v3']]);
  });

  test('prune never removes current or the rollback target, even when they are the oldest', async () => {
    const site = newSite();
    for (const tag of ['v1', 'v2', 'v3']) await deploy(site, tag);
    await rollback(site, { 'rollback-to': 'v1' }); // current is now the oldest release

    const { result, host } = await run(site, { command: 'prune', 'keep-releases': '1' });
    expect(result.status).toBe('unchanged');
    expect(host.removed).toEqual(['v2']);
    expect(dirs(site)).toEqual(['v1', 'v3']);
    expect(current(site)).toBe('releases/v1');
  });

  test('keep-releases 0 or garbage is refused before connecting', async () => {
    await expect(run(newSite(), { command: 'prune', 'keep-releases': '0' })).rejects.toThrow(/keep-releases: '0' is not a number of releases to keep/);
    await expect(run(newSite(), { command: 'prune', 'keep-releases': 'all' })).rejects.toThrow(/keep-releases/);
  });
});

describe('status', () => {
  test('text and JSON, field by field', async () => {
    const site = newSite();
    const context = { actor: 'octocat', runUrl: 'https://github.com/acme/site/actions/runs/7' };
    await deploy(site, 'v1');
    await run(site, { release: 'v2' }, context);
    await deploy(site, 'v3', { build: 'exit 2' });

    const { result, host } = await run(site, { command: 'status' });
    expect(result).toMatchObject({ status: 'unchanged', release: 'v2', previousRelease: 'v1', releasePath: `${site}/releases/v2` });
    const report = host.report!;
    expect(report.current).toBe('v2');
    expect(report.rollbackTarget).toBe('v1');
    expect(report.lockHolder).toBeNull();
    expect(report.releases.map((release) => [release.release, release.state, release.current, release.rollbackTarget])).toEqual([
      ['v3', 'failed', false, false],
      ['v2', 'active', true, false],
      ['v1', 'inactive', false, true],
    ]);
    const v2 = report.releases.find((release) => release.release === 'v2')!;
    expect(v2.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(v2.actor).toBe('octocat');
    expect(v2.finished).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // The front ends print this report (the CLI on stdout, the action in its log).
    const shown = renderStatus(host).join('\n');
    expect(shown).toContain(`current v2, rollback target v1`);
    expect(shown).toContain('not locked');
    expect(shown).toMatch(/ {2}v2 +active +[0-9a-f]{12} {2}\S+Z {2}octocat {2}<- current/);
    expect(shown).toMatch(/ {2}v1 +inactive .*<- rollback target/);
  });
});

describe('the deploy lock', () => {
  test('two deploys at once run one after the other; both are recorded', async () => {
    const site = newSite();
    await deploy(site, 'v1');
    const [a, b] = await Promise.all([deploy(site, 'v2', { build: 'sleep 1; sh build.sh' }), deploy(site, 'v3', { build: 'sleep 1; sh build.sh' })]);
    expect([a.result.status, b.result.status]).toEqual(['deployed', 'deployed']);
    const waited = [a, b].filter((outcome) => outcome.log.includes('waiting up to 300 s for the lock held by deploy'));
    expect(waited).toHaveLength(1);

    const deploys = history(site).filter((entry) => entry.event === 'deploy');
    expect(deploys.map((entry) => entry.release)).toHaveLength(3);
    const [, second, third] = deploys;
    // The second to run saw the first one's release as previous: they did not overlap.
    expect(third.previousRelease).toBe(second.release);
    expect(current(site)).toBe(`releases/${third.release}`);
    expect(state(site, second.release)).toBe('inactive');
  });

  test('with a short lock-timeout the second fails and names the holder', async () => {
    const site = newSite();
    const holder = { actor: 'alice', runUrl: 'https://github.com/acme/site/actions/runs/1' };
    const slow = run(site, { release: 'v1', build: `touch ${site}.building; sleep 4; sh build.sh` }, holder);
    const marker = `${site}.building`;
    while (!existsSync(marker)) await new Promise((resolve) => setTimeout(resolve, 100));

    const second = await run(site, { release: 'v2', 'lock-timeout': '1' }, { actor: 'bob' });
    expect(second.result.status).toBe('failed');
    expect(second.host.error).toContain('lock failed: another run held the lock');
    expect(second.host.error).toContain('lock-timeout (1 s)');
    expect(second.host.error).toContain('deploy v1 by alice (https://github.com/acme/site/actions/runs/1), since 20');

    // status names the holder too, without waiting for it.
    const status = await run(site, { command: 'status' });
    expect(status.host.report?.lockHolder).toMatchObject({ command: 'deploy', release: 'v1', actor: 'alice' });

    expect((await slow).result.status).toBe('deployed');
    expect(current(site)).toBe('releases/v1');
  });

  test('a deploy killed with SIGKILL mid-build releases the lock and stops its build within seconds', async () => {
    const site = newSite();
    await deploy(site, 'v1');
    const files = loginFiles(sshd, 'tagflip-kill-');
    const marker = `${site}.started`;
    const child = spawn(
      process.execPath,
      [
        'bin/tagflip.js',
        'deploy',
        '--hosts', `${sshd.user}@${sshd.host}:${sshd.port}`,
        '--private-key', `@${join(files, 'key')}`,
        '--known-hosts', `@${join(files, 'known_hosts')}`,
        '--deploy-path', site,
        '--release', 'v2',
        '--build', `touch ${marker}; sleep 120 & sleep 120`,
      ],
      { stdio: 'ignore' },
    );
    while (!existsSync(marker)) await new Promise((resolve) => setTimeout(resolve, 100));
    child.kill('SIGKILL');

    const started = Date.now();
    const next = await deploy(site, 'v3', { 'lock-timeout': '20' });
    expect(next.host.error).toBe('');
    expect(next.result.status).toBe('deployed');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(current(site)).toBe('releases/v3');
    // The killed deploy's build is gone, and so is its half-built release.
    const leftovers = spawnSync('pgrep', ['-u', sshd.user, '-f', 'sleep 120']).stdout.toString();
    expect(leftovers).toBe('');
    expect(dirs(site)).toEqual(['v1', 'v3']);
  });
});
