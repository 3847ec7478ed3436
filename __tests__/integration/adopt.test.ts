import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployRootFor, gitRepoWithTags, runTagflip } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';
import { renderStatus } from '../../src/core/result.js';

// Adopting a site deployed by hand (or by Capistrano), over SSH to a real sshd:
// the release current before tagflip's first deploy is never lost, and
// directories tagflip has no record of are never removed.
let sshd: TestSshd;
let repo: string;
let root: string;
let sites = 0;

const REVISION = '0123456789abcdef0123456789abcdef01234567';

beforeAll(async () => {
  sshd = await startSshd();
  repo = gitRepoWithTags(['r1', 'r2', 'r3'], sshd.user);
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

/** current -> releases/vhand (with Capistrano's REVISION), releases/old-by-hand, shared/ and data/: no .tagflip at all. */
function handSite(): string {
  const site = join(root, `site${++sites}`);
  for (const release of ['vhand', 'old-by-hand']) {
    mkdirSync(join(site, 'releases', release), { recursive: true });
    writeFileSync(join(site, 'releases', release, 'built'), `${release}\n`);
  }
  writeFileSync(join(site, 'releases/vhand/REVISION'), `${REVISION}\n`);
  mkdirSync(join(site, 'shared/log'), { recursive: true });
  mkdirSync(join(site, 'data/releases/vhand'), { recursive: true });
  symlinkSync('releases/vhand', join(site, 'data/current'));
  symlinkSync('releases/vhand', join(site, 'current'));
  execFileSync('chown', ['-R', sshd.user, site]);
  return site;
}

const run = (site: string, inputs: Record<string, string>) => runTagflip(sshd, site, repo, { build: 'sh build.sh', 'keep-releases': '1', ...inputs });
const deploy = (site: string, release: string, inputs: Record<string, string> = {}) => run(site, { release, ...inputs });

const current = (site: string) => readlinkSync(join(site, 'current'));
const served = (site: string) => readFileSync(join(site, 'current/built'), 'utf8').trim();
const record = (site: string, release: string) => JSON.parse(readFileSync(join(site, '.tagflip/releases', `${release}.json`), 'utf8'));
const dirs = (site: string) => readdirSync(join(site, 'releases')).sort();
const count = (text: string, part: string) => text.split(part).length - 1;

describe('a site deployed by hand', () => {
  test('first deploy adopts vhand; status, a bare rollback, and retention from then on', async () => {
    const site = handSite();

    const first = await deploy(site, 'r1');
    expect(first.result).toMatchObject({ status: 'deployed', release: 'r1', previousRelease: 'vhand' });
    expect(dirs(site)).toEqual(['old-by-hand', 'r1', 'vhand']);
    expect(record(site, 'vhand')).toMatchObject({
      release: 'vhand',
      state: 'inactive',
      commit: REVISION,
      dataRelease: 'vhand',
      started: '',
      finished: '',
      adopted: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    });
    expect(first.log).toContain('adopted releases/vhand');
    expect(count(first.log, 'left releases/old-by-hand alone')).toBe(1);

    const status = await run(site, { command: 'status' });
    expect(status.host.report!.releases.map((release) => [release.release, release.state, release.adopted, release.rollbackTarget])).toEqual([
      ['r1', 'active', false, false],
      ['vhand', 'inactive', true, true],
      ['old-by-hand', 'unknown', false, false],
    ]);
    expect(renderStatus(status.host).join('\n')).toMatch(/ {2}old-by-hand +unknown +- +- +-$/m);

    const back = await run(site, { command: 'rollback' });
    expect(back.result).toMatchObject({ status: 'rolled-back', release: 'vhand', previousRelease: 'r1' });
    expect([current(site), served(site)]).toEqual(['releases/vhand', 'vhand']);
    expect(record(site, 'vhand').state).toBe('active');

    // A failed build leaves only its record.
    expect((await deploy(site, 'broken', { ref: 'r1', build: 'exit 3' })).result.status).toBe('failed');
    // r2: vhand is its rollback target and stays; r1 (rolled-back, older) goes, and the failed record.
    const second = await deploy(site, 'r2');
    expect(second.result).toMatchObject({ status: 'deployed', previousRelease: 'vhand' });
    expect(dirs(site)).toEqual(['old-by-hand', 'r2', 'vhand']);
    expect(second.host.removed).toEqual(['r1']);
    expect(second.log).toContain('removed releases/r1 (keep-releases: 1)');
    expect(second.log).toContain('removed the record of broken (its directory was already gone');
    expect(second.log).not.toContain('releases/broken');
    // r3: vhand is now old and protects nothing; retention takes it like any release.
    const third = await deploy(site, 'r3');
    expect(third.host.removed).toEqual(['vhand']);
    expect(dirs(site)).toEqual(['old-by-hand', 'r2', 'r3']);

    const prune = await run(site, { command: 'prune' });
    expect(prune.host.removed ?? []).toEqual([]);
    expect(count(prune.log, 'left releases/old-by-hand alone')).toBe(1);
    expect(dirs(site)).toEqual(['old-by-hand', 'r2', 'r3']);

    const history = readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(history.filter((entry) => entry.event !== 'prune').map((entry) => `${entry.event}:${entry.release}`)).toEqual([
      'adopt:vhand',
      'deploy:r1',
      'rollback:vhand',
      'deploy:broken',
      'deploy:r2',
      'deploy:r3',
    ]);
  });

  test('verify fails on the first deploy: flipped back to the adopted release', async () => {
    const site = handSite();
    const { result } = await deploy(site, 'r1', { verify: 'false' });
    expect(result).toMatchObject({ status: 'rolled-back', release: 'vhand', previousRelease: 'r1' });
    expect([current(site), served(site)]).toEqual(['releases/vhand', 'vhand']);
    expect(record(site, 'vhand')).toMatchObject({ state: 'active', adopted: expect.any(String) });
    expect(record(site, 'r1').state).toBe('rolled-back');
    expect(dirs(site)).toEqual(['old-by-hand', 'r1', 'vhand']);
  });

  test('prune before any deploy: removes nothing, says what it left alone', async () => {
    const site = handSite();
    const { host, log } = await run(site, { command: 'prune' });
    expect(host).toMatchObject({ status: 'unchanged', release: 'vhand' });
    expect(log).toContain('left releases/old-by-hand, releases/vhand alone');
    expect(dirs(site)).toEqual(['old-by-hand', 'vhand']);
  });
});
