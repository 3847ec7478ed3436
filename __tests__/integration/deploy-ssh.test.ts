import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sshd, repo, ODD_TAG, startDeploySuite, newSite, deploy, current, manifest, history } from '../support/deploy-suite.js';

// Every test here deploys over SSH to a real OpenSSH sshd started for the suite.
startDeploySuite();

test('first deploy: fetches the tag into the mirror, builds in place, flips current', async () => {
  const site = newSite();
  const { result, log } = await deploy(site, { release: 'v1' });

  expect(result).toMatchObject({ status: 'deployed', release: 'v1', previousRelease: '', releasePath: `${site}/releases/v1` });
  expect(current(site)).toBe('releases/v1');
  expect(readFileSync(join(site, 'current/built'), 'utf8')).toBe('v1\n');
  expect(existsSync(join(site, '.tagflip/repo.git/HEAD'))).toBe(true);
  // Build output is streamed into the log, inside the build group.
  expect(log).toMatch(/group: build · .*\n(?:.*\n)*building v1/);
  expect(manifest(site, 'v1')).toMatchObject({ release: 'v1', state: 'active', previousRelease: '', exitCode: null });
  expect(manifest(site, 'v1').commit).toMatch(/^[0-9a-f]{40}$/);
  expect(history(site)).toEqual([expect.objectContaining({ event: 'deploy', status: 'deployed', release: 'v1', previousRelease: '' })]);
});
test('second deploy: previous-release is set, the old release stays and becomes inactive', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const { result } = await deploy(site, { release: 'v2' });

  expect(result).toMatchObject({ status: 'deployed', release: 'v2', previousRelease: 'v1' });
  expect(current(site)).toBe('releases/v2');
  expect(readFileSync(join(site, 'current/built'), 'utf8')).toBe('v2\n');
  expect(readdirSync(join(site, 'releases')).sort()).toEqual(['v1', 'v2']);
  expect(manifest(site, 'v1').state).toBe('inactive');
  expect(manifest(site, 'v2')).toMatchObject({ state: 'active', previousRelease: 'v1' });
});

test('a failed build leaves current untouched, removes the release, records the exit code', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  const { result, log } = await deploy(site, { release: 'v2', build: 'echo compiling; exit 7' });

  expect(result).toMatchObject({ status: 'failed', release: 'v1' });
  expect(result.hosts[0].error).toMatch(/build failed: build exited with status 7/);
  expect(result.hosts[0].error).toContain(sshd.host);
  expect(log).toContain('compiling');
  expect(current(site)).toBe('releases/v1');
  expect(existsSync(join(site, 'releases/v2'))).toBe(false);
  expect(manifest(site, 'v2')).toMatchObject({ state: 'failed', exitCode: 7, failedStep: 'build' });
  expect(manifest(site, 'v1').state).toBe('active');
  expect(history(site).at(-1)).toMatchObject({ status: 'failed', release: 'v2', exitCode: 7 });

  // The next deploy of the same tag builds it again from scratch.
  const retry = await deploy(site, { release: 'v2' });
  expect(retry.result.status).toBe('deployed');
  expect(current(site)).toBe('releases/v2');
});

test('a build killed by a signal is a failure', async () => {
  const site = newSite();
  const { result } = await deploy(site, { release: 'v1', build: 'kill -KILL $$' });
  expect(result.status).toBe('failed');
  expect(result.hosts[0].error).toMatch(/killed by signal 9/);
  expect(existsSync(join(site, 'current'))).toBe(false);
  expect(existsSync(join(site, 'releases/v1'))).toBe(false);
});

test('a build that exceeds command-timeout is stopped, with its children', async () => {
  const site = newSite();
  const started = Date.now();
  const { result } = await deploy(site, { release: 'v1', build: 'sleep 300 & sleep 300', 'command-timeout': '2' });

  expect(result.status).toBe('failed');
  expect(result.hosts[0].error).toMatch(/longer than command-timeout \(2 s\)/);
  expect(Date.now() - started).toBeLessThan(30_000);
  expect(existsSync(join(site, 'releases/v1'))).toBe(false);
  expect(manifest(site, 'v1')).toMatchObject({ state: 'failed', exitCode: 124 });
  // The backgrounded child went down with the build (timeout kills the process group).
  const leftovers = spawnSync('pgrep', ['-u', sshd.user, '-f', 'sleep 300']);
  expect(leftovers.stdout.toString()).toBe('');
});

test('re-deploying the active tag is a no-op with status unchanged; an inactive one is re-activated without a rebuild', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  await deploy(site, { release: 'v2' });

  const again = await deploy(site, { release: 'v2', build: 'echo SHOULD-NOT-RUN; exit 1' });
  expect(again.result).toMatchObject({ status: 'unchanged', release: 'v2', previousRelease: 'v1' });
  expect(again.log).not.toContain('SHOULD-NOT-RUN');

  const back = await deploy(site, { release: 'v1', build: 'echo SHOULD-NOT-RUN; exit 1' });
  expect(back.result).toMatchObject({ status: 'deployed', release: 'v1', previousRelease: 'v2' });
  expect(back.log).not.toContain('SHOULD-NOT-RUN');
  expect(current(site)).toBe('releases/v1');
  expect(manifest(site, 'v1')).toMatchObject({ state: 'active', previousRelease: 'v2' });
  expect(manifest(site, 'v2').state).toBe('inactive');
});

test('a half-built release left by an interrupted run is removed and rebuilt', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  // What a run killed mid-build leaves behind: the directory and a `building` record.
  mkdirSync(join(site, 'releases/v2'));
  writeFileSync(join(site, 'releases/v2/half-built'), '');
  writeFileSync(join(site, '.tagflip/releases/v2.json'), JSON.stringify({ ...manifest(site, 'v1'), release: 'v2', state: 'building' }));
  execFileSync('chown', ['-R', sshd.user, site]);

  const { result, log } = await deploy(site, { release: 'v2' });
  expect(result.status).toBe('deployed');
  expect(log).toContain('left from an incomplete attempt (state: building)');
  expect(existsSync(join(site, 'releases/v2/half-built'))).toBe(false);
  expect(readFileSync(join(site, 'current/built'), 'utf8')).toBe('v2\n');
  expect(manifest(site, 'v2').state).toBe('active');
});

test('a release directory without a record is never activated: it is rebuilt', async () => {
  const site = newSite();
  await deploy(site, { release: 'v1' });
  mkdirSync(join(site, 'releases/v2'));
  writeFileSync(join(site, 'releases/v2/stray'), '');
  execFileSync('chown', ['-R', sshd.user, site]);

  const { result } = await deploy(site, { release: 'v2' });
  expect(result.status).toBe('deployed');
  expect(existsSync(join(site, 'releases/v2/stray'))).toBe(false);
});

test(`a tag with odd but valid characters (${ODD_TAG}) deploys`, async () => {
  const site = newSite();
  const { result } = await deploy(site, { release: ODD_TAG });
  expect(result).toMatchObject({ status: 'deployed', release: ODD_TAG });
  expect(current(site)).toBe(`releases/${ODD_TAG}`);
  expect(readFileSync(join(site, 'current/built'), 'utf8')).toBe(`${ODD_TAG}\n`);
});

test('dry-run prints the plan and the scripts, masks secret-env values, and changes nothing', async () => {
  const site = newSite();
  const { result, log } = await deploy(site, { release: 'v1', 'dry-run': 'true', env: 'APP_ENV=production', 'secret-env': 'API_TOKEN=s3cr3t-value' });
  expect(result.status).toBe('dry-run');
  expect(log).toContain('dry run: would build v1');
  expect(log).toContain("tf_user_env='APP_ENV=production\nAPI_TOKEN=***'");
  expect(log).toContain('mv -T -- "$tf_link" "$1/current"');
  expect(log).not.toContain('s3cr3t-value');
  expect(existsSync(site)).toBe(false);
});

test('dry-run leads with the plan: what is built, flipped, pruned and run, before any line of script (issue 22)', async () => {
  const site = newSite();
  for (const release of ['v1', 'v2']) expect((await deploy(site, { release, 'keep-releases': '1' })).result.status).toBe('deployed');
  const { result, log } = await deploy(site, { release: 'v3', 'dry-run': 'true', 'keep-releases': '1', activate: 'true', verify: 'test -f built' });
  expect(result.status).toBe('dry-run');
  const lines = log.split('\n');
  const firstScript = lines.findIndex((line) => line.startsWith('group: build script for '));
  expect(firstScript).toBeGreaterThan(0);
  const plan = lines.slice(0, firstScript).filter((line) => line.includes('dry run')).map((line) => line.replace(/^\S+: /, ''));
  expect(plan).toEqual([
    `dry run: would build v3 in ${site}/releases/v3; nothing is changed`,
    'dry run: then would flip current to releases/v3 (from v2)',
    'dry run: then would run activate: true',
    'dry run: then would run verify: test -f built',
    'dry run: then retention would remove v1 (keep-releases: 1)',
    'dry run: the scripts that would be sent follow, one group each (the plan is above)',
  ]);
  expect(lines.slice(firstScript).some((line) => line.startsWith('group: flip script for '))).toBe(true);
  expect(current(site)).toBe('releases/v2');
});

test('env and secret-env lines reach the build, the TAGFLIP_* variables are set', async () => {
  const site = newSite();
  const { result } = await deploy(site, {
    release: 'v1',
    env: "GREETING=it's $(not run)",
    'secret-env': 'TOKEN=t0k en',
    build: 'printf "%s|%s|%s|%s|%s\\n" "$GREETING" "$TOKEN" "$TAGFLIP_RELEASE" "$TAGFLIP_RELEASE_PATH" "$PWD" > env.txt',
  });
  expect(result.status).toBe('deployed');
  expect(readFileSync(join(site, 'current/env.txt'), 'utf8')).toBe(`it's $(not run)|t0k en|v1|${site}/releases/v1|${site}/releases/v1\n`);
});

describe('one release name, one content', () => {
  const commitOf = (ref: string) => execFileSync('git', ['-c', 'safe.directory=*', '-C', repo, 'rev-parse', `${ref}^{commit}`]).toString().trim();
  const short = (commit: string) => commit.slice(0, 12);
  const built = (site: string) => readFileSync(join(site, 'current/built'), 'utf8');

  test('a reused name with a moved ref: refused while current, rebuilt once not current, re-activated when unchanged', async () => {
    const site = newSite();
    const [v1, v3] = [commitOf('v1'), commitOf('v3')];
    await deploy(site, { release: 'staging', ref: 'v1' });
    expect(manifest(site, 'staging')).toMatchObject({ commit: v1, source: { kind: 'git', ref: 'v1', commit: v1 } });

    // Current: refused before anything changes, naming both sources.
    const recordBefore = readFileSync(join(site, '.tagflip/releases/staging.json'), 'utf8');
    const historyBefore = history(site);
    const refused = await deploy(site, { release: 'staging', ref: 'v3', build: 'echo SHOULD-NOT-RUN; sh build.sh' });
    expect(refused.result).toMatchObject({ status: 'failed', release: 'staging' });
    expect(refused.result.hosts[0].error).toContain(
      `plan failed: releases/staging is current and was built from v1 (commit ${short(v1)}); ref v3 is ${short(v3)}: deploy under a new release name (e.g. release: staging-\${{ github.sha }})`,
    );
    expect(refused.log).not.toContain('SHOULD-NOT-RUN');
    // A dry run of it shows the same refusal, and fails as the deploy would (docs/deploying.md, Dry run).
    const dryRefused = await deploy(site, { release: 'staging', ref: 'v3', 'dry-run': 'true' });
    expect(dryRefused.result).toMatchObject({ ok: false, status: 'failed', release: 'staging' });
    expect(dryRefused.result.hosts[0].error).toBe(refused.result.hosts[0].error);
    expect(current(site)).toBe('releases/staging');
    expect(built(site)).toBe('v1\n');
    expect(readFileSync(join(site, '.tagflip/releases/staging.json'), 'utf8')).toBe(recordBefore);
    expect(history(site)).toEqual(historyBefore);

    // Not current: the stale build is replaced, and the log says so.
    await deploy(site, { release: 'v2' });
    // A dry run judges from the mirror as it is (v3 is in it already), without taking the lock.
    const dry = await deploy(site, { release: 'staging', ref: 'v3', 'dry-run': 'true' });
    expect(dry.log).toContain('dry run: would build staging in');
    expect(dry.log).toContain('after removing the existing releases/staging');
    const rebuilt = await deploy(site, { release: 'staging', ref: 'v3' });
    expect(rebuilt.result).toMatchObject({ status: 'deployed', release: 'staging', previousRelease: 'v2' });
    expect(rebuilt.log).toContain(`releases/staging was built from v1 (commit ${short(v1)}), but ref v3 is ${short(v3)}: removing the stale build and building it again`);
    expect(built(site)).toBe('v3\n');
    expect(manifest(site, 'staging')).toMatchObject({ state: 'active', commit: v3, source: { kind: 'git', ref: 'v3', commit: v3 } });

    // Same ref again: current, unchanged; and once not current, activated without a rebuild.
    const again = await deploy(site, { release: 'staging', ref: 'v3', build: 'echo SHOULD-NOT-RUN; exit 1' });
    expect(again.result.status).toBe('unchanged');
    await deploy(site, { release: 'v2' });
    const back = await deploy(site, { release: 'staging', ref: 'v3', build: 'echo SHOULD-NOT-RUN; exit 1' });
    expect(back.result).toMatchObject({ status: 'deployed', release: 'staging' });
    expect(back.log).toContain('staging is already built (inactive); activating it without a rebuild');
    expect(back.log).not.toContain('SHOULD-NOT-RUN');
    expect(built(site)).toBe('v3\n');
  });

  test('a record of an older tagflip (no source) is judged by its commit; force-build rebuilds, but never the current release', async () => {
    const site = newSite();
    await deploy(site, { release: 'staging', ref: 'v1' });
    await deploy(site, { release: 'v2' });
    // What an older tagflip wrote: the commit, no source.
    const older = manifest(site, 'staging');
    delete older.source;
    writeFileSync(join(site, '.tagflip/releases/staging.json'), JSON.stringify(older));

    const forced = await deploy(site, { release: 'staging', ref: 'v1', 'force-build': 'true', build: 'echo FORCED; sh build.sh' });
    expect(forced.result).toMatchObject({ status: 'deployed', release: 'staging', previousRelease: 'v2' });
    expect(forced.log).toContain(`force-build: removing releases/staging (inactive, built from commit ${short(commitOf('v1'))}) and building it again`);
    expect(forced.log).toContain('FORCED');
    expect(manifest(site, 'staging').source).toEqual({ kind: 'git', ref: 'v1', commit: commitOf('v1') });

    const refused = await deploy(site, { release: 'staging', ref: 'v1', 'force-build': 'true', build: 'echo SHOULD-NOT-RUN' });
    expect(refused.result.status).toBe('failed');
    expect(refused.result.hosts[0].error).toContain('releases/staging is current, and force-build never rebuilds the current release in place');
    expect(refused.log).not.toContain('SHOULD-NOT-RUN');
    expect(current(site)).toBe('releases/staging');
  });

  test('a ref the repository does not have fails the deploy before anything changes', async () => {
    const site = newSite();
    await deploy(site, { release: 'staging', ref: 'v1' });
    await deploy(site, { release: 'v2' });
    const { result } = await deploy(site, { release: 'staging', ref: 'no-such-ref' });
    expect(result.status).toBe('failed');
    expect(result.hosts[0].error).toContain(`source failed: 'no-such-ref' is not a tag, branch or commit in ${repo}`);
    expect(current(site)).toBe('releases/v2');
    expect(manifest(site, 'staging').state).toBe('inactive');
  });
});
