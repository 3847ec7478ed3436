import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DistRun, runDistAction } from '../support/dist-action.js';
import { gitRepoWithTags, openTempDir } from '../support/fixtures.js';
import { type FleetHost, type TestFleet, startFleet } from '../support/fleet.js';
import { runnerLog } from '../support/runner-commands.js';

// The Actions log of the bundled action, run as the runner runs it against
// real sshd: what the runner shows (groups, annotations) and what it reads
// (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY). Groups never nest or stay empty, each
// failure is one ::error::, and a file the runner cannot take is one short
// error, not a stack dump.
let fleet: TestFleet;
let hosts: FleetHost[];
let repo: string;
let sites = 0;

beforeAll(async () => {
  fleet = await startFleet(2, 'tagflip-runner-log-');
  hosts = fleet.hosts;
  repo = gitRepoWithTags(['v1', 'v2'], hosts[0].sshd.user);
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

function newSite(): string {
  sites += 1;
  return `site${sites}`;
}

const inputsFor = (members: FleetHost[], site: string, inputs: Record<string, string> = {}) => ({
  hosts: members.map((host) => host.entry).join('\n'),
  'private-key': members[0].sshd.privateKey,
  'known-hosts': members.map((host) => host.sshd.knownHosts).join(''),
  'deploy-path': join(fleet.srv, site),
  repository: repo,
  build: 'sh build.sh',
  ...inputs,
});

const current = (host: FleetHost, site: string) => readlinkSync(join(host.files, site, 'current'));

/** The log folds right: every group has lines, none is opened inside another, each ends. */
function expectWellFormed(run: DistRun) {
  const log = runnerLog(run.stdout);
  expect(log.problems).toEqual([]);
  return log;
}

const groupNamed = (run: DistRun, name: string) => runnerLog(run.stdout).groups.filter((group) => group.name === name);

test('a failed build: one ::error::, in the log where it happened; no empty group; groups not nested', () => {
  const site = newSite();
  const host = hosts[0];
  expect(runDistAction(inputsFor([host], site, { release: 'v1' })).code).toBe(0);
  const run = runDistAction(inputsFor([host], site, { release: 'v2', build: 'echo compiling; exit 3' }));
  expect(run.code).toBe(1);
  const log = expectWellFormed(run);
  expect(log.errors).toEqual([expect.stringMatching(new RegExp(`^${host.entry}: build failed: build exited with status 3\\. fix the build`))]);
  expect(groupNamed(run, `build · ${host.entry}`)).toEqual([{ name: `build · ${host.entry}`, lines: ['compiling'] }]);
  // The phases that printed nothing have no group at all.
  expect(log.groups.map((group) => group.name)).toEqual([`build · ${host.entry}`]);
  expect(run.outputs).toMatchObject({ status: 'failed', release: 'v1' });
  expect(run.summary).toContain('| failed |');
  expect(current(host, site)).toBe('releases/v1');
});

test('deploys with activate: build and activate each in a group of their own, never one inside the other', () => {
  const site = newSite();
  const host = hosts[0];
  for (const release of ['a1', 'a2', 'a3', 'a4']) {
    const run = runDistAction(inputsFor([host], site, { release, ref: 'v2', activate: 'echo "activating $TAGFLIP_RELEASE"' }));
    expect(run.code).toBe(0);
    const log = expectWellFormed(run);
    expect(log.groups).toEqual([
      { name: `build · ${host.entry}`, lines: [`building ${release}`] },
      { name: `activate · ${host.entry}`, lines: [`activating ${release}`] },
    ]);
    // What tagflip itself says of the run stands between the groups, unfolded.
    expect(log.outside).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${host.entry}: current -> releases/${release}`))]));
    expect(log.errors).toEqual([]);
    expect(current(host, site)).toBe(`releases/${release}`);
  }
});

test('two hosts: one group per phase, well-formed, and every line of a host inside a group', () => {
  const site = newSite();
  const hostLine = (line: string) => hosts.some((host) => line.startsWith(`${host.entry} | `) || line.startsWith(`${host.entry}: `));
  const deployed = runDistAction(inputsFor(hosts, site, { release: 'v1', activate: 'echo activating', verify: 'echo verifying' }));
  expect(deployed.code).toBe(0);
  const log = expectWellFormed(deployed);
  expect(log.groups.map((group) => group.name)).toEqual(['build · 2 hosts', 'flip · 2 hosts', 'activate · 2 hosts', 'verify · 2 hosts']);
  expect(log.outside.filter(hostLine)).toEqual([]);
  for (const host of hosts) {
    expect(log.groups[0].lines).toEqual(expect.arrayContaining([`${host.entry} | ── build · ${host.entry}`, `${host.entry} | building v1`]));
    expect(log.groups[2].lines).toEqual(expect.arrayContaining([`${host.entry} | activating`]));
    expect(current(host, site)).toBe('releases/v1');
  }
  // No heading of a step that printed nothing.
  expect(log.groups[0].lines.filter((line) => / \| ── (connect|preflight|facts|prepare|source) /.test(line))).toEqual([]);

  // One host's build fails: each failure one ::error::, the other host's release is discarded in a group too.
  writeFileSync(join(hosts[1].files, site, 'broken'), '');
  const failed = runDistAction(inputsFor(hosts, site, { release: 'v2', build: 'if [ -e ../../broken ]; then echo broken; exit 4; fi; sh build.sh' }));
  expect(failed.code).toBe(1);
  const failedLog = expectWellFormed(failed);
  expect(failedLog.outside.filter(hostLine)).toEqual([]);
  expect(failedLog.errors).toEqual([
    expect.stringMatching(new RegExp(`^${hosts[1].entry}: build failed: build exited with status 4`)),
    expect.stringMatching(new RegExp(`^${hosts[0].entry}: not flipped because another host \\(${hosts[1].entry}\\) failed`)),
  ]);
  expect(failed.outputs).toMatchObject({ status: 'failed', release: 'v1' });
  for (const host of hosts) expect(current(host, site)).toBe('releases/v1');

  // verify fails on one host after both flipped: both go back; that one failure is one ::error::.
  const verify = 'if [ -e ../../broken ]; then echo unhealthy; exit 5; fi; echo healthy';
  const rolled = runDistAction(inputsFor(hosts, site, { release: 'v2', activate: 'echo activating', verify }));
  expect(rolled.code).toBe(1);
  const rolledLog = expectWellFormed(rolled);
  expect(rolledLog.outside.filter(hostLine)).toEqual([]);
  expect(rolledLog.groups.map((group) => group.name)).toEqual(['build · 2 hosts', 'flip · 2 hosts', 'activate · 2 hosts', 'verify · 2 hosts', 'roll back · 2 hosts']);
  expect(rolledLog.errors).toEqual([expect.stringMatching(new RegExp(`^${hosts[1].entry}: verify failed`))]);
  expect(rolled.outputs).toMatchObject({ status: 'rolled-back', release: 'v1' });
  for (const host of hosts) expect(current(host, site)).toBe('releases/v1');
});

describe('a GITHUB_OUTPUT that cannot be written: one short ::error::, exit 1, the summary still written', () => {
  const unwritable = {
    'a directory': () => {
      const dir = join(openTempDir('tagflip-output-'), 'output');
      mkdirSync(dir);
      return dir;
    },
    'a path in a missing directory': () => join(openTempDir('tagflip-output-'), 'missing', 'output'),
    'a read-only file (as the runner’s user)': () => {
      const file = join(openTempDir('tagflip-output-'), 'output');
      writeFileSync(file, '');
      chmodSync(file, 0o444);
      return file;
    },
  };

  test.each(Object.keys(unwritable) as (keyof typeof unwritable)[])('%s', (what) => {
    const site = newSite();
    const host = hosts[0];
    // Not as root, whom a read-only file does not stop: as the login user of the test hosts.
    const user = { uid: Number(execFileSync('id', ['-u', host.sshd.user]).toString()), gid: Number(execFileSync('id', ['-g', host.sshd.user]).toString()) };
    const summaryFile = join(openTempDir('tagflip-summary-'), 'summary');
    writeFileSync(summaryFile, '');
    chownSync(summaryFile, user.uid, user.gid);
    const outputFile = unwritable[what]();
    const run = runDistAction(inputsFor([host], site, { release: 'v1' }), { outputFile, summaryFile, ...user });
    expect(run.code).toBe(1);
    const log = expectWellFormed(run);
    expect(log.errors).toEqual([expect.stringMatching(/^cannot write the step's outputs to GITHUB_OUTPUT \(.+\); the deploy itself ended with status deployed, release v1$/)]);
    expect(log.errors[0].length).toBeLessThan(400);
    expect(run.stderr).toBe('');
    // The deploy happened, and the summary says so.
    expect(current(host, site)).toBe('releases/v1');
    expect(readFileSync(summaryFile, 'utf8')).toMatch(/\| deployed \| v1 \|/);
  });

  test('and a refused input with such a GITHUB_OUTPUT: two failures, two errors, no stack', () => {
    const outputFile = unwritable['a directory']();
    const run = runDistAction(inputsFor([hosts[0]], newSite(), { release: 'v1;x' }), { outputFile });
    expect(run.code).toBe(1);
    const log = expectWellFormed(run);
    expect(log.errors).toEqual([expect.stringMatching(/^cannot write the step's outputs to GITHUB_OUTPUT \(EISDIR/), expect.stringMatching(/^bad input: release: 'v1;x'/)]);
    expect(run.stderr).toBe('');
    expect(run.summary).toContain('### tagflip deploy: failed');
  });
});

test('a GITHUB_STEP_SUMMARY that cannot be written: one short ::warning::, and the step keeps its result and outputs', () => {
  const site = newSite();
  const summaryFile = join(openTempDir('tagflip-summary-'), 'summary');
  mkdirSync(summaryFile);
  const run = runDistAction(inputsFor([hosts[0]], site, { release: 'v1' }), { summaryFile });
  expect(run.code).toBe(0);
  const log = expectWellFormed(run);
  expect(log.errors).toEqual([]);
  const warnings = log.outside.filter((line) => line.startsWith('::warning::'));
  expect(warnings).toEqual([expect.stringMatching(/^::warning::cannot write the job summary to GITHUB_STEP_SUMMARY \(EISDIR.*\); the log above has the same report$/)]);
  expect(run.stderr).toBe('');
  expect(run.outputs).toMatchObject({ status: 'deployed', release: 'v1' });
});
