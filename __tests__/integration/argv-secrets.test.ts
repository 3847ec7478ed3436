/**
 * Nothing of a run's secrets in any process argument on the host (issue 20,
 * item 4): the run's tag authenticates control lines (session.ts), so another
 * user who reads it from /proc/<pid>/cmdline can forge them. `tagflip-spy`,
 * another local user, reads every process's command line as fast as it can
 * (python3, a busy loop) while tagflip deploys from git, re-deploys an upload
 * (the facts then send the current release's content list), rolls back, and
 * deploys to a fleet of two hosts; afterwards neither a tag nor an env value
 * may be among what it saw, and what it saw must include each run's hooks (the
 * spy was looking). The tags are read from what tagflip wrote to each shell.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createTransport, runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { deployRootFor, gitRepoWithTags, openTempDir, recordingLogger } from '../support/fixtures.js';
import { type TestFleet, startFleet } from '../support/fleet.js';
import { RecordingTransport } from '../support/shell-taps.js';
import { ensureUser } from '../support/login-user.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

const SPY = 'tagflip-spy';

/** The spy: every command line it finds under /proc, each once, a line each (NULs as spaces). */
const POLLER = `
import os, sys
seen = set()
while True:
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/' + pid + '/cmdline', 'rb') as f:
                line = f.read()
        except OSError:
            continue
        if line and line not in seen:
            seen.add(line)
            sys.stdout.write(line.replace(b'\\0', b' ').decode('utf-8', 'replace') + '\\n')
            sys.stdout.flush()
`;

class Spy {
  private readonly child: ChildProcess;
  private text = '';

  constructor() {
    // A process group of its own, so that stop() ends it whatever it runs.
    this.child = spawn('runuser', ['-u', SPY, '--', '/usr/bin/python3', '-c', POLLER], { cwd: '/', detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.text += chunk));
  }

  /** Everything seen so far. */
  get seen(): string[] {
    return this.text.split('\n').map((line) => line.trimEnd());
  }

  stop(): void {
    process.kill(-this.child.pid!, 'SIGKILL');
  }
}

const PASSWORD = `hunter2-${randomBytes(8).toString('hex')}`;
const TOKEN = `t0ken-${randomBytes(8).toString('hex')}`;
const ENV = { env: `DB_PASSWORD=${PASSWORD}`, 'secret-env': `API_TOKEN=${TOKEN}` };

let sshd: TestSshd;
let fleet: TestFleet;
let spy: Spy;
let repo: string;
let root: string;
/** Every run's tag. */
const tags: string[] = [];

beforeAll(async () => {
  [sshd, fleet] = await Promise.all([startSshd(), startFleet(2, 'tagflip-argv-fleet-'), ensureUser(SPY)]);
  repo = gitRepoWithTags(['v1', 'v2'], sshd.user);
  root = deployRootFor(sshd.user);
  spy = new Spy();
}, 60_000);

afterAll(async () => {
  spy?.stop();
  await Promise.all([sshd?.stop(), fleet?.stop()]);
});

/** Run tagflip in-process with `inputs`; notes the tags of its sessions. */
async function run(inputs: Record<string, string>) {
  const settings = parseSettings(inputs);
  const transports = settings.targets.map((target) => new RecordingTransport(createTransport(settings, target)));
  const logger = recordingLogger();
  const result = await runCommand(settings, logger, transports);
  for (const transport of transports) {
    const tag = /^tf_tag='(tagflip-[0-9a-f]{24})'$/m.exec(transport.written)?.[1];
    expect(tag).toBeDefined();
    tags.push(tag!);
  }
  expect([result.status, logger.text()]).toEqual([expect.stringMatching(/^(deployed|rolled-back)$/), expect.any(String)]);
  return logger.text();
}

const onSshd = (site: string) => ({ hosts: `${sshd.user}@${sshd.host}:${sshd.port}`, 'private-key': sshd.privateKey, 'known-hosts': sshd.knownHosts, 'deploy-path': site, ...ENV });

/** A build the spy sees as `sh -c <build>`, named by `mark`, that fails without the env. */
const build = (mark: string) => `[ -n "$DB_PASSWORD" ] && [ -n "$API_TOKEN" ] && sleep 0.3 && : ${mark}`;

/** A tree of `count` small files: its content list has a line each. */
function manyFiles(count: number): string {
  const tree = join(openTempDir('tagflip-argv-tree-'), 'app');
  for (let dir = 0; dir < count / 500; dir++) {
    mkdirSync(join(tree, `d${dir}`), { recursive: true });
    for (let file = 0; file < 500; file++) writeFileSync(join(tree, `d${dir}`, `f${file}.txt`), `${dir}/${file}\n`);
  }
  return tree;
}

test('git deploys, upload re-deploys, a rollback and a fleet: the spy saw each run, and never a tag or an env value', async () => {
  const site = join(root, 'git');
  await run({ ...onSshd(site), repository: repo, release: 'v1', build: build('mark-git-v1') });
  await run({ ...onSshd(site), repository: repo, release: 'v2', build: build('mark-git-v2') });
  await run({ ...onSshd(site), command: 'rollback', activate: build('mark-rollback') });

  // The second and third deploys start from a current release with a content list of 20,000 lines.
  const tree = manyFiles(20_000);
  const uploaded = join(root, 'upload');
  await run({ ...onSshd(uploaded), upload: tree, release: 'u1', build: build('mark-upload-u1') });
  writeFileSync(join(tree, 'd0/f0.txt'), 'changed\n');
  const u2 = await run({ ...onSshd(uploaded), upload: tree, release: 'u2', build: build('mark-upload-u2') });
  writeFileSync(join(tree, 'd0/f1.txt'), 'changed\n');
  const u3 = await run({ ...onSshd(uploaded), upload: tree, release: 'u3', build: build('mark-upload-u3') });
  // The host sent the content list: only the changed file crossed the network.
  for (const log of [u2, u3]) expect(log).toMatch(/: 20000 files \(19999 unchanged, copied on the host\)/);

  await run({
    hosts: fleet.hosts.map((host) => host.entry).join(', '),
    'private-key': fleet.hosts[0].sshd.privateKey,
    'known-hosts': fleet.hosts.map((host) => host.sshd.knownHosts).join(''),
    'deploy-path': join(fleet.srv, 'site'),
    repository: repo,
    release: 'v1',
    build: build('mark-fleet'),
    activate: build('mark-fleet-activate'),
    ...ENV,
  });
  // The spy's last reads reach its output.
  await new Promise((resolve) => setTimeout(resolve, 200));

  const seen = spy.seen;
  if (process.env.DEBUG_TESTS) console.log(seen.filter((line) => /mark|tagflip-[0-9a-f]{24}/.test(line)).join('\n'));
  // It was looking: it saw every run's hook, as sh -c with its text.
  for (const mark of ['mark-git-v1', 'mark-git-v2', 'mark-rollback', 'mark-upload-u1', 'mark-upload-u2', 'mark-upload-u3', 'mark-fleet', 'mark-fleet-activate']) {
    expect([mark, seen.some((line) => /^(\S*\/)?sh -c /.test(line) && line.endsWith(`: ${mark}`))]).toEqual([mark, true]);
  }
  expect(tags).toHaveLength(8);
  expect(new Set(tags).size).toBe(8);
  const leaks = seen.filter((line) => [...tags, PASSWORD, TOKEN].some((secret) => line.includes(secret)));
  expect(leaks).toEqual([]);
}, 240_000);
