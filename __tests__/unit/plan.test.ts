import { describe, expect, test } from '@jest/globals';
import { readHostFacts } from '../../src/core/facts.js';
import { PlanError, planDeploy } from '../../src/core/plan.js';
import { control, facts, manifest } from './host-facts.js';
import { planError } from './input-error.js';
import type { Manifest } from '../../src/core/manifest.js';

const DEPLOY_PATH = '/srv/karl/customer-a';

const current = (release: string) => ({ currentRelease: release, currentTarget: `releases/${release}` });


describe('planDeploy', () => {
  test('first deploy: build, no previous release', () => {
    expect(planDeploy(DEPLOY_PATH, 'v1.0', facts({ deployPathExists: false }))).toEqual({
      action: 'build',
      release: 'v1.0',
      releasePath: '/srv/karl/customer-a/releases/v1.0',
      previousRelease: '',
      removeStale: false,
      reason: 'building v1.0',
    });
  });

  test('second deploy: build, the current release is the previous one', () => {
    const plan = planDeploy(DEPLOY_PATH, 'v2.0', facts({ ...current('v1.0'), records: [manifest('v1.0', 'active')] }));
    expect(plan).toEqual({
      action: 'build',
      release: 'v2.0',
      releasePath: '/srv/karl/customer-a/releases/v2.0',
      previousRelease: 'v1.0',
      removeStale: false,
      reason: 'building v2.0',
    });
  });

  test('the current release is previous even without a manifest of its own', () => {
    expect(planDeploy(DEPLOY_PATH, 'v2.0', facts(current('hand-made'))).previousRelease).toBe('hand-made');
  });

  test('already active: unchanged, previous release from its manifest', () => {
    const f = facts({ ...current('v2.0'), releaseDirExists: true, records: [manifest('v1.0', 'inactive'), manifest('v2.0', 'active', 'v1.0')] });
    expect(planDeploy(DEPLOY_PATH, 'v2.0', f)).toEqual({
      action: 'unchanged',
      release: 'v2.0',
      releasePath: '/srv/karl/customer-a/releases/v2.0',
      previousRelease: 'v1.0',
      removeStale: false,
      reason: 'v2.0 is already the current release',
    });
  });

  test('already current after a first deploy: unchanged with no previous release', () => {
    const f = facts({ ...current('v1.0'), releaseDirExists: true, records: [manifest('v1.0', 'active')] });
    expect(planDeploy(DEPLOY_PATH, 'v1.0', f)).toMatchObject({ action: 'unchanged', previousRelease: '' });
  });

  test.each(['ready', 'inactive'] as const)('a %s release is activated without a rebuild', (state) => {
    const f = facts({ ...current('v2.0'), releaseDirExists: true, records: [manifest('v1.0', state), manifest('v2.0', 'active', 'v1.0')] });
    expect(planDeploy(DEPLOY_PATH, 'v1.0', f)).toEqual({
      action: 'activate',
      release: 'v1.0',
      releasePath: '/srv/karl/customer-a/releases/v1.0',
      previousRelease: 'v2.0',
      removeStale: false,
      reason: `v1.0 is already built (${state}); activating it without a rebuild`,
    });
  });

  test('a ready release is activated on a host without current', () => {
    const f = facts({ releaseDirExists: true, records: [manifest('v1.0', 'ready')] });
    expect(planDeploy(DEPLOY_PATH, 'v1.0', f)).toMatchObject({ action: 'activate', previousRelease: '' });
  });

  test.each(['failed', 'building', 'rolled-back'] as const)('a %s release left on disk is removed and built again', (state) => {
    const f = facts({ ...current('v1.0'), releaseDirExists: true, records: [manifest('v1.0', 'active'), manifest('v2.0', state)] });
    expect(planDeploy(DEPLOY_PATH, 'v2.0', f)).toEqual({
      action: 'build',
      release: 'v2.0',
      releasePath: '/srv/karl/customer-a/releases/v2.0',
      previousRelease: 'v1.0',
      removeStale: true,
      reason: `releases/v2.0 is left from an incomplete attempt (state: ${state}); removing it and building again`,
    });
  });

  test('a directory without a manifest is removed and built again', () => {
    const f = facts({ ...current('v1.0'), releaseDirExists: true, records: [manifest('v1.0', 'active')] });
    expect(planDeploy(DEPLOY_PATH, 'v2.0', f)).toMatchObject({
      action: 'build',
      removeStale: true,
      reason: 'releases/v2.0 is left from an incomplete attempt (state: no record); removing it and building again',
    });
  });

  test.each(['failed', 'rolled-back'] as const)('a %s record without a directory is built without removing anything', (state) => {
    const f = facts({ ...current('v1.0'), records: [manifest('v1.0', 'active'), manifest('v2.0', state)] });
    expect(planDeploy(DEPLOY_PATH, 'v2.0', f)).toMatchObject({ action: 'build', removeStale: false, reason: 'building v2.0' });
  });

  test.each(['ready', 'inactive', 'active'] as const)('a complete (%s) record whose directory is missing is built again', (state) => {
    const f = facts({ ...current('v1.0'), releaseDirExists: false, records: [manifest('v1.0', 'active'), manifest('v2.0', state)] });
    expect(planDeploy(DEPLOY_PATH, 'v2.0', f)).toEqual({
      action: 'build',
      release: 'v2.0',
      releasePath: '/srv/karl/customer-a/releases/v2.0',
      previousRelease: 'v1.0',
      removeStale: false,
      reason: 'building v2.0',
    });
  });

  test('the plan only looks at the manifest of the release being deployed', () => {
    const f = facts({ ...current('v1.0'), releaseDirExists: true, records: [manifest('v1.0', 'active'), manifest('v2.0.1', 'ready')] });
    expect(planDeploy(DEPLOY_PATH, 'v2.0', f).action).toBe('build');
  });

  test.each([
    ['building', 'building'],
    ['failed', 'failed'],
    ['rolled-back', 'rolled-back'],
  ] as const)('current points to a release whose record is %s: PlanError', (state, shown) => {
    const f = facts({ ...current('v2.0'), releaseDirExists: true, records: [manifest('v2.0', state)] });
    const error = planError(() => planDeploy(DEPLOY_PATH, 'v2.0', f));
    expect(error.message).toBe(`current already points to releases/v2.0, but that release has no complete record (state: ${shown})`);
    expect(error.remedy).toBe('tagflip never rebuilds the live release in place; deploy it under a new release name');
    expect(error.name).toBe('PlanError');
  });

  test('current points to a release without a record: PlanError', () => {
    const error = planError(() => planDeploy(DEPLOY_PATH, 'v2.0', facts({ ...current('v2.0'), releaseDirExists: true })));
    expect(error.message).toBe('current already points to releases/v2.0, but that release has no complete record (state: none)');
  });

  test('current points to an active record whose directory is gone: PlanError, never a rebuild in place', () => {
    const f = facts({ ...current('v2.0'), releaseDirExists: false, records: [manifest('v2.0', 'active')] });
    expect(planError(() => planDeploy(DEPLOY_PATH, 'v2.0', f)).message).toBe(
      'current already points to releases/v2.0, but that release has no complete record (state: active)',
    );
  });

  test.each(['/srv/other/app', '../elsewhere', 'releases/v1/sub', 'v1.0'])('current pointing to %j (not a release): PlanError', (target) => {
    const error = planError(() => planDeploy(DEPLOY_PATH, 'v2.0', facts({ currentTarget: target, currentRelease: '' })));
    expect(error.message).toBe(`current points to '${target}', which is not a release directory (releases/<name> in deploy-path); nothing was built or flipped`);
    expect(error.remedy).toBe('point current at the release that serves, as tagflip links it: ln -sfn releases/<name> current (in deploy-path); or move it aside; then run again');
  });

  // 'releases/..' is deploy-path itself and 'releases/.' the releases directory: neither
  // is a release (no release may be named '.' or '..'), yet readHostFacts reads them as
  // releases '..' and '.', and the plan records '..' as the rollback target.
  test.each(['releases/..', 'releases/.', 'releases/../'])('current pointing to %j is not a release: PlanError', (target) => {
    const lines = [control('fact deploy-path exists'), control(`fact current ${target}`)];
    expect(() => planDeploy(DEPLOY_PATH, 'v2.0', readHostFacts(lines))).toThrow(PlanError);
  });

  test('paths are built from deploy-path and the release', () => {
    expect(planDeploy('/a', 'x+y_z-1.0', facts()).releasePath).toBe('/a/releases/x+y_z-1.0');
  });
});

describe('planDeploy: one release name, one content', () => {
  const C1 = '1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d';
  const C3 = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
  const git = (ref: string, commit: string) => ({ kind: 'git', ref, commit }) as const;
  const upload = (sha256: string) => ({ kind: 'upload', sha256 }) as const;
  const H1 = 'aa'.repeat(32);
  const H2 = 'bb'.repeat(32);
  /** staging made from `recorded`, in `state`; v9 current unless staging is active. */
  const host = (state: 'active' | 'inactive' | 'ready', recorded: Partial<Manifest>) =>
    facts({
      ...current(state === 'active' ? 'staging' : 'v9'),
      releaseDirExists: true,
      records: [manifest('v9', state === 'active' ? 'inactive' : 'active'), manifest('staging', state, '', recorded)],
    });

  test('the current release made from another commit: refused, naming both sources and the way out', () => {
    const error = planError(() => planDeploy(DEPLOY_PATH, 'staging', host('active', { commit: C1, source: git('v1', C1) }), git('v3', C3)));
    expect(error.message).toBe(
      'releases/staging is current and was built from v1 (commit 1a2b3c4d5e6f); ref v3 is 9f8e7d6c5b4a: deploy under a new release name (e.g. release: staging-${{ github.sha }}), or deploy another release first (a release that is not current is rebuilt from the new source)',
    );
  });

  test('the current release made from the same commit under another ref name: unchanged (same content)', () => {
    const plan = planDeploy(DEPLOY_PATH, 'staging', host('active', { commit: C3, source: git('main', C3) }), git('v3', C3));
    expect(plan).toMatchObject({ action: 'unchanged', reason: 'staging is already the current release' });
  });

  test.each(['inactive', 'ready'] as const)('a %s release made from another commit is rebuilt, the reason naming both commits', (state) => {
    expect(planDeploy(DEPLOY_PATH, 'staging', host(state, { commit: C1, source: git('v1', C1) }), git('v3', C3))).toEqual({
      action: 'build',
      release: 'staging',
      releasePath: '/srv/karl/customer-a/releases/staging',
      previousRelease: 'v9',
      removeStale: true,
      reason: 'releases/staging was built from v1 (commit 1a2b3c4d5e6f), but ref v3 is 9f8e7d6c5b4a: removing the stale build and building it again',
    });
  });

  test('a release that is not current, made from the same commit: activated without a rebuild', () => {
    expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { commit: C3, source: git('v3', C3) }), git('v3', C3))).toMatchObject({ action: 'activate', removeStale: false });
  });

  test('force-build rebuilds a complete release that is not current even from the same source', () => {
    const plan = planDeploy(DEPLOY_PATH, 'staging', host('inactive', { commit: C3, source: git('v3', C3) }), git('v3', C3), { forceBuild: true });
    expect(plan).toMatchObject({ action: 'build', removeStale: true, reason: 'force-build: removing releases/staging (inactive, built from v3 (commit 9f8e7d6c5b4a)) and building it again' });
  });

  test('force-build of the current release is refused: never rebuilt in place', () => {
    const f = host('active', { commit: C3, source: git('v3', C3) });
    expect(planError(() => planDeploy(DEPLOY_PATH, 'staging', f, git('v3', C3), { forceBuild: true })).message).toBe(
      'releases/staging is current, and force-build never rebuilds the current release in place: deploy under a new release name (e.g. release: staging-${{ github.sha }}), or deploy another release first, then staging again with force-build',
    );
  });

  test('on the command line the same refusals speak of flags and a shell, never of ${{ }} (issue 22)', () => {
    const f = host('active', { commit: C1, source: git('v1', C1) });
    expect(planError(() => planDeploy(DEPLOY_PATH, 'staging', f, git('v3', C3), { frontEnd: 'cli' })).message).toContain(
      'deploy under a new release name (e.g. --release staging-$(git rev-parse --short HEAD)), or deploy another release first',
    );
    const same = host('active', { commit: C3, source: git('v3', C3) });
    const forced = planError(() => planDeploy(DEPLOY_PATH, 'staging', same, git('v3', C3), { forceBuild: true, frontEnd: 'cli' })).message;
    expect(forced).toBe(
      'releases/staging is current, and --force-build never rebuilds the current release in place: deploy under a new release name (e.g. --release staging-$(git rev-parse --short HEAD)), or deploy another release first, then staging again with --force-build',
    );
    expect(forced).not.toContain('${{');
  });

  test('force-build without a record of the release: a plain build', () => {
    expect(planDeploy(DEPLOY_PATH, 'staging', facts(current('v9')), git('v3', ''), { forceBuild: true })).toMatchObject({ action: 'build', removeStale: false, reason: 'building staging' });
  });

  test('force-build with a build that fetches by itself (no source to compare) still rebuilds', () => {
    expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', {}), null, { forceBuild: true })).toMatchObject({ action: 'build', removeStale: true });
  });

  describe('a record of an older tagflip (no source): its commit tells', () => {
    test('same commit: activated', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { commit: C3 }), git('v3', C3)).action).toBe('activate');
    });
    test('another commit: rebuilt, naming it', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { commit: C1 }), git('v3', C3)).reason).toBe(
        'releases/staging was built from commit 1a2b3c4d5e6f, but ref v3 is 9f8e7d6c5b4a: removing the stale build and building it again',
      );
    });
    test('an abbreviated commit (a REVISION file) matches its full name', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { commit: C3.slice(0, 7) }), git('v3', C3)).action).toBe('activate');
    });
  });

  describe('unknown sources', () => {
    test('no record of a source nor a commit (the build fetched it): rebuilt when not current', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', {}), git('v3', C3)).reason).toBe(
        'releases/staging was built from an unknown source (its build fetched the code itself), but ref v3 is 9f8e7d6c5b4a: removing the stale build and building it again',
      );
    });
    test('unknown and current: refused', () => {
      expect(planError(() => planDeploy(DEPLOY_PATH, 'staging', host('active', { adopted: '2024-06-01T10:00:00Z' }), git('v3', C3))).message).toMatch(
        /^releases\/staging is current and was built from an unknown source \(made without tagflip\); ref v3 is 9f8e7d6c5b4a: deploy under a new release name/,
      );
    });
    test('nothing to compare with (the build fetches by itself): activated and unchanged as before', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { commit: C1, source: git('v1', C1) }), null).action).toBe('activate');
      expect(planDeploy(DEPLOY_PATH, 'staging', host('active', { commit: C1, source: git('v1', C1) }), null).action).toBe('unchanged');
    });
    test('a ref the facts did not resolve (a dry run without a mirror): not judged', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { commit: C1, source: git('v1', C1) }), git('v3', '')).action).toBe('activate');
    });
  });

  describe('uploads: the content list hash is the source', () => {
    test('same hash: activated; current: unchanged', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { source: upload(H1) }), upload(H1)).action).toBe('activate');
      expect(planDeploy(DEPLOY_PATH, 'staging', host('active', { source: upload(H1) }), upload(H1)).action).toBe('unchanged');
    });
    test('another hash: rebuilt when not current, naming both hashes', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('ready', { source: upload(H1) }), upload(H2)).reason).toBe(
        "releases/staging was built from an upload (content list sha256 aaaaaaaaaaaa), but the upload's content list is sha256 bbbbbbbbbbbb: removing the stale build and building it again",
      );
    });
    test('another hash while current: refused', () => {
      expect(planError(() => planDeploy(DEPLOY_PATH, 'staging', host('active', { source: upload(H1) }), upload(H2))).message).toMatch(
        /^releases\/staging is current and was built from an upload \(content list sha256 aaaaaaaaaaaa\); the upload's content list is sha256 bbbbbbbbbbbb: deploy under/,
      );
    });
    test('a release built from git is not the same as any upload, even with a commit', () => {
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { commit: C1, source: git('v1', C1) }), upload(H1)).action).toBe('build');
      expect(planDeploy(DEPLOY_PATH, 'staging', host('inactive', { source: upload(H1) }), git('v1', C1)).action).toBe('build');
    });
  });
});
