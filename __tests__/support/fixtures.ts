import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../src/core/logger.js';
import { runCommand } from '../../src/commands/run.js';
import type { RunContext } from '../../src/core/inputs.js';
import { parseSettings } from '../../src/core/settings.js';
import type { TestSshd } from './sshd.js';

/** A directory anyone can enter (the test user reads repositories from here). */
export function openTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** A directory holding the test sshd's client key (`key`, mode 600) and `known_hosts`, for `@FILE` inputs. */
export function loginFiles(sshd: TestSshd, prefix: string): string {
  const dir = openTempDir(prefix);
  writeFileSync(join(dir, 'key'), sshd.privateKey);
  chmodSync(join(dir, 'key'), 0o600);
  writeFileSync(join(dir, 'known_hosts'), sshd.knownHosts);
  return dir;
}

/** A directory owned by the SSH test user, to hold deploy paths. */
export function deployRootFor(user: string): string {
  const dir = openTempDir('tagflip-hosts-');
  if (user !== userInfo().username) {
    const uid = Number(execFileSync('id', ['-u', user]).toString().trim());
    const gid = Number(execFileSync('id', ['-g', user]).toString().trim());
    chownSync(dir, uid, gid);
  }
  return dir;
}

const GIT_IDENTITY = ['-c', 'user.name=tagflip tests', '-c', 'user.email=tests@example.invalid'];

/**
 * A git repository with one commit per tag; each commit's `version` file holds
 * the tag name. Returns its path; `owner` (the SSH test user) gets to own it.
 */
export function gitRepoWithTags(tags: readonly string[], owner?: string): string {
  const repo = join(openTempDir('tagflip-repo-'), 'app.git-src');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  for (const tag of tags) {
    writeFileSync(join(repo, 'version'), `${tag}\n`);
    writeFileSync(join(repo, 'build.sh'), 'echo "building $TAGFLIP_RELEASE"\ncat version > built\n');
    execFileSync('git', ['-C', repo, 'add', '.']);
    execFileSync('git', ['-C', repo, ...GIT_IDENTITY, 'commit', '-q', '-m', tag]);
    execFileSync('git', ['-C', repo, 'tag', tag]);
  }
  // The test user fetches it through the file system; git only trusts a
  // repository owned by the user reading it.
  execFileSync('chmod', ['-R', 'a+rX', repo]);
  if (owner && owner !== userInfo().username) execFileSync('chown', ['-R', owner, repo]);
  return repo;
}

/** A logger that records everything, for assertions on what users see. */
export function recordingLogger(): Logger & { lines: string[]; text(): string } {
  const lines: string[] = [];
  return {
    lines,
    text: () => lines.join('\n'),
    info: (message) => lines.push(message),
    warning: (message) => lines.push(`warning: ${message}`),
    error: (message) => lines.push(`error: ${message}`),
    debug: () => undefined,
    startGroup: (name) => lines.push(`group: ${name}`),
    endGroup: () => undefined,
  };
}

/**
 * Run tagflip in-process against a test sshd, as the action would: `inputs`
 * over a deploy to `site` from `repo`. Returns the result, the (only or first)
 * host's result and the log.
 */
export async function runTagflip(sshd: TestSshd, site: string, repo: string, inputs: Record<string, string>, context: RunContext = {}) {
  const logger = recordingLogger();
  const settings = parseSettings(
    {
      hosts: `${sshd.user}@${sshd.host}:${sshd.port}`,
      'private-key': sshd.privateKey,
      'known-hosts': sshd.knownHosts,
      'deploy-path': site,
      repository: repo,
      ...inputs,
    },
    context,
  );
  const result = await runCommand(settings, logger);
  return { result, host: result.hosts[0], log: logger.text() };
}
