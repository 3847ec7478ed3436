import { describe, expect, test } from '@jest/globals';
import { parseSharedPaths } from '../../src/core/inputs.js';
import { parseSettings } from '../../src/core/settings.js';
import { inputErrorOf } from './input-error.js';
import { TAG_CONTEXT, generateKeys, sshInputs } from './settings-fixtures.js';

generateKeys();

describe('parseSharedPaths: shared-dirs and shared-files', () => {
  const EXPECTED = "relative paths inside the release, one a line, such as 'var/log' or 'etc/app.cfg'";
  const CHARACTERS = `${EXPECTED}; letters, digits and . _ + @ % , = : ~ - (no segment starting with -)`;

  test.each([
    ['nothing', '', '', { dirs: [], files: [] }],
    ['only blank lines and separators', ' \n\n , \r\n', ' ,, ', { dirs: [], files: [] }],
    ['one a line', 'var/log\nvar/mailout', 'etc/production.cfg', { dirs: ['var/log', 'var/mailout'], files: ['etc/production.cfg'] }],
    ['comma separated, in the order given', 'var/mailout, var/log', 'b.cfg,a.cfg', { dirs: ['var/mailout', 'var/log'], files: ['b.cfg', 'a.cfg'] }],
    ['trimmed, CRLF lines', '  var/log \r\n\tvar/run\t', '', { dirs: ['var/log', 'var/run'], files: [] }],
    ['trailing slashes dropped', 'var/log/\nvar/run///', '', { dirs: ['var/log', 'var/run'], files: [] }],
    ['dot files and every allowed character', '.cache', '.env\netc/a_b+c@d%e=f:g~h-i.cfg', { dirs: ['.cache'], files: ['.env', 'etc/a_b+c@d%e=f:g~h-i.cfg'] }],
    ['siblings that share a prefix are not nested', 'var/log\nvar/logs', 'var/log.cfg', { dirs: ['var/log', 'var/logs'], files: ['var/log.cfg'] }],
    ['a name that only starts like a reserved one', '.github', '.gitignore\nsub/.git', { dirs: ['.github'], files: ['.gitignore', 'sub/.git'] }],
    ['a path of exactly 512 characters', `${'a'.repeat(255)}/${'b'.repeat(256)}`, '', { dirs: [`${'a'.repeat(255)}/${'b'.repeat(256)}`], files: [] }],
  ])('%s', (_what, dirs, files, expected) => {
    expect(parseSharedPaths(dirs, files)).toEqual(expected);
  });

  test('through parseSettings: shared-dirs and shared-files land in the settings', () => {
    const settings = parseSettings({ ...sshInputs(), 'shared-dirs': 'var/log\n', 'shared-files': 'etc/app.cfg' }, TAG_CONTEXT);
    expect([settings.sharedDirs, settings.sharedFiles]).toEqual([['var/log'], ['etc/app.cfg']]);
  });

  const relative = (input: string, path: string) => `${input}: '${path}' is not a relative path inside the release; expected ${EXPECTED}`;
  const characters = (input: string, path: string) => `${input}: '${path}' has characters or segments a shared path cannot have; expected ${CHARACTERS}`;

  test.each([
    ['an absolute dir', '/var/log', '', relative('shared-dirs', '/var/log')],
    ['an absolute file', '', '/etc/passwd', relative('shared-files', '/etc/passwd')],
    ["'..'", '..', '', relative('shared-dirs', '..')],
    ["a leading '..'", '../shared', '', relative('shared-dirs', '../shared')],
    ["a '..' inside", 'var/../../etc', '', relative('shared-dirs', 'var/../../etc')],
    ["a trailing '..'", 'var/..', '', relative('shared-dirs', 'var/..')],
    ["'.'", '.', '', relative('shared-dirs', '.')],
    ["a '.' segment", '', 'etc/./app.cfg', relative('shared-files', 'etc/./app.cfg')],
    ['an empty segment', 'var//log', '', characters('shared-dirs', 'var//log')],
    ['a space', 'var/my log', '', characters('shared-dirs', 'var/my log')],
    ['command substitution', '', 'etc/$(id).cfg', characters('shared-files', 'etc/$(id).cfg')],
    ['backticks', '', '`id`', characters('shared-files', '`id`')],
    ['a semicolon', 'var;rm -rf ~', '', characters('shared-dirs', 'var;rm -rf ~')],
    ['a glob', 'var/*', '', characters('shared-dirs', 'var/*')],
    ['a glob bracket', 'var/[ab]', '', characters('shared-dirs', 'var/[ab]')],
    ['a question mark', 'var/lo?', '', characters('shared-dirs', 'var/lo?')],
    ['a quote', '', "it's.cfg", characters('shared-files', "it's.cfg")],
    ['a double quote', 'a"b', '', characters('shared-dirs', 'a\\"b')],
    ['a backslash', 'a\\b', '', characters('shared-dirs', 'a\\\\b')],
    ['a tab inside', 'var/\tlog', '', characters('shared-dirs', 'var/\\tlog')],
    ['a NUL', 'var/log\0', '', characters('shared-dirs', 'var/log\\u0000')],
    ['an escape sequence', '\u001b[2Jvar', '', characters('shared-dirs', '\\u001b[2Jvar')],
    ['a non-ASCII letter', 'vаr/log', '', characters('shared-dirs', 'vаr/log')],
    ['a leading -', '-rf', '', characters('shared-dirs', '-rf')],
    ['a segment starting with -', '', 'etc/--help', characters('shared-files', 'etc/--help')],
    ['513 characters', 'a'.repeat(513), '', characters('shared-dirs', `${'a'.repeat(80)}…`)],
    ['.git', '.git', '', `shared-dirs: '.git' is reserved; expected ${EXPECTED}`],
    ['inside .git', '', '.git/config', `shared-files: '.git/config' is reserved; expected ${EXPECTED}`],
    ['the source archive', '', '.tagflip-source.tar', `shared-files: '.tagflip-source.tar' is reserved; expected ${EXPECTED}`],
    ['a dir given twice', 'var/log\nvar/log/', '', "shared-dirs: 'var/log' is given twice; expected each path once, in shared-dirs or shared-files"],
    ['a path both a dir and a file', 'etc', 'etc', "shared-files: 'etc' is given twice; expected each path once, in shared-dirs or shared-files"],
    ['a dir inside a dir', 'var\nvar/log', '', `shared-dirs: 'var/log' is inside 'var'; expected ${EXPECTED}, none inside another`],
    ['a dir around an earlier dir', 'var/log\nvar', '', `shared-dirs: 'var/log' is inside 'var'; expected ${EXPECTED}, none inside another`],
    ['a file inside a dir', 'etc', 'etc/app.cfg', `shared-files: 'etc/app.cfg' is inside 'etc'; expected ${EXPECTED}, none inside another`],
    ['a file inside a file', '', 'etc/app.cfg\netc/app.cfg/x', `shared-files: 'etc/app.cfg/x' is inside 'etc/app.cfg'; expected ${EXPECTED}, none inside another`],
  ])('%s is refused', (_what, dirs, files, message) => {
    const error = inputErrorOf(() => parseSharedPaths(dirs, files));
    expect(error.message).toBe(message);
    expect(error.input).toBe(message.slice(0, message.indexOf(':')));
  });

  test('parseSettings refuses the same, naming the input, before anything else is used', () => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), 'shared-files': '../../etc/passwd' }, TAG_CONTEXT));
    expect(error.message).toBe(relative('shared-files', '../../etc/passwd'));
  });

  // The issue: "absolute paths and `..` are refused". '/' is absolute, but the trailing
  // slashes are stripped first, which leaves '', and an empty entry is skipped: `shared-dirs: /`
  // is silently ignored (nothing is shared) instead of refused.
  test.each(['/', '//', ' / '])('shared-dirs %j (the root, an absolute path) is refused, not ignored', (value) => {
    expect(inputErrorOf(() => parseSharedPaths(value, '')).input).toBe('shared-dirs');
  });
});

describe('parseSettings: data-path, migrate and rollback-data', () => {
  test.each([
    ['', '/srv/karl/customer-a/data'],
    ['  ', '/srv/karl/customer-a/data'],
    ['/var/lib/app/data', '/var/lib/app/data'],
    ['/var/lib/app/data///', '/var/lib/app/data'],
    ['/srv/karl/customer-a/data', '/srv/karl/customer-a/data'],
    [' /data ', '/data'],
  ])('data-path %j is %j', (value, expected) => {
    expect(parseSettings({ ...sshInputs(), 'data-path': value }, TAG_CONTEXT).dataPath).toBe(expected);
  });

  test('the default follows deploy-path, trailing slash and all', () => {
    expect(parseSettings({ ...sshInputs(), 'deploy-path': '/srv/x//' }, TAG_CONTEXT).dataPath).toBe('/srv/x/data');
  });

  test.each([
    ['relative', 'data', "data-path: 'data' is not an absolute path of plain characters"],
    ['$HOME', '$HOME/data', "data-path: '$HOME/data' is not an absolute path of plain characters"],
    ['a newline', '/srv/data\n/x', "data-path: '/srv/data\\n/x' is not an absolute path of plain characters"],
    ["'/'", '/', "data-path: '/' has an empty, '.', '..' or '-'-leading segment, or is '/'"],
    ["a '..' segment", '/srv/../etc', "data-path: '/srv/../etc' has an empty, '.', '..' or '-'-leading segment, or is '/'"],
    ["'//' inside", '/srv//data', "data-path: '/srv//data' has an empty, '.', '..' or '-'-leading segment, or is '/'"],
    ['a leading-dash segment', '/srv/-data', "data-path: '/srv/-data' has an empty, '.', '..' or '-'-leading segment, or is '/'"],
    ['1025 characters', `/${'d'.repeat(1024)}`, 'data-path: longer than 1024 characters'],
  ])('data-path %s is refused as data-path, like deploy-path', (_what, value, problem) => {
    const error = inputErrorOf(() => parseSettings({ ...sshInputs(), 'data-path': value }, TAG_CONTEXT));
    expect(error.input).toBe('data-path');
    expect(error.message).toBe(`${problem}; expected an absolute path such as '/srv/app/customer-a' (letters, digits and . _ + @ % , = : ~ - only)`);
  });

  // data-path is where data/releases/<tag> and data/current live. Set to deploy-path itself,
  // the migrate step's data copy is releases/<tag>, the release it has just built: the build
  // script removes it, copies the previous release's code (current/) in its place and flips
  // current to that. Nothing refuses such a data-path.
  test('data-path equal to deploy-path is refused', () => {
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), 'data-path': '/srv/karl/customer-a/' }, TAG_CONTEXT)).input).toBe('data-path');
  });

  test.each([
    ['', true],
    ['true', true],
    ['True', true],
    ['TRUE', true],
    ['false', false],
    ['False', false],
    ['FALSE', false],
    [' false\n', false],
  ])('rollback-data %j is %j', (value, expected) => {
    expect(parseSettings({ ...sshInputs(), command: 'rollback', 'rollback-data': value }, TAG_CONTEXT).rollbackData).toBe(expected);
  });

  test.each(['yes', 'no', '0', '1', 'on', 'tru', 'true false'])('rollback-data %j is refused', (value) => {
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), 'rollback-data': value }, TAG_CONTEXT)).message).toBe(
      `rollback-data: '${value}' is not a boolean; expected 'true' or 'false'`,
    );
  });

  test('migrate is kept as given (a shell script); only whitespace is no migrate', () => {
    const script = '  bin/evolve --data "$TAGFLIP_DATA_PATH"\n';
    expect(parseSettings({ ...sshInputs(), migrate: script }, TAG_CONTEXT).migrate).toBe(script);
    expect(parseSettings({ ...sshInputs(), migrate: ' \n\t' }, TAG_CONTEXT).migrate).toBe('');
  });
});

describe('repository: the forms the host can fetch', () => {
  test.each([
    'https://github.com/acme/app.git',
    'http://git.internal/app.git',
    'ssh://git@github.com:22/acme/app.git',
    'git://git.internal/app.git',
    'git+ssh://git@github.com/acme/app.git',
    'file:///srv/git/app.git',
    'git@github.com:acme/app.git',
    'github.com:acme/app.git',
    'git@[2001:db8::1]:acme/app.git',
    '/srv/git/app.git',
  ])('%s is accepted as given', (repository) => {
    expect(parseSettings({ ...sshInputs(), repository }, TAG_CONTEXT).repository).toBe(repository);
  });

  test('a relative path is refused before connecting, naming the input and the forms', () => {
    expect(inputErrorOf(() => parseSettings({ ...sshInputs(), repository: 'relative/path' }, TAG_CONTEXT)).message).toBe(
      "repository: 'relative/path' is a relative path, which the host would resolve against an unknown directory; expected a git URL the host can fetch: 'https://…', 'ssh://…', 'file:///path', 'git@host:path', or an absolute path on the host such as '/srv/git/app.git'",
    );
  });
});

describe('upload', () => {
  const base = { hosts: 'local', 'deploy-path': '/srv/app', release: 'v1' };

  test('relative to the workspace, absolute as given; upload-exclude as lines', () => {
    const settings = parseSettings({ ...base, upload: 'build/', 'upload-exclude': 'node_modules/\n# comment\n\n*.log\r\n' }, { workspace: '/home/runner/work/app/app' });
    expect(settings.upload).toBe('/home/runner/work/app/app/build');
    expect(settings.uploadExclude).toEqual(['node_modules/', '*.log']);
    expect(parseSettings({ ...base, upload: '/tmp/site/../dist' }).upload).toBe('/tmp/dist');
  });

  test('refused together with repository, naming the input', () => {
    expect(() => parseSettings({ ...base, upload: 'dist', repository: 'https://example.com/app.git' })).toThrow(
      "upload: is set together with repository (https://example.com/app.git); a release has one source; expected either upload (files from the runner) or repository (fetched by each host), not both",
    );
  });

  test('ignored by the commands that ship nothing', () => {
    expect(parseSettings({ ...base, command: 'status', upload: 'dist' }).upload).toBe('');
  });
});
