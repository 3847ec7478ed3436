/**
 * `npm test` on a machine that lacks what the suite needs stops at once with one line
 * (Jest's globalSetup, __tests__/support/prerequisites.mjs). A fresh machine is
 * simulated for real: an empty tmpfs over /usr/sbin in a private mount namespace hides
 * sshd (and useradd, usermod, runuser) from that one process, setpriv drops root, and
 * an empty PATH hides every command.
 */
import { spawnSync } from 'node:child_process';

const JEST = ['node_modules/jest/bin/jest.js', '--runInBand', '__tests__/unit/plan.test.ts'];
const MODULE = '__tests__/support/prerequisites.mjs';
const env = { ...process.env, NODE_OPTIONS: '--experimental-vm-modules' };

/** `argv` in a mount namespace of its own where /usr/sbin is empty. */
function withoutUsrSbin(argv: string[]): string[] {
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /usr/sbin && exec "$@"', 'sh', ...argv];
}

function run(argv: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 30_000, env: options.env ?? env });
  return { code: result.status, output: result.stdout + result.stderr, stdout: result.stdout };
}

test('without sshd, npm test stops before any test with one line naming it and the install commands', () => {
  const result = run(withoutUsrSbin([process.execPath, ...JEST]));
  expect(result.code).toBe(1);
  expect(result.output).toBe(
    'cannot run the tests: they need /usr/sbin/sshd, runuser, useradd, usermod, /usr/sbin/mkfs.ext4; ' +
      'run `bash .ci/run` (installs what is missing on Debian/Ubuntu, then builds and runs every check) ' +
      'or `apt-get install -y openssh-server util-linux passwd e2fsprogs` and then `npm test`\n',
  );
});

test('not as root, npm test stops with one line that says to run it with sudo', () => {
  const result = run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...JEST]);
  expect(result.code).toBe(1);
  expect(result.output).toMatch(/^cannot run the tests: they need root \(.*\); run `sudo bash \.ci\/run` .* or `sudo npm test`\n$/);
});

test('.ci/run is told which Debian packages to install: the ones whose tools are missing, each once', () => {
  expect(run([process.execPath, MODULE, '--missing-packages']).stdout).toBe('');
  expect(run(withoutUsrSbin([process.execPath, MODULE, '--missing-packages'])).stdout).toBe('openssh-server\nutil-linux\npasswd\ne2fsprogs\n');
  // Commands are looked up on PATH; sshd, supervisord, python3 and curl by the absolute path the tests use.
  const noPath = run([process.execPath, MODULE, '--missing-packages'], { env: { ...env, PATH: '' } });
  expect(noPath.stdout.split('\n')).toEqual(['openssh-client', 'git', 'tar', 'util-linux', 'procps', 'passwd', 'shellcheck', 'busybox', 'mount', 'cmark-gfm', '']);
});
