import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runDistAction } from '../support/dist-action.js';
import { deployRootFor, gitRepoWithTags } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

// The bundled action, run the way the runner runs it: `node dist/index.js`
// with INPUT_<NAME> variables and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.
let sshd: TestSshd;
let repo: string;
let root: string;

beforeAll(async () => {
  sshd = await startSshd();
  repo = gitRepoWithTags(['v1', 'v2'], sshd.user);
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

const runAction = (inputs: Record<string, string>, env: Record<string, string> = {}) => runDistAction(inputs, { env });

const sshInputs = () => ({
  hosts: `${sshd.host}:${sshd.port}`,
  user: sshd.user,
  'private-key': sshd.privateKey,
  'known-hosts': sshd.knownHosts,
  repository: repo,
  build: 'sh build.sh',
});

test('a tag push deploys; outputs, summary and host state are right', async () => {
  const site = join(root, 'pushed');
  const first = runAction({ ...sshInputs(), 'deploy-path': site }, { GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: 'v1' });
  expect(first.code).toBe(0);
  expect(first.outputs).toMatchObject({ release: 'v1', 'previous-release': '', status: 'deployed', 'release-path': `${site}/releases/v1` });
  expect(first.stdout).toContain('building v1');
  expect(first.stdout).toContain('::group::build');

  const second = runAction({ ...sshInputs(), 'deploy-path': site }, { GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: 'v2' });
  expect(second.code).toBe(0);
  expect(second.outputs).toMatchObject({ release: 'v2', 'previous-release': 'v1', status: 'deployed' });
  const hosts = JSON.parse(second.outputs.hosts);
  expect(hosts).toEqual([expect.objectContaining({ host: `${sshd.user}@${sshd.host}:${sshd.port}`, status: 'deployed', release: 'v2', 'previous-release': 'v1' })]);
  expect(second.summary).toContain('| host | status | release | previous |');
  expect(second.summary).toMatch(/\| tagflip-test@127\.0\.0\.1:\d+ \| deployed \| v2 \| v1 \|/);

  expect(readlinkSync(join(site, 'current'))).toBe('releases/v2');
  const manifest = JSON.parse(readFileSync(join(site, '.tagflip/releases/v2.json'), 'utf8'));
  expect(manifest).toMatchObject({ state: 'active', actor: 'octocat', runUrl: 'https://github.com/acme/site/actions/runs/4242' });
  // The key is registered as a secret (the runner consumes ::add-mask:: lines);
  // nothing else that reaches the log contains it.
  const keyBody = sshd.privateKey.split('\n')[1];
  expect(second.stdout).toContain(`::add-mask::${keyBody}`);
  const logged = second.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::'));
  expect(logged.join('\n')).not.toContain(keyBody);
});

test('a failed build fails the step, sets status failed and leaves current alone', () => {
  const site = join(root, 'failing');
  expect(runAction({ ...sshInputs(), 'deploy-path': site, release: 'v1' }).code).toBe(0);
  const failed = runAction({ ...sshInputs(), 'deploy-path': site, release: 'v2', build: 'exit 3' });
  expect(failed.code).toBe(1);
  expect(failed.stdout).toMatch(/::error::.*build failed: build exited with status 3/);
  expect(failed.outputs).toMatchObject({ status: 'failed', release: 'v1' });
  expect(failed.summary).toContain('| failed |');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
});

test('a bad input is refused before connecting, naming the input; nothing is created', () => {
  const site = join(root, 'refused');
  const run = runAction({ ...sshInputs(), 'deploy-path': site, release: 'v1;touch /tmp/pwned' });
  expect(run.code).toBe(1);
  expect(run.stdout).toMatch(/::error::bad input: release: 'v1;touch \/tmp\/pwned' is not a valid release name; expected/);
  expect(existsSync(site)).toBe(false);
  // A follow-up job can react: status is failed, and the summary says why.
  expect(run.outputs).toEqual({ status: 'failed' });
  expect(run.summary).toContain('### tagflip deploy: failed');
  expect(run.summary).toContain("bad input: release: 'v1;touch /tmp/pwned' is not a valid release name; expected");
  expect(run.summary).toContain('nothing changed on any host');
});

test('a refused input that quotes a secret-env value keeps it out of the summary and outputs', () => {
  const secret = 'refused-s3cret';
  // A secret pasted into another input is quoted back by its error; the masks apply there too.
  const run = runAction({ ...sshInputs(), 'deploy-path': join(root, 'refused-secret'), release: secret.replace('-', ';'), 'secret-env': `TOKEN=${secret.replace('-', ';')}` });
  expect(run.code).toBe(1);
  expect(run.outputs).toEqual({ status: 'failed' });
  // Masked first, then escaped for Markdown: the stars show as stars.
  expect(run.summary).toContain("release: '\\*\\*\\*' is not a valid release name");
  expect(run.summary).not.toContain(secret.replace('-', ';'));
});

test('without a tag and without release, the error says what to give', () => {
  const run = runAction({ ...sshInputs(), 'deploy-path': join(root, 'untagged') }, { GITHUB_REF_TYPE: 'branch', GITHUB_REF_NAME: 'main' });
  expect(run.code).toBe(1);
  expect(run.stdout).toContain('release: not given, and this run was triggered by a branch (main)');
});

test('a workflow_dispatch rollback with the previous-release output, then status', () => {
  const site = join(root, 'rolled');
  const inputs = { ...sshInputs(), 'deploy-path': site };
  expect(runAction({ ...inputs, release: 'v1' }).code).toBe(0);
  const deployed = runAction({ ...inputs, release: 'v2' });
  const previous = deployed.outputs['previous-release'];
  expect(previous).toBe('v1');

  const rolled = runAction({ ...inputs, command: 'rollback', 'rollback-to': previous }, { GITHUB_EVENT_NAME: 'workflow_dispatch', GITHUB_REF_TYPE: 'branch', GITHUB_REF_NAME: 'main' });
  expect(rolled.code).toBe(0);
  expect(rolled.outputs).toMatchObject({ status: 'rolled-back', release: 'v1', 'previous-release': 'v2', 'release-path': `${site}/releases/v1` });
  expect(rolled.summary).toContain('tagflip rollback v1: rolled-back');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');

  const status = runAction({ ...inputs, command: 'status' });
  expect(status.code).toBe(0);
  expect(status.outputs).toMatchObject({ status: 'unchanged', release: 'v1' });
  const [host] = JSON.parse(status.outputs.releases);
  expect(host).toMatchObject({ current: 'v1', 'rollback-target': '', lock: null });
  expect(host.releases.map((release: { release: string; state: string }) => `${release.release}:${release.state}`).sort()).toEqual(['v1:active', 'v2:rolled-back']);
});

test('with debug logging on, neither the key, the passphrase-free key body nor secret-env values reach the log', () => {
  const site = join(root, 'debugged');
  const secret = 'sup3r-s3cret-t0ken';
  const run = runAction(
    { ...sshInputs(), 'deploy-path': site, release: 'v1', env: 'APP_ENV=production', 'secret-env': `API_TOKEN=${secret}`, build: 'test -n "$API_TOKEN"' },
    { RUNNER_DEBUG: '1' },
  );
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('::debug::');
  const logged = run.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::'));
  expect(logged.join('\n')).not.toContain(secret);
  // (core.debug writes the newline inside the value as %0A.)
  expect(logged.join('\n')).toContain("tf_user_env='APP_ENV=production%0AAPI_TOKEN=***'");
  for (const line of sshd.privateKey.split('\n').filter((keyLine) => keyLine.length > 20)) {
    expect(logged.join('\n')).not.toContain(line);
  }
  expect(run.summary).not.toContain(secret);
  expect(JSON.stringify(run.outputs)).not.toContain(secret);
});

test('only secret values are registered with ::add-mask::, never plain env values', () => {
  const site = join(root, 'masked');
  const run = runAction({
    ...sshInputs(),
    'deploy-path': site,
    release: 'v1',
    env: 'APP_ENV=production\nWORKERS=4',
    'secret-env': 'API_TOKEN=t0ken-value\nDB_PASSWORD=hunter2-pw',
    build: 'echo "env $APP_ENV $WORKERS"; sh build.sh',
  });
  expect(run.code).toBe(0);
  const masks = run.stdout.split('\n').filter((line) => line.startsWith('::add-mask::')).map((line) => line.slice('::add-mask::'.length));
  expect(masks).toContain('t0ken-value');
  expect(masks).toContain('hunter2-pw');
  expect(masks).not.toContain('production');
  expect(masks).not.toContain('4');
  // Besides the two values, only the private key (whole and line by line) is registered.
  const keyLines = sshd.privateKey.split('\n').map((line) => line.trim()).filter((line) => line.length > 8);
  // (The whole key is one command, its newlines written as %0A.)
  const wholeKey = sshd.privateKey.replace(/\n/g, '%0A').replace(/%0A$/, '');
  expect(masks.filter((mask) => !['t0ken-value', 'hunter2-pw', wholeKey].includes(mask) && !keyLines.includes(mask))).toEqual([]);
  expect(run.stdout).toContain('env production 4');
});

test('command prepare from INPUT_*: status prepared, current untouched; the deploy then only flips; a bad canary is refused before connecting', () => {
  const site = join(root, 'staged');
  expect(runAction({ ...sshInputs(), 'deploy-path': site, release: 'v1' }).code).toBe(0);
  const prepared = runAction({ ...sshInputs(), 'deploy-path': site, release: 'v2', command: 'prepare' });
  expect(prepared.code).toBe(0);
  expect(prepared.outputs).toMatchObject({ status: 'prepared', release: 'v1' });
  expect(JSON.parse(prepared.outputs.hosts)).toEqual([expect.objectContaining({ status: 'prepared', release: 'v1', 'prepared-release': 'v2' })]);
  expect(prepared.summary).toContain('### tagflip prepare v2: prepared');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');

  const refused = runAction({ ...sshInputs(), 'deploy-path': site, release: 'v2', canary: '1', verify: 'true' });
  expect(refused.code).toBe(1);
  expect(refused.stdout).toContain("::error::bad input: canary: is '1', but hosts has one host: there is no second stage; expected two or more hosts, or no canary");

  const switched = runAction({ ...sshInputs(), 'deploy-path': site, release: 'v2' });
  expect(switched.code).toBe(0);
  expect(switched.outputs).toMatchObject({ status: 'deployed', release: 'v2', 'previous-release': 'v1' });
  expect(switched.stdout).toContain('v2 is already built (ready); activating it without a rebuild');
  expect(switched.stdout).not.toContain('building v2');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v2');
});
