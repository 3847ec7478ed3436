/** What the deploy tests over SSH share: a real OpenSSH sshd and a repository with tags, started for the file; a new site for each test. */
import type { AddressInfo, Server } from 'node:net';
import { mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployRootFor, gitRepoWithTags, runTagflip } from './fixtures.js';
import { type TestSshd, startSshd } from './sshd.js';

export let sshd: TestSshd;
export let repo: string;
let root: string;
let siteCount = 0;

export const ODD_TAG = 'v1.2.3-rc.1+build.5';

/** Starts the sshd and the repository (with `tags`) before the calling file's tests, and stops the sshd after them. */
export function startDeploySuite(tags: readonly string[] = ['v1', 'v2', 'v3', ODD_TAG]): void {
  beforeAll(async () => {
    sshd = await startSshd();
    repo = gitRepoWithTags([...tags], sshd.user);
    root = deployRootFor(sshd.user);
  });

  afterAll(async () => {
    await sshd?.stop();
  });
}

export function newSite(): string {
  siteCount += 1;
  return join(root, `site${siteCount}`);
}

/** Listen with `proxy` on a free loopback port; the CLI's login arguments through it (a key and known_hosts for that port, in `home`). */
export async function throughProxy(proxy: Server, label: string): Promise<{ home: string; login: string[] }> {
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  const home = mkdtempSync(join(tmpdir(), `tagflip-${label}-`));
  writeFileSync(join(home, 'key'), sshd.privateKey, { mode: 0o600 });
  writeFileSync(join(home, 'known_hosts'), sshd.knownHosts.replaceAll(`]:${sshd.port} `, `]:${port} `));
  return { home, login: ['--hosts', `${sshd.user}@127.0.0.1:${port}`, '--private-key', `@${join(home, 'key')}`, '--known-hosts', `@${join(home, 'known_hosts')}`] };
}

export const deploy = (site: string, inputs: Record<string, string>) => runTagflip(sshd, site, repo, { build: 'sh build.sh', ...inputs });

export const current = (site: string) => readlinkSync(join(site, 'current'));
export const manifest = (site: string, release: string) => JSON.parse(readFileSync(join(site, '.tagflip/releases', `${release}.json`), 'utf8'));
export const history = (site: string) =>
  readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
