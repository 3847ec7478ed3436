/**
 * What the test suite needs from the machine, checked once before any test runs.
 *
 * Jest runs the default export as its globalSetup: on a machine without sshd (or
 * another tool, or without root) `npm test` stops at once with one line naming what
 * is missing and the command that installs it, instead of every SSH test failing on
 * its own. `.ci/run` reads the same list (`node __tests__/support/prerequisites.mjs
 * --missing-packages`) to know what to install, so the two cannot disagree.
 *
 * Plain ESM with node built-ins only: it runs before `npm ci` in `.ci/run`, and Jest
 * loads it without a transform (a few stat calls, no measurable cost per run).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

/**
 * `file`: an absolute path the tests use as is; `command`: looked up on PATH.
 * `package`: the Debian package that provides it.
 */
export const NEEDED = [
  // The SSH tests start their own sshd and make keys (__tests__/support/sshd.ts).
  { file: '/usr/sbin/sshd', package: 'openssh-server' },
  { command: 'ssh', package: 'openssh-client' },
  { command: 'ssh-keygen', package: 'openssh-client' },
  { command: 'ssh-agent', package: 'openssh-client' },
  { command: 'ssh-add', package: 'openssh-client' },
  { command: 'git', package: 'git' },
  { command: 'tar', package: 'tar' },
  // Fleet hosts live in mount namespaces; the lock, other-user and disk-full tests.
  { command: 'unshare', package: 'util-linux' },
  { command: 'flock', package: 'util-linux' },
  { command: 'setpriv', package: 'util-linux' },
  { command: 'runuser', package: 'util-linux' },
  { command: 'prlimit', package: 'util-linux' },
  { command: 'ps', package: 'procps' },
  { command: 'pgrep', package: 'procps' },
  { command: 'pkill', package: 'procps' },
  // The test user that sshd logs in (created when missing).
  { command: 'useradd', package: 'passwd' },
  { command: 'usermod', package: 'passwd' },
  // Every rendered remote script is checked by ShellCheck (__tests__/unit/shellcheck.test.ts).
  { command: 'shellcheck', package: 'shellcheck' },
  // The end-to-end test runs a real app (python3) under supervisord and checks it with curl.
  { file: '/usr/bin/supervisord', package: 'supervisor' },
  { file: '/usr/bin/supervisorctl', package: 'supervisor' },
  { file: '/usr/bin/python3', package: 'python3' },
  { file: '/usr/bin/curl', package: 'curl' },
  // Scripts are also run under busybox sh and busybox tar, as on a minimal host.
  { command: 'busybox', package: 'busybox' },
  // An upload's re-deploy is tested on ext4 with whole-second timestamps, loop-mounted (integration/upload-evidence.test.ts).
  { file: '/usr/sbin/mkfs.ext4', package: 'e2fsprogs' },
  { command: 'mount', package: 'mount' },
  // The job summary is rendered by GitHub's own Markdown renderer to check its escaping (result-markdown.test.ts).
  { command: 'cmark-gfm', package: 'cmark-gfm' },
];

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(command, searchPath) {
  return searchPath
    .split(path.delimiter)
    .filter(Boolean)
    .some((dir) => isExecutable(path.join(dir, command)));
}

/** The entries of NEEDED this machine lacks. */
export function missing(searchPath = process.env.PATH ?? '') {
  return NEEDED.filter((need) => (need.file ? !isExecutable(need.file) : !onPath(need.command, searchPath)));
}

/** Debian package names that provide `entries`, each once, in NEEDED's order. */
export function packagesFor(entries) {
  return [...new Set(entries.map((need) => need.package))];
}

/**
 * One line saying what is missing and which command fixes it, or null when the
 * tests can run. Root is needed because sshd logs in as a test user it creates and
 * fleet hosts get mount namespaces of their own.
 */
export function problem({ isRoot = process.getuid?.() === 0, absent = missing() } = {}) {
  if (isRoot && absent.length === 0) return null;
  const sudo = isRoot ? '' : 'sudo ';
  const lacks = [];
  if (!isRoot) lacks.push('root (sshd logs in as a test user the tests create; fleet hosts need mount namespaces)');
  if (absent.length > 0) lacks.push(absent.map((need) => need.file ?? need.command).join(', '));
  const install = absent.length > 0 ? ` or \`${sudo}apt-get install -y ${packagesFor(absent).join(' ')}\` and then \`${sudo}npm test\`` : ' or `sudo npm test`';
  return (
    `cannot run the tests: they need ${lacks.join(' and ')}; ` +
    `run \`${sudo}bash .ci/run\` (installs what is missing on Debian/Ubuntu, then builds and runs every check)${install}`
  );
}

/** Jest globalSetup: stop before any test with the one line, not one failure per test. */
export default function checkPrerequisites() {
  const line = problem();
  if (line === null) return;
  // A thrown error would come with Jest's stack trace; the point is one line.
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--missing-packages') {
    for (const name of packagesFor(missing())) process.stdout.write(`${name}\n`);
  } else {
    checkPrerequisites();
  }
}
