import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, lchownSync, mkdirSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { deployRootFor, runTagflip } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

// `current` relinked by hand, the way operators write it (issue 10): whatever
// the form, tagflip knows which release serves, never removes it, and its own
// next flip writes the link back as `releases/<name>`. A `current` that leads
// outside releases/ is refused by prune, deploy and rollback alike, with the
// remedy. Over a real sshd; releases are build-only (no repository), for speed.
let sshd: TestSshd;
let root: string;
let owner: { uid: number; gid: number };
let sites = 0;

beforeAll(async () => {
  sshd = await startSshd();
  root = deployRootFor(sshd.user);
  const id = (flag: string) => Number(execFileSync('id', [flag, sshd.user]).toString().trim());
  owner = { uid: id('-u'), gid: id('-g') };
});

afterAll(async () => {
  await sshd?.stop();
});

const newSite = () => join(root, `site${++sites}`);

const run = (site: string, inputs: Record<string, string>) => runTagflip(sshd, site, '', { repository: '', build: 'true', 'keep-releases': '10', ...inputs });

/** What an operator types: `ln -sfn TARGET current`, as the deploy user. */
function relink(site: string, target: string): void {
  rmSync(join(site, 'current'));
  symlinkSync(target, join(site, 'current'));
  lchownSync(join(site, 'current'), owner.uid, owner.gid);
}

const dirs = (site: string) => readdirSync(join(site, 'releases')).sort();
const serving = (site: string) => realpathSync(join(site, 'current'));

/** A site with a symlink to it beside it, for the form that goes through one. */
function aliasOf(site: string): string {
  const alias = `${site}-alias`;
  if (!existsSync(alias)) symlinkSync(site, alias);
  return alias;
}

const FORMS: [string, (site: string, release: string) => string][] = [
  ['absolute', (site, release) => `${site}/releases/${release}`],
  ['relative', (_site, release) => `releases/${release}`],
  ['./-prefixed', (_site, release) => `./releases/${release}`],
  ['with a trailing slash', (_site, release) => `releases/${release}/`],
  ['absolute, through a symlink to deploy-path', (site, release) => `${aliasOf(site)}/releases/${release}`],
];

describe.each(FORMS)('current written %s', (_form, form) => {
  test('prune, deploy and rollback know the release it leads to, never remove it, and rewrite the link', async () => {
    const site = newSite();
    for (const release of ['v1', 'v2', 'v3']) expect((await run(site, { release })).host.status).toBe('deployed');

    // The oldest release serves again, by hand.
    relink(site, form(site, 'v1'));
    expect((await run(site, { command: 'status' })).host).toMatchObject({ status: 'unchanged', release: 'v1' });

    // prune, keep 1: v3 is the newest, v1 serves; only v2 goes. The link is left as written.
    const pruned = await run(site, { command: 'prune', 'keep-releases': '1' });
    expect([pruned.host.status, pruned.host.removed]).toEqual(['unchanged', ['v2']]);
    expect(dirs(site)).toEqual(['v1', 'v3']);
    expect(readlinkSync(join(site, 'current'))).toBe(form(site, 'v1'));
    expect(serving(site)).toBe(realpathSync(join(site, 'releases/v1')));

    // deploy, keep 1, retention riding the flip: v1 served until the flip, so it
    // stays for the flip back (and v3, the history's rollback target, stays too).
    const deployed = await run(site, { release: 'v4', 'keep-releases': '1' });
    expect(deployed.host).toMatchObject({ status: 'deployed', release: 'v4', previousRelease: 'v1' });
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v4');
    expect(dirs(site)).toEqual(['v1', 'v3', 'v4']);

    // rollback from a hand-written link to v4: to the history's target, v3, linked
    // tagflip's way; retention riding that flip keeps v4, flipped away from.
    relink(site, form(site, 'v4'));
    const rolled = await run(site, { command: 'rollback', 'keep-releases': '1' });
    expect(rolled.host).toMatchObject({ status: 'rolled-back', release: 'v3' });
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v3');
    expect(dirs(site)).toEqual(expect.arrayContaining(['v3', 'v4']));
  });
});

test('current leading outside releases/: prune, deploy and rollback refuse, naming the link, its target and the remedy; nothing changes', async () => {
  const site = newSite();
  for (const release of ['v1', 'v2']) await run(site, { release });
  const elsewhere = join(site, 'elsewhere');
  mkdirSync(elsewhere);
  relink(site, elsewhere);
  const refusal = `current points to '${elsewhere}', which is not a release directory (releases/<name> in deploy-path)`;
  const remedy = 'ln -sfn releases/<name> current';

  const pruned = await run(site, { command: 'prune', 'keep-releases': '1' });
  expect(pruned.host.status).toBe('failed');
  expect(pruned.host.error).toContain(`${refusal}; nothing was removed`);
  expect(pruned.host.error).toContain(remedy);

  const deployed = await run(site, { release: 'v3' });
  expect(deployed.host.status).toBe('failed');
  expect(deployed.host.error).toContain(`${refusal}; nothing was built or flipped`);

  const rolled = await run(site, { command: 'rollback', 'rollback-to': 'v1' });
  expect(rolled.host.status).toBe('failed');
  expect(rolled.host.error).toContain(`${refusal}; nothing was flipped`);

  const status = await run(site, { command: 'status' });
  expect(status.host).toMatchObject({ status: 'unchanged', release: '' });
  expect(status.log).toContain(`warning: ${sshd.user}@${sshd.host}:${sshd.port}: ${refusal}; deploy, rollback and prune refuse to run until it is`);

  expect(dirs(site)).toEqual(['v1', 'v2']);
  expect(readlinkSync(join(site, 'current'))).toBe(elsewhere);
});
