import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDistAction } from '../support/dist-action.js';
import { newSite, repo, sshd, startDeploySuite } from '../support/deploy-suite.js';

// status with drift and a deploy with migrate-check as the runner runs them:
// node dist/index.js with INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files.
startDeploySuite(['v1', 'v2']);

const inputs = (site: string) => ({
  hosts: `${sshd.host}:${sshd.port}`,
  user: sshd.user,
  'private-key': sshd.privateKey,
  'known-hosts': sshd.knownHosts,
  repository: repo,
  'deploy-path': site,
});

test('status with drift: the log, the job summary and the hosts output name what changed', () => {
  const site = newSite();
  expect(runDistAction({ ...inputs(site), release: 'v1', build: 'sh build.sh' }).code).toBe(0);
  writeFileSync(join(site, 'releases/v1/version'), 'hot fix\n');
  writeFileSync(join(site, 'releases/v1/debug.log'), 'left behind\n');
  const status = runDistAction({ ...inputs(site), command: 'status', drift: 'true', 'drift-ignore': '*.log' });
  expect(status.code).toBe(0);
  expect(status.stdout).toContain('drift: v1: 0 added, 1 changed, 0 removed (1 ignored by drift-ignore)');
  expect(status.stdout).toContain('    changed version');
  expect(status.summary).toContain('#### Drift');
  expect(status.summary).toContain('- changed version');
  const [host] = JSON.parse(status.outputs.hosts);
  expect(host.drift).toEqual({ state: 'drifted', release: 'v1', added: { count: 0, paths: [] }, changed: { count: 1, paths: ['version'] }, removed: { count: 0, paths: [] }, ignored: 1 });
});

test('a deploy whose migrate-check exits 0 keeps the data release, and says so in the log', () => {
  const site = newSite();
  const migrate = { migrate: 'echo "$TAGFLIP_RELEASE" >> "$TAGFLIP_DATA_PATH/migrations"', 'migrate-check': 'true' };
  expect(runDistAction({ ...inputs(site), release: 'v1', ...migrate }).code).toBe(0);
  const second = runDistAction({ ...inputs(site), release: 'v2', ...migrate });
  expect(second.code).toBe(0);
  expect(second.stdout).toContain('migrate-check exited 0: releases/v2 uses data release v1 as it is (no copy, no migration)');
  expect(second.outputs).toMatchObject({ status: 'deployed', release: 'v2', 'data-release': 'v1', 'previous-data-release': '' });
});
