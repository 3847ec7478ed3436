import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { deployRootFor, gitRepoWithTags, openTempDir, loginFiles } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';

// The bundled CLI, as an operator runs it: `tagflip deploy --flag value …`.
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

function tagflip(args: string[], env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, ['bin/tagflip.js', ...args], {
    env: { PATH: process.env.PATH, HOME: openTempDir('tagflip-home-'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('deploy over SSH with --private-key @file and --known-hosts @file', () => {
  const files = loginFiles(sshd, 'tagflip-cli-');
  const site = join(root, 'cli-ssh');
  const common = ['--hosts', `${sshd.user}@${sshd.host}:${sshd.port}`, '--private-key', `@${join(files, 'key')}`, '--known-hosts', `@${join(files, 'known_hosts')}`, '--deploy-path', site, '--repository', repo, '--build', 'sh build.sh'];

  const first = tagflip(['deploy', ...common, '--release', 'v1']);
  expect(first.stderr).toContain('building v1');
  expect(first.code).toBe(0);
  expect(first.stdout).toBe(`status: deployed\nrelease: v1\nprevious-release: \nrelease-path: ${site}/releases/v1\n`);

  const second = tagflip(['deploy', ...common, '--release=v2']);
  expect(second.code).toBe(0);
  expect(second.stdout).toContain('previous-release: v1');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v2');
});

test('--hosts local deploys on this machine without SSH', () => {
  const site = join(openTempDir('tagflip-local-'), 'site');
  const ownRepo = gitRepoWithTags(['v1']); // owned by whoever runs the tests, as git wants
  const run = tagflip(['deploy', '--hosts', 'local', '--deploy-path', site, '--release', 'v1', '--repository', ownRepo, '--build', 'sh build.sh']);
  expect(run.code).toBe(0);
  expect(readFileSync(join(site, 'current/built'), 'utf8')).toBe('v1\n');
});

test('a bad flag or value exits 2 with an error naming it; a failed build exits 1', () => {
  const unknown = tagflip(['deploy', '--hostz', 'local']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/^error: hostz: '--hostz' is not an option/);

  const bad = tagflip(['deploy', '--hosts', 'local', '--deploy-path', 'relative/path', '--release', 'v1']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("error: deploy-path: 'relative/path' is not an absolute path");

  const site = join(openTempDir('tagflip-local-'), 'site');
  const failed = tagflip(['deploy', '--hosts', 'local', '--deploy-path', site, '--release', 'v1', '--build', 'exit 5']);
  expect(failed.code).toBe(1);
  expect(failed.stdout).toContain('status: failed');
  expect(failed.stderr).toContain('build exited with status 5');
});

describe('secrets in the CLI (no runner masks for it)', () => {
  test('a build that echoes a secret-env value prints ***; a plain env value is printed as is', () => {
    const site = join(openTempDir('tagflip-local-'), 'site');
    const secret = 'sup3r-s3cret-t0ken';
    const run = tagflip([
      'deploy', '--hosts', 'local', '--deploy-path', site, '--release', 'v1',
      '--env', 'APP_ENV=production',
      '--secret-env', `APP_SECRET=${secret}`,
      '--build', 'echo "secret is $APP_SECRET"; echo "env is $APP_ENV"; test "$APP_SECRET" = sup3r-s3cret-t0ken',
    ]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('secret is ***');
    expect(run.stderr).toContain('env is production');
    expect(run.stdout + run.stderr).not.toContain(secret);
    // Nor is it written into the records on the host.
    const records = [readFileSync(join(site, '.tagflip/releases/v1.json'), 'utf8'), readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8')].join('\n');
    expect(records).not.toContain(secret);
  });

  test('dry runs and debug logs show secret-env values as *** and env values as they are', () => {
    const site = join(openTempDir('tagflip-local-'), 'site');
    const secret = 'an0ther-s3cret';
    const run = tagflip(['--dry-run', 'deploy', '--hosts', 'local', '--deploy-path', site, '--release', 'v1', '--env', 'WORKERS=4', '--secret-env', `TOKEN=${secret}`, '--build', 'true'], {
      TAGFLIP_DEBUG: '1',
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('status: dry-run');
    expect(run.stderr).toContain("tf_user_env='WORKERS=4\nTOKEN=***'");
    expect(run.stdout + run.stderr).not.toContain(secret);
  });
});

describe('flags', () => {
  test('a flag the command does not use is refused before anything is contacted', () => {
    const run = tagflip(['rollback', '--hosts', 'local', '--deploy-path', '/nonexistent/site', '--release', 'v1.0']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: release: --release is not used by rollback \(to go to a named release: --rollback-to\); expected only the inputs rollback uses: /);
  });

  test('status prints its report on stdout; the log stays on stderr', () => {
    const site = join(openTempDir('tagflip-local-'), 'site');
    expect(tagflip(['deploy', '--hosts', 'local', '--deploy-path', site, '--release', 'v1', '--build', 'true']).code).toBe(0);
    const run = tagflip(['status', '--hosts', 'local', '--deploy-path', site]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^local: current v1, rollback target \(none\)\n {2}not locked\n {2}release +state +commit +finished +actor\n {2}v1 +active .*<- current\n$/);
    expect(run.stderr).not.toContain('current v1');
  });

  test('without GITHUB_ACTOR and USER, the actor is the login name', () => {
    const site = join(openTempDir('tagflip-local-'), 'site');
    expect(tagflip(['deploy', '--hosts', 'local', '--deploy-path', site, '--release', 'v1', '--build', 'true']).code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(site, '.tagflip/releases/v1.json'), 'utf8'));
    expect(manifest.actor).toBe(userInfo().username);
  });
});

describe('a CLI that explains itself', () => {
  test('--help lists the commands; <command> --help the inputs it uses, from action.yml; --version the version', () => {
    const help = tagflip(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('\n  deploy    build the release and flip to it, or only flip it where it is prepared\n  prepare   build the release up to ready on every host and flip nothing\n');
    expect(help.stdout).toContain('\n  prune     apply --keep-releases now\n');

    // The bundle reads the action.yml that ncc shipped beside it, from any working directory.
    const status = spawnSync(process.execPath, [join(process.cwd(), 'bin/tagflip.js'), 'status', '--help'], { cwd: openTempDir('tagflip-cwd-'), encoding: 'utf8' });
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/^usage: tagflip status /);
    expect(status.stdout).toContain('\n  --connect-timeout VALUE  (default: 30)\n      Seconds to wait for the SSH connection and handshake.\n');
    expect(status.stdout).not.toContain('--build');

    expect(tagflip(['--version'])).toEqual({ code: 0, stdout: `${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`, stderr: '' });
  });

  test('a mistyped flag or command names the one meant, and exits 2', () => {
    const flag = tagflip(['deploy', '--hosts', 'local', '--deploy-pth', '/srv/app']);
    expect(flag).toEqual({ code: 2, stdout: '', stderr: "error: deploy-pth: '--deploy-pth' is not an option; did you mean --deploy-path?\n" });
    const command = tagflip(['rollbak', '--hosts', 'local']);
    expect(command).toEqual({ code: 2, stdout: '', stderr: "error: command: 'rollbak' is not a command; did you mean rollback?\n" });
  });

  test('--json: one JSON object on stdout (the outputs and a row per host), the log on stderr, exit codes as without it', () => {
    const site = join(openTempDir('tagflip-local-'), 'site');
    const common = ['--hosts', 'local', '--deploy-path', site, '--json'];
    const first = tagflip(['deploy', ...common, '--release', 'v1', '--build', 'echo building from the hook']);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('building from the hook');
    expect(first.stdout.trimEnd().split('\n')).toHaveLength(1);
    const deployed = JSON.parse(first.stdout);
    expect(deployed).toEqual({
      status: 'deployed',
      release: 'v1',
      'previous-release': '',
      'release-path': `${site}/releases/v1`,
      'data-release': '',
      'previous-data-release': '',
      hosts: [expect.objectContaining({ host: 'local', status: 'deployed', release: 'v1', 'previous-release': '', 'release-path': `${site}/releases/v1`, error: '' })],
    });
    expect(typeof deployed.hosts[0]['total-seconds']).toBe('number');

    const failed = tagflip(['deploy', ...common, '--release', 'v2', '--build', 'exit 5']);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ status: 'failed', release: 'v1', hosts: [{ host: 'local', status: 'failed', error: expect.stringContaining('build exited with status 5') }] });

    // Status's report is for people: with --json it goes to stderr, and only the JSON to stdout.
    const status = tagflip(['status', ...common]);
    expect(status.code).toBe(0);
    expect(status.stderr).toMatch(/^local: current v1, rollback target \(none\)$/m);
    expect(JSON.parse(status.stdout)).toMatchObject({
      status: 'unchanged',
      release: 'v1',
      releases: [{ host: 'local', current: 'v1', lock: null, releases: [expect.objectContaining({ release: 'v2', state: 'failed' }), expect.objectContaining({ release: 'v1', state: 'active', current: true })] }],
    });

    const bad = tagflip(['rollback', ...common, '--release', 'v1']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toEqual({ status: 'failed', error: expect.stringContaining('--release is not used by rollback') });
  });
});
