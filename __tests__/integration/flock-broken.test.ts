import { expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTempDir } from '../support/fixtures.js';

// A host whose flock exists but cannot run (a BusyBox built without the
// applet): the deploy fails on the lock at once, with flock's own words, and
// does not claim that another run held the lock for all of lock-timeout.
test('a flock that cannot run fails the deploy at once, saying what failed', () => {
  const dir = openTempDir('tagflip-flock-');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'flock'), '#!/bin/sh\necho "flock: applet not found" >&2\nexit 127\n', { mode: 0o755 });
  const site = join(dir, 'site');
  const started = Date.now();
  // The bundled CLI, with --hosts local: the session shell is its child and sees this PATH.
  const run = spawnSync(process.execPath, ['bin/tagflip.js', 'deploy', '--hosts', 'local', '--deploy-path', site, '--release', 'v1', '--build', 'true', '--lock-timeout', '60'], {
    env: { PATH: `${bin}:${process.env.PATH}`, HOME: dir },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(run.status).toBe(1);
  expect(run.stderr).toContain("'flock' failed on the host (exit status 127: flock: applet not found)");
  expect(run.stderr).not.toContain('for all of lock-timeout');
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(existsSync(join(site, 'releases/v1'))).toBe(false);
});
