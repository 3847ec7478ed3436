import { describe, expect, test } from '@jest/globals';
import { readHostFacts } from '../../src/core/facts.js';
import { planDeploy } from '../../src/core/plan.js';
import { control, history, manifest } from './host-facts.js';

const DEPLOY_PATH = '/srv/karl/customer-a';
const TAG = 'tagflip-0123456789abcdef01234567';

describe('readHostFacts', () => {
  test('no lines: nothing exists', () => {
    expect(readHostFacts([])).toEqual({
      deployPathExists: false,
      currentRelease: '',
      currentTarget: '',
      currentCommit: '',
      currentContent: null,
      precopied: false,
      releaseDirExists: false,
      releaseDirs: new Set(),
      currentDataRelease: '',
      currentDataTarget: '',
      dataDirs: new Set(),
      manifests: new Map(),
      history: [],
      lockHolder: null,
      problems: [],
      sourceCommit: '',
      sourceError: '',
    });
  });

  test('a host with a current release, two manifests and the release directory', () => {
    const v1 = manifest('v1.0', 'inactive');
    const v2 = manifest('v2.0', 'active', 'v1.0');
    const lines = [
      'step preflight',
      'fact deploy-path exists',
      'step facts',
      'fact current releases/v2.0',
      'fact current-release v2.0',
      'fact release-dir present',
      'fact dir v1.0',
      'fact dir v2.0',
      'fact data-current releases/v1.0',
      'fact data-current-release v1.0',
      'fact data-dir v0.9',
      'fact data-dir v1.0',
      `manifest ${JSON.stringify(v1)}`,
      `manifest ${JSON.stringify(v2)}`,
      `history ${JSON.stringify(history.deployed('v1.0'))}`,
      `history ${JSON.stringify(history.deployed('v2.0', 'v1.0'))}`,
    ].map(control);
    expect(readHostFacts(lines)).toEqual({
      deployPathExists: true,
      currentRelease: 'v2.0',
      currentTarget: 'releases/v2.0',
      currentCommit: '',
      currentContent: null,
      precopied: false,
      releaseDirExists: true,
      releaseDirs: new Set(['v1.0', 'v2.0']),
      currentDataRelease: 'v1.0',
      currentDataTarget: 'releases/v1.0',
      dataDirs: new Set(['v0.9', 'v1.0']),
      manifests: new Map([
        ['v1.0', v1],
        ['v2.0', v2],
      ]),
      history: [history.deployed('v1.0'), history.deployed('v2.0', 'v1.0')],
      lockHolder: null,
      problems: [],
      sourceCommit: '',
      sourceError: '',
    });
  });

  test('the content list of the current release, and the files the host still has as uploaded (names as bytes)', () => {
    const entry = (path: string) => ({ path, type: 'file', mode: 0o644, size: 1, sha256: 'a'.repeat(64) });
    const dir = { path: 'gone dir', type: 'dir', mode: 0o755, size: 0, sha256: '' };
    const listed = ['kept.txt', 'rewritten.txt', 'gone dir/file', 'now a link'].map((path) => `content-list ${JSON.stringify(entry(path))}`);
    // The host's answer: a start (s), the files whose identity is still the recorded one (./path), its status (e).
    const answer = (records: Buffer | string) => Buffer.from(records).toString('base64');
    const seen = answer(Buffer.concat([Buffer.from('s\0./kept.txt\0./Grüße.txt\0./shell'), Buffer.from([0xff]), Buffer.from('.php\0e0\0')]));
    // Cut where base64 allows (whole 4-character groups), as base64 -w does.
    const chunks = [seen.slice(0, 4), seen.slice(4)].map((chunk) => `content-seen ${chunk}`);
    const lines = [...chunks, ...listed, `content-list ${JSON.stringify(dir)}`, 'content-list not json'].map(control);
    // The list as sent, lines unparsed (a file is unchanged when its own line is one of them); the files still as
    // uploaded; a name that is not UTF-8 is none tagflip uploaded, and is not decoded into one.
    expect(readHostFacts(lines).currentContent).toEqual({ lines: new Set([...listed, `content-list ${JSON.stringify(dir)}`, 'content-list not json'].map((line) => line.slice('content-list '.length))), files: new Set(['kept.txt', 'Grüße.txt']) });
    // A record that is no ./path: the answer is not one of tagflip's.
    expect(readHostFacts([control(`content-seen ${answer('s\0kept.txt\0e0\0')}`), ...listed.map(control)]).currentContent).toBeNull();
    // Without the answer, a part of it, or with find failing, the list is not trusted: everything is sent.
    expect(readHostFacts(lines.slice(2)).currentContent).toBeNull();
    expect(readHostFacts(lines.slice(1)).currentContent).toBeNull();
    const failed = control(`content-seen ${answer('s\0e1\0')}`);
    expect(readHostFacts([failed, ...listed.map(control)]).currentContent).toBeNull();

    // Whether the host copied those files for the new release with the facts.
    expect(readHostFacts(lines).precopied).toBe(false);
    expect(readHostFacts([...lines, control('fact precopy yes')]).precopied).toBe(true);
    expect(readHostFacts([...lines.slice(1), control('fact precopy yes')]).precopied).toBe(false);
  });

  test('the commit the ref names now, or why it could not be resolved', () => {
    const sha = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
    expect(readHostFacts([control(`fact source-commit ${sha}`)])).toMatchObject({ sourceCommit: sha, sourceError: '' });
    expect(readHostFacts([control('fact source-commit not-a-commit')]).sourceCommit).toBe('');
    expect(readHostFacts([control("fact source-error 'v9' is not a tag, branch or commit in /srv/git/app.git")]).sourceError).toBe(
      "'v9' is not a tag, branch or commit in /srv/git/app.git",
    );
  });

  test('deploy-path absent', () => {
    expect(readHostFacts([control('fact deploy-path absent')]).deployPathExists).toBe(false);
  });

  // Which release current is, the host decides by real path (FACTS_BODY, tested on
  // real links in open-script.test.ts); the raw target is only for messages.
  test.each([
    ['/srv/app/releases/v2.0', 'v2.0'],
    ['./releases/v2.0', 'v2.0'],
    ['releases/v2.0/', 'v2.0'],
    ['/srv/other/app', ''],
    ['releases/v2.0', ''],
  ])('current -> %j with current-release %j: the release is what the host resolved, never guessed from the target', (target, release) => {
    const lines = [control(`fact current ${target}`), ...(release ? [control(`fact current-release ${release}`)] : [])];
    const facts_ = readHostFacts(lines);
    expect([facts_.currentTarget, facts_.currentRelease]).toEqual([target, release]);
  });

  test.each([
    ['v2.0', 'v2.0'],
    ['with space', ''],
    ['..', ''],
    ['.', ''],
    ['-x', ''],
    ['current', ''],
    ['.hidden', ''],
    [`v${'1'.repeat(127)}`, `v${'1'.repeat(127)}`],
    [`v${'1'.repeat(128)}`, ''],
    ['v1;id', ''],
    ['', ''],
  ])('current-release %j is release %j: only a valid release name counts', (name, release) => {
    const facts_ = readHostFacts([control(`fact current releases/${name}`), control(`fact current-release ${name}`)]);
    expect(facts_.currentRelease).toBe(release);
  });

  test.each([
    ['/srv/app/data/releases/v2.0', 'v2.0', 'v2.0'],
    ['releases/v2.0/', 'v2.0', 'v2.0'],
    ['releases/v2.0', '', ''],
    ['releases/..', '..', ''],
    ['releases/current', 'current', ''],
    ['releases/v1;id', 'v1;id', ''],
  ])('data/current -> %j with data-current-release %j is data release %j; current is not touched', (target, name, release) => {
    const lines = [control(`fact data-current ${target}`), ...(name ? [control(`fact data-current-release ${name}`)] : [])];
    const facts_ = readHostFacts(lines);
    expect([facts_.currentDataTarget, facts_.currentDataRelease, facts_.currentRelease, facts_.currentTarget]).toEqual([target, release, '', '']);
  });

  test('every data release directory is listed; names that are not release names are ignored; code releases are separate', () => {
    const lines = ['fact data-dir v1', 'fact data-dir v2.0-rc.1+b5', 'fact data-dir with space', 'fact data-dir ..', 'fact data-dir current', 'fact data-dir', 'fact dir v9'].map(control);
    const facts_ = readHostFacts(lines);
    expect(facts_.dataDirs).toEqual(new Set(['v1', 'v2.0-rc.1+b5']));
    expect(facts_.releaseDirs).toEqual(new Set(['v9']));
  });

  test('a manifest with spaces in its values is read whole', () => {
    const record = { ...manifest('v1.0', 'ready'), actor: 'two  spaces', runUrl: 'a b' };
    const facts_ = readHostFacts([control(`manifest ${JSON.stringify(record)}`)]);
    expect(facts_.manifests.get('v1.0')).toEqual(record);
  });

  test('unreadable manifests are ignored', () => {
    const lines = ['manifest {not json', 'manifest {"release":"v1","state":"weird"}', 'manifest []', 'manifest "v1"', 'manifest'].map(control);
    expect(readHostFacts(lines).manifests.size).toBe(0);
  });

  test('problems keep their check and message', () => {
    const lines = [
      control("problem mv-T 'mv -T' does not work: tagflip flips current with it; install GNU coreutils"),
      control('problem git'),
      control('problem'),
    ];
    expect(readHostFacts(lines).problems).toEqual([
      { check: 'mv-T', message: "'mv -T' does not work: tagflip flips current with it; install GNU coreutils" },
      { check: 'git', message: '' },
      { check: '', message: '' },
    ]);
  });

  test('other kinds and unknown facts are ignored', () => {
    const lines = ['step facts', 'log hello', 'fact colour blue', `${TAG} fact current releases/x`].map(control);
    expect(readHostFacts(lines)).toEqual(readHostFacts([]));
  });

  test('every release directory is listed; names that are not release names are ignored', () => {
    const lines = ['fact dir v1', 'fact dir v2.0-rc.1+b5', 'fact dir with space', 'fact dir ..', 'fact dir current', 'fact dir -x', 'fact dir .hidden', 'fact dir', 'fact dir v1'].map(control);
    expect(readHostFacts(lines).releaseDirs).toEqual(new Set(['v1', 'v2.0-rc.1+b5']));
  });

  test('a manifest that names no valid release is ignored', () => {
    const lines = [manifest('../x', 'ready'), manifest('current', 'ready'), manifest('a b', 'ready'), manifest('v1', 'ready')].map((record) =>
      control(`manifest ${JSON.stringify(record)}`),
    );
    expect([...readHostFacts(lines).manifests.keys()]).toEqual(['v1']);
  });

  test('history lines are read in order; lines tagflip did not write are skipped', () => {
    const lines = [
      `history ${JSON.stringify(history.deployed('v1'))}`,
      'history {not json',
      'history {"event":"deploy"}',
      'history {"event":"upgrade","status":"deployed"}',
      'history []',
      'history',
      `history ${JSON.stringify(history.rolledBack('v0', 'v1'))}`,
      `history ${JSON.stringify(history.pruned('v-old', 'v-older'))}`,
    ].map(control);
    expect(readHostFacts(lines).history).toEqual([history.deployed('v1'), history.rolledBack('v0', 'v1'), history.pruned('v-old', 'v-older')]);
  });

  test('the lock holder is read from its JSON', () => {
    const holder = { command: 'deploy', release: 'v3.0', actor: 'octocat', runUrl: 'https://github.com/o/r/actions/runs/7', host: 'deploy@web1', since: '2024-06-01T10:00:00Z' };
    expect(readHostFacts([control(`fact lock-holder ${JSON.stringify(holder)}`)]).lockHolder).toEqual(holder);
  });

  test.each([
    ['nothing', 'fact lock-holder'],
    ['garbage', 'fact lock-holder {broken'],
    ['an array', 'fact lock-holder []'],
  ])('a held lock whose holder file is %s still counts as held, with no details', (_what, line) => {
    expect(readHostFacts([control(line)]).lockHolder).toEqual({ command: '', release: '', actor: '', runUrl: '', host: '', since: '' });
  });

  test('no lock-holder line: not locked', () => {
    expect(readHostFacts([control('fact deploy-path exists')]).lockHolder).toBeNull();
  });

  test('what readHostFacts reads, planDeploy plans from', () => {
    const lines = ['fact deploy-path exists', 'fact current releases/v1.0', 'fact current-release v1.0', 'fact release-dir present', `manifest ${JSON.stringify(manifest('v1.0', 'active'))}`, `manifest ${JSON.stringify(manifest('v2.0', 'failed'))}`].map(control);
    expect(planDeploy(DEPLOY_PATH, 'v2.0', readHostFacts(lines))).toMatchObject({ action: 'build', previousRelease: 'v1.0', removeStale: true });
  });
});
