/**
 * tagflip resolves a host name through an ssh config as OpenSSH does (issue 21):
 * each case is resolved by tagflip and by `ssh -G -F config name` (which prints
 * the resolved options without connecting), run with no network at all
 * (`unshare --net`), and the options tagflip uses must be the same. And reading a
 * config runs nothing: not even the `nslookup` that CanonicalizeHostName made the
 * ssh-config package run.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseSettings } from '../../src/core/settings.js';
import { hostOptions, parseSshConfig, readSshConfig } from '../../src/remote/ssh-config.js';
import { openTempDir } from '../support/fixtures.js';
import { inputErrorOf } from './input-error.js';

const dir = openTempDir('tagflip-ssh-config-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ssh expands ~ with the account's home, not $HOME: the same account here.
const LOCAL = { home: homedir(), user: userInfo().username };

mkdirSync(join(dir, 'conf.d'));
writeFileSync(join(dir, 'conf.d', 'b.conf'), 'Host inc\n  Port 2002\n');
writeFileSync(join(dir, 'conf.d', 'a.conf'), 'Host inc\n  Port 2001\n  User incuser\n');
writeFileSync(join(dir, 'conf.d', '.hidden'), 'Host *\n  Port 9999\n');
writeFileSync(join(dir, 'blocked.conf'), 'Host *\n  HostName from-blocked\n');

/** Configs, each with the names (a user given as user@name) to resolve through it. */
const CASES: [string, string, string[]][] = [
  ['? is exactly one character', 'Host stage?\n  HostName one\nHost *\n  HostName other\n', ['stage', 'stage1', 'stage12', 'STAGE1']],
  ['* is any run, also none', 'Host web*.example db*\n  Port 2201\n', ['web.example', 'web12.example', 'db', 'webexample', 'xdb']],
  ['Host patterns keep their case', 'Host WEB1\n  Port 1\nhost X*\n  port 2\n', ['web1', 'WEB1', 'Xa', 'xa']],
  ['a negated Host pattern wins over every other', 'Host * !bad !worse?\n  Port 11\nHost bad\n  Port 12\n', ['good', 'bad', 'worse1', 'worse']],
  ['Host patterns are blank-separated; a comma is a character', 'Host a,b c\n  Port 3\nHost "quoted host" d\n  Port 4\n', ['a', 'b', 'c', 'd']],
  ['Match host: a list with a negation, a negated criterion, all', 'Match !host web*\n  Port 13\nMatch host web*,!web9\n  Port 14\nMatch all\n  User all\n', ['db', 'web1', 'web9', 'WEB2']],
  ['Match originalhost and host lower-case the name', 'Match originalhost WEB*\n  Port 5\nMatch host x\n  User mx\n', ['WEB1', 'web1', 'X']],
  ['Match host sees HostName (%h expanded), lower-cased', 'Host x y\n  HostName %h.Example\nMatch host x.example\n  Port 31\nMatch host y\n  Port 32\n', ['x', 'y', 'X']],
  ['Match user: the user given, else the config\'s User, else the login name', `Match user deploy\n  Port 32\nMatch originalhost set\n  User ox\nMatch user ox\n  Port 33\nMatch localuser ${LOCAL.user}\n  IdentityFile /keys/local\nMatch user ${LOCAL.user}\n  IdentityFile /keys/self\n`, ['x', 'deploy@x', 'set', 'other@set']],
  ['Match final asks for a final pass, where canonical and final match, and Host lines see HostName', 'Host x\n  HostName H1\nMatch canonical\n  Port 7\nMatch final\n  User fin\nHost h1\n  IdentityFile /keys/h1\nMatch originalhost h1\n  Port 36\n', ['x', 'y']],
  ['without Match final, canonical never matches', 'Match canonical\n  Port 7\nHost x\n  HostName X.Example\nMatch host x.example\n  User hx\n', ['x']],
  ['!final matches in the first pass; canonical final in the last', 'Match !final\n  Port 33\nMatch canonical final\n  User ff\n', ['x']],
  ['CanonicalizeHostName no, first, wins over a later yes', 'Host x\n  CanonicalizeHostName no\nHost *\n  CanonicalizeHostName yes\n  CanonicalDomains a.example b.example\n  CanonicalizeMaxDots 0\n', ['x']],
  ['Include: globbed, sorted, no dot files', `Include ${dir}/conf.d/*\nHost *\n  Port 15\n`, ['inc', 'other']],
  ['Include in a block applies only with it; the block goes on after it', `Host q\n  Include ${dir}/conf.d/a.conf\nHost r\n  Include ${dir}/conf.d/a.conf\n  Port 18\nHost s\n  Include ${dir}/blocked.conf\n`, ['q', 'r', 's', 'inc']],
  ['options before any Host apply to all; the first value wins', 'Port 41\nHost x\n  Port 42\n  HostName first\n  HostName second\n', ['x']],
  [
    'IdentityFile adds up, UserKnownHostsFile and ProxyJump: the first; Key=Value and quotes',
    'Host p\n  IdentityFile /keys/1\n  UserKnownHostsFile /kh/1 /kh/2\n  ProxyJump j1\nHost *\n  IdentityFile=/keys/2\n  UserKnownHostsFile /kh/3\n  ProxyJump = gate:2222\n  Port=19\n  User "op"\n',
    ['p', 'o'],
  ],
  ['ProxyCommand none takes the place of a later ProxyJump', 'Host p\n  ProxyCommand none\nHost *\n  ProxyJump j2\n', ['p', 'o']],
  ['comments and blank lines', '# a comment\n\nHost x # trailing\n  Port 51 # more\n', ['x']],
];

/** The options tagflip uses, as `ssh -G` prints them. */
interface Resolved {
  hostname: string;
  port: string;
  user: string;
  identityfile: string[];
  proxyjump: string[];
  userknownhostsfile: string[];
}

function sshG(config: string, destination: string): Resolved {
  const run = spawnSync('unshare', ['--net', 'ssh', '-G', '-F', config, destination], { encoding: 'utf8', timeout: 10_000 });
  if (run.status !== 0) throw new Error(`ssh -G ${destination}: ${run.stderr}`);
  const values = (key: string) =>
    run.stdout
      .split('\n')
      .filter((line) => line.startsWith(`${key} `))
      .map((line) => line.slice(key.length + 1));
  return {
    hostname: values('hostname')[0],
    port: values('port')[0],
    user: values('user')[0],
    // ssh prints its default key files when none is set; tagflip then has none of its own.
    identityfile: values('identityfile').filter((file) => !file.startsWith('~/.ssh/id_')),
    proxyjump: values('proxyjump'),
    userknownhostsfile: values('userknownhostsfile').flatMap((line) => line.split(' ')),
  };
}

function tagflip(text: string, file: string, destination: string): Resolved {
  const [user, name] = destination.includes('@') ? destination.split('@') : [undefined, destination];
  const options = hostOptions(parseSshConfig(text, file), name, LOCAL, user);
  return {
    hostname: options.hostName ?? name.toLowerCase(),
    port: options.port ?? '22',
    user: user ?? options.user ?? LOCAL.user,
    identityfile: options.identityFiles,
    proxyjump: options.proxyJump === undefined || options.proxyJump === 'none' ? [] : [options.proxyJump],
    userknownhostsfile: options.userKnownHostsFiles.length > 0 ? options.userKnownHostsFiles : [join(LOCAL.home, '.ssh/known_hosts'), join(LOCAL.home, '.ssh/known_hosts2')],
  };
}

describe.each(CASES)('as ssh -G: %s', (_what, text, destinations) => {
  const file = join(dir, `config-${CASES.findIndex(([, other]) => other === text)}`);
  writeFileSync(file, text);
  test.each(destinations)('%s', (destination) => {
    expect(tagflip(text, file, destination)).toEqual(sshG(file, destination));
  });
});

describe('reading a config runs nothing', () => {
  // An nslookup first on PATH that leaves a mark when it runs.
  const bin = join(dir, 'bin');
  const mark = join(dir, 'nslookup-ran');
  mkdirSync(bin);
  writeFileSync(join(bin, 'nslookup'), `#!/bin/sh\necho "$@" >> '${mark}'\necho 'Name: x'\n`);
  chmodSync(join(bin, 'nslookup'), 0o755);
  const canonical = 'Host *\n  CanonicalizeHostName yes\n  CanonicalDomains a.example b.example\n';
  const withFakePath = <T>(run: () => T): T => {
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      return run();
    } finally {
      process.env.PATH = path;
    }
  };

  test('the fake nslookup is what PATH finds', () => {
    withFakePath(() => execFileSync('nslookup', ['probe'], { env: process.env }));
    expect(existsSync(mark)).toBe(true);
    rmSync(mark);
  });

  test('CanonicalizeHostName yes with two CanonicalDomains: refused, naming the option and the remedy; nslookup never runs', () => {
    const file = join(dir, 'canonical');
    writeFileSync(file, canonical);
    const error = withFakePath(() => inputErrorOf(() => parseSettings({ hosts: 'web1', 'deploy-path': '/srv/app', 'insecure-ignore-host-key': 'true' }, { refType: 'tag', refName: 'v1', sshAgent: '/tmp/a', sshConfig: readSshConfig(file, LOCAL) })));
    expect(error.message).toBe(
      `ssh-config: CanonicalizeHostName yes (line 2 of ${file}) applies to web1 in ${file}: ssh would look web1.<domain> up in DNS for each of CanonicalDomains, and tagflip runs nothing and looks nothing up while it reads the config; expected CanonicalizeHostName no for web1 (first value wins: a 'Host web1' block before that line, with 'CanonicalizeHostName no'), and its full name as HostName or in hosts`,
    );
    for (const value of ['always', 'true', 'Yes']) {
      withFakePath(() => expect(inputErrorOf(() => hostOptions(parseSshConfig(`CanonicalizeHostName ${value}\nCanonicalDomains a.example b.example\n`, 'c'), 'web1', LOCAL)).input).toBe('ssh-config'));
    }
    expect(existsSync(mark)).toBe(false);
  });

  test('with CanonicalizeHostName no first for the host, the same config resolves, and nothing runs', () => {
    const options = withFakePath(() => hostOptions(parseSshConfig(`Host web1\n  CanonicalizeHostName no\n  HostName 10.0.0.11\n${canonical}`, 'c'), 'web1', LOCAL));
    expect(options.hostName).toBe('10.0.0.11');
    expect(existsSync(mark)).toBe(false);
  });
});
