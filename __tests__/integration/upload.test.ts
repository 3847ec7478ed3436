/**
 * `upload` over a real sshd (and hosts: local): the tree on the runner lands in
 * releases/<tag> exactly, and a re-deploy sends only what changed.
 */
import { appendFileSync, chmodSync, chownSync, cpSync, mkdirSync, existsSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { InputError } from '../../src/core/errors.js';
import { renderSummary } from '../../src/core/result.js';
import { runCommand } from '../../src/commands/run.js';
import { parseSettings } from '../../src/core/settings.js';
import { deployRootFor, openTempDir, recordingLogger, runTagflip } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';
import { noise, sampleTree, treeHash } from '../support/trees.js';

let sshd: TestSshd;
let root: string;
let sites = 0;

beforeAll(async () => {
  sshd = await startSshd();
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  await sshd?.stop();
});

const newSite = () => join(root, `site${++sites}`);
const deploy = (site: string, inputs: Record<string, string>) => runTagflip(sshd, site, '', inputs);
const MB = 1024 * 1024;

/** The settings of a deploy of `upload` to the test sshd, for runCommand with a logger of the test's own. */
const sshdSettings = (site: string, release: string, upload: string) =>
  parseSettings({ hosts: `${sshd.user}@${sshd.host}:${sshd.port}`, 'private-key': sshd.privateKey, 'known-hosts': sshd.knownHosts, 'deploy-path': site, release, upload });

/** A logger that makes `file` grow once the tree is listed (sizes taken) and before it is hashed: the deploy then fails after the facts. */
function growingOnceListed(file: string, text: string) {
  const logger = recordingLogger();
  const info = logger.info;
  logger.info = (message) => {
    if (message.startsWith('upload: ') && message.includes(' entries, ')) appendFileSync(file, text);
    info(message);
  };
  return logger;
}

test('a directory lands in the release exactly: nested and empty dirs, symlinks, modes, UTF-8 names, a 20 MB file', async () => {
  const tree = sampleTree();
  const site = newSite();
  const { result, host, log } = await deploy(site, { release: 'v1', upload: tree });
  expect(host.error).toBe('');
  expect(result.status).toBe('deployed');
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  expect(treeHash(join(site, 'releases/v1'))).toEqual(treeHash(tree));
  expect(treeHash(tree)).toContain('run.sh file 755 ' + treeHash(tree).find((line) => line.startsWith('run.sh'))!.split(' ')[3]);
  // The content list is recorded next to the manifest.
  const list = readFileSync(join(site, '.tagflip/releases/v1.files'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  expect(list.map((entry) => entry.path)).toContain('Grüße aus Köln.txt');
  expect(host.uploadBytes).toBeGreaterThan(20 * MB);
  expect(log).toMatch(/: 8 files \(0 unchanged, copied on the host\), 2\d\.\d MB sent in \d+\.\d s/);
  expect(renderSummary(result, 'tagflip deploy')).toMatch(/\| sent \|[\s\S]*\| 2\d\.\d MB \|/);
}, 60_000);

test('hosts: local gets the same tree', async () => {
  const tree = sampleTree(2);
  const site = join(openTempDir('tagflip-local-'), 'site');
  const logger = recordingLogger();
  const result = await runCommand(parseSettings({ hosts: 'local', 'deploy-path': site, release: 'v1', upload: tree }), logger);
  expect(result.hosts[0].error).toBe('');
  expect(treeHash(join(site, 'releases/v1'))).toEqual(treeHash(tree));
}, 30_000);

test('build runs after the files are in place, shared-dirs are linked after them', async () => {
  const tree = sampleTree(1);
  writeFileSync(join(tree, 'build.sh'), 'cat app/index.js keep.txt > built.txt\nls log > listed.txt\n');
  cpSync(join(tree, 'app'), join(tree, 'log'), { recursive: true });
  const site = newSite();
  const { host } = await deploy(site, { release: 'v1', upload: tree, build: 'sh build.sh', 'shared-dirs': 'log' });
  expect(host.error).toBe('');
  const release = join(site, 'releases/v1');
  expect(readFileSync(join(release, 'built.txt'), 'utf8')).toBe('console.log("v1");\nunchanged between releases\n');
  expect(readlinkSync(join(release, 'log'))).toBe(join(site, 'shared/log'));
  // shared-dirs replaced the uploaded log/ before the build ran: it listed shared/log, empty.
  expect(readFileSync(join(release, 'listed.txt'), 'utf8')).toBe('');
}, 30_000);

test('a second deploy sends only what changed, matches a full upload, and leaves the previous release untouched', async () => {
  const tree = sampleTree(8);
  const site = newSite();
  expect((await deploy(site, { release: 'v1', upload: tree })).host.error).toBe('');
  const v1Before = treeHash(join(site, 'releases/v1'));

  writeFileSync(join(tree, 'app/index.js'), 'console.log("v2");\n'); // changed
  writeFileSync(join(tree, 'app/lib/new.js'), 'export const added = true;\n'); // added
  unlinkSync(join(tree, 'gone.txt')); // removed
  chmodSync(join(tree, 'modes.txt'), 0o600); // mode change
  unlinkSync(join(tree, 'current-doc'));
  symlinkSync('run.sh', join(tree, 'current-doc')); // retargeted
  // A build that rewrites an unchanged (copied) file in place.
  const build = 'printf "rewritten by the build\\n" >> keep.txt';
  const { host, log } = await deploy(site, { release: 'v2', upload: tree, build });
  expect(host.error).toBe('');
  expect(log).toMatch(/: 8 files \(5 unchanged, copied on the host\), 0\.\d MB sent/);
  expect(host.uploadBytes).toBeLessThan(64 * 1024);
  expect(treeHash(join(site, 'releases/v1'))).toEqual(v1Before);

  // The same tree and build uploaded in full elsewhere: the same release.
  const fresh = newSite();
  expect((await deploy(fresh, { release: 'v2', upload: tree, build })).host.error).toBe('');
  expect(treeHash(join(site, 'releases/v2'))).toEqual(treeHash(join(fresh, 'releases/v2')));
  expect(readFileSync(join(site, 'releases/v2/keep.txt'), 'utf8')).toBe('unchanged between releases\nrewritten by the build\n');

  // keep.txt was rewritten in releases/v2 since its upload: the next deploy sends it again rather than copy it.
  const next = await deploy(site, { release: 'v3', upload: tree });
  expect(next.host.error).toBe('');
  expect(next.log).toMatch(/: 8 files \(7 unchanged, copied on the host\)/);
  expect(treeHash(join(site, 'releases/v3'))).toEqual(treeHash(tree));
}, 60_000);

test('a read-only directory keeps its copied files and gets its changed ones: the copy is done before tar sets its mode', async () => {
  const tree = sampleTree(8);
  mkdirSync(join(tree, 'locked/deeper'), { recursive: true });
  for (const name of ['a.txt', 'b.txt', 'deeper/c.txt']) writeFileSync(join(tree, 'locked', name), `${name} v1\n`);
  chmodSync(join(tree, 'locked/deeper'), 0o555);
  chmodSync(join(tree, 'locked'), 0o555);
  const site = newSite();
  try {
    expect((await deploy(site, { release: 'v1', upload: tree })).host.error).toBe('');
    chmodSync(join(tree, 'locked'), 0o755);
    writeFileSync(join(tree, 'locked/b.txt'), 'b.txt v2\n'); // changed, in the read-only directory
    chmodSync(join(tree, 'locked'), 0o555);
    const { host, log } = await deploy(site, { release: 'v2', upload: tree });
    expect(host.error).toBe('');
    expect(log).toMatch(/unchanged, copied on the host/);
    expect(treeHash(join(site, 'releases/v2'))).toEqual(treeHash(tree));
  } finally {
    chmodSync(join(tree, 'locked'), 0o755);
    chmodSync(join(tree, 'locked/deeper'), 0o755);
  }
}, 60_000);

/** What is left in .tagflip of the copy a session starts with the facts (src/remote/host/precopy.sh). */
const precopyLeftovers = (site: string) => readdirSync(join(site, '.tagflip')).filter((name) => name.startsWith('precopy'));

test('the host copies the current files with the facts; the plan trims that copy to a full upload: a directory gone, a file now a directory, a directory now a symlink', async () => {
  const tree = sampleTree(1);
  mkdirSync(join(tree, 'old/inner'), { recursive: true });
  writeFileSync(join(tree, 'old/inner/a.txt'), 'in a directory removed next\n');
  writeFileSync(join(tree, 'becomes-dir'), 'a file, then a directory\n');
  mkdirSync(join(tree, 'becomes-link'));
  writeFileSync(join(tree, 'becomes-link/b.txt'), 'in a directory that turns into a symlink\n');
  // Files over 1 MiB, which the host lists for its copy ahead of the others.
  writeFileSync(join(tree, 'app/large-kept.bin'), noise(2 * MB, 1));
  writeFileSync(join(tree, 'large-changed.bin'), noise(2 * MB, 2));
  const site = newSite();
  expect((await deploy(site, { release: 'v1', upload: tree })).host.error).toBe('');
  const v1Before = treeHash(join(site, 'releases/v1'));

  rmSync(join(tree, 'old'), { recursive: true });
  unlinkSync(join(tree, 'becomes-dir'));
  mkdirSync(join(tree, 'becomes-dir'));
  writeFileSync(join(tree, 'becomes-dir/c.txt'), 'now inside\n');
  rmSync(join(tree, 'becomes-link'), { recursive: true });
  symlinkSync('app', join(tree, 'becomes-link'));
  writeFileSync(join(tree, 'app/index.js'), 'console.log("v2");\n');
  writeFileSync(join(tree, 'large-changed.bin'), noise(2 * MB, 3));
  const logger = recordingLogger();
  logger.debug = (message) => logger.lines.push(`debug: ${message}`);
  expect((await runCommand(sshdSettings(site, 'v2', tree), logger)).hosts[0].error).toBe('');
  expect(logger.text()).toMatch(/\(8 unchanged, copied on the host\)/);
  expect(logger.text()).toMatch(/debug: .*: releases\/v2 starts from the copy of releases\/v1 made with the facts/);
  expect(treeHash(join(site, 'releases/v2'))).toEqual(treeHash(tree));
  expect(treeHash(join(site, 'releases/v1'))).toEqual(v1Before);
  expect(precopyLeftovers(site)).toEqual([]);
}, 60_000);

test('a deploy that ends after the facts stops the copy the host started with them, and leaves nothing of it', async () => {
  const tree = openTempDir('tagflip-precopy-');
  for (let d = 0; d < 20; d += 1) {
    mkdirSync(join(tree, `d${d}`));
    for (let f = 0; f < 100; f += 1) writeFileSync(join(tree, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`.repeat(20));
  }
  const site = newSite();
  expect((await deploy(site, { release: 'v1', upload: tree })).host.error).toBe('');
  // The next deploy fails once the facts are in: a file grows while the runner hashes it.
  writeFileSync(join(tree, 'big.bin'), noise(64 * MB, 5));
  const { hosts } = await runCommand(sshdSettings(site, 'v2', tree), growingOnceListed(join(tree, 'd19/f99.txt'), 'grown\n'));
  expect(hosts[0].error).toMatch(/changed while being read/);
  // The host ends the session after the client has gone: give it a moment.
  for (let i = 0; i < 50 && precopyLeftovers(site).length > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
  expect(precopyLeftovers(site)).toEqual([]);
  expect(readdirSync(join(site, 'releases'))).toEqual(['v1']);
  expect(spawnSync('pgrep', ['-u', sshd.user, '-f', 'cp --parents']).status).toBe(1);
  // And the next deploy takes the copy its own facts start.
  const next = await deploy(site, { release: 'v2', upload: tree });
  expect(next.host.error).toBe('');
  expect(treeHash(join(site, 'releases/v2'))).toEqual(treeHash(tree));
  expect(precopyLeftovers(site)).toEqual([]);
}, 60_000);

test('when the copy made with the facts fails, the unchanged files are copied then, checked the same way (the CLI, hosts: local, timeout failing)', () => {
  const tree = sampleTree(1);
  const site = join(openTempDir('tagflip-local-'), 'site');
  // The copy runs under timeout (nothing else of an upload without hooks does): here it fails at once, making nothing.
  const bin = openTempDir('tagflip-failing-timeout-');
  writeFileSync(join(bin, 'timeout'), '#!/bin/sh\nexit 1\n');
  chmodSync(join(bin, 'timeout'), 0o755);
  const cli = (release: string, path = process.env.PATH) =>
    spawnSync(process.execPath, ['bin/tagflip.js', 'deploy', '--hosts', 'local', '--deploy-path', site, '--release', release, '--upload', tree], {
      encoding: 'utf8',
      env: { ...process.env, PATH: path, TAGFLIP_DEBUG: '1' },
    });
  expect(cli('v1').stdout).toContain('status: deployed');
  writeFileSync(join(tree, 'app/index.js'), 'console.log("v2");\n');
  const failing = cli('v2', `${bin}:${process.env.PATH}`);
  expect(failing.stdout).toContain('status: deployed');
  expect(failing.stderr).toMatch(/\(7 unchanged, copied on the host\)/);
  expect(failing.stderr).toMatch(/debug: local: releases\/v2 starts from the unchanged files of releases\/v1, copied after the copy made with the facts failed/);
  expect(treeHash(join(site, 'releases/v2'))).toEqual(treeHash(tree));
  expect(precopyLeftovers(site)).toEqual([]);
  // The same with a timeout that works: the copy made with the facts is taken.
  writeFileSync(join(tree, 'app/index.js'), 'console.log("v3");\n');
  const taken = cli('v3');
  expect(taken.stderr).toMatch(/debug: local: releases\/v3 starts from the copy of releases\/v2 made with the facts/);
  expect(treeHash(join(site, 'releases/v3'))).toEqual(treeHash(tree));
}, 60_000);

test('the bytes are asked for as the build begins: a build that fails before its upload step reads them all, and the session goes on', async () => {
  const tree = sampleTree(2);
  const site = newSite();
  expect((await deploy(site, { release: 'v1', upload: tree })).host.error).toBe('');
  writeFileSync(join(tree, 'app/index.js'), 'console.log("v2");\n');
  // prepare cannot make releases/v2: the phase fails after the host asked for the bytes.
  chmodSync(join(site, 'releases'), 0o555);
  try {
    const { host, log } = await deploy(site, { release: 'v2', upload: tree });
    expect(host.status).toBe('failed');
    expect(host.error).toMatch(/prepare failed: cannot create .*releases\/v2/);
    // Left unread, the bytes were read by the session's shell as commands ("Syntax error: ...").
    expect(log).not.toMatch(/sh: \d+: /);
  } finally {
    chmodSync(join(site, 'releases'), 0o755);
  }
  // Nothing of the bytes was run as commands: the lock was freed, current is v1, and the next deploy succeeds.
  expect(readlinkSync(join(site, 'current'))).toBe('releases/v1');
  const next = await deploy(site, { release: 'v2', upload: tree });
  expect(next.host.error).toBe('');
  expect(treeHash(join(site, 'releases/v2'))).toEqual(treeHash(tree));
}, 60_000);

test('dry-run says what would be sent, per host, and sends nothing', async () => {
  const tree = sampleTree(1);
  const site = newSite();
  await deploy(site, { release: 'v1', upload: tree });
  appendFileSync(join(tree, 'app/index.js'), '// more\n');
  const { result, log } = await deploy(site, { release: 'v2', upload: tree, 'dry-run': 'true' });
  expect(result.status).toBe('dry-run');
  expect(log).toContain(`${sshd.user}@127.0.0.1:${sshd.port}: dry run: would send 8 files (7 unchanged, copied on the host), 0.0 MB to releases/v2`);
  expect(existsSync(join(site, 'releases/v2'))).toBe(false);
}, 30_000);

describe('refused before connecting', () => {
  // Port 1 refuses connections: a refusal here can only come from the inputs.
  const run = (inputs: Record<string, string>) =>
    runCommand(parseSettings({ hosts: 'deploy@127.0.0.1:1', 'private-key': sshd.privateKey, 'known-hosts': sshd.knownHosts.replaceAll(`]:${sshd.port} `, ']:1 '), 'deploy-path': '/srv/app', release: 'v1', ...inputs }), recordingLogger());

  test('upload together with repository', () => {
    expect(() => run({ upload: 'dist', repository: 'https://example.com/app.git' })).toThrow(/^upload: is set together with repository/);
  });

  test('a missing path, an empty directory', async () => {
    const missing = join(openTempDir('tagflip-none-'), 'dist');
    await expect(run({ upload: missing })).rejects.toThrow(InputError);
    await expect(run({ upload: missing })).rejects.toThrow(/^upload: /);
    const empty = openTempDir('tagflip-empty-');
    await expect(run({ upload: empty })).rejects.toThrow(/^upload: .*empty/);
    rmSync(empty, { recursive: true });
  });

  test('a file the runner cannot read is refused, named, before any connection (the CLI, not as root)', async () => {
    const tree = sampleTree(1);
    writeFileSync(join(tree, 'app/secret.key'), 'not for the runner\n', { mode: 0o600 });
    chownSync(join(tree, 'app/secret.key'), 0, 0);
    const single = join(openTempDir('tagflip-single-'), 'app.jar');
    writeFileSync(single, 'jar bytes', { mode: 0o600 });
    // A listener that counts connections where the host would be.
    let connections = 0;
    const listener = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const { port } = listener.address() as AddressInfo;
    const asUser = (upload: string) =>
      spawnSync('runuser', ['-u', sshd.user, '--', process.execPath, resolve('bin/tagflip.js'), 'deploy', '--hosts', `deploy@127.0.0.1:${port}`, '--deploy-path', '/srv/app', '--release', 'v1', '--upload', upload, '--host-fingerprint', 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'], {
        cwd: '/',
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: process.env.PATH, HOME: '/', TAGFLIP_PRIVATE_KEY: sshd.privateKey },
      });
    try {
      const inTree = asUser(tree);
      expect(inTree.stderr).toMatch(/upload: 'app\/secret\.key' cannot be read \(EACCES\)/);
      expect(inTree.status).toBe(2);
      // A single file is read in the background too: it is checked first all the same.
      const alone = asUser(single);
      expect(alone.stderr).toMatch(/upload: '.*app\.jar' cannot be read \(EACCES\)/);
      expect(alone.status).toBe(2);
      // The runner's own file without its read bit (the owner's bit is taken as it is, without access(2)).
      const own = sampleTree(1);
      writeFileSync(join(own, 'write-only.log'), 'not readable by its owner either\n', { mode: 0o200 });
      const { uid, gid } = { uid: Number(execFileSync('id', ['-u', sshd.user], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', sshd.user], { encoding: 'utf8' })) };
      execFileSync('chown', ['-R', `${uid}:${gid}`, own]);
      chmodSync(join(own, 'write-only.log'), 0o200);
      const ownTree = asUser(own);
      expect(ownTree.stderr).toMatch(/upload: 'write-only\.log' cannot be read \(EACCES\)/);
      expect(ownTree.status).toBe(2);
    } finally {
      await new Promise((done) => listener.close(done));
    }
    expect(connections).toBe(0);
  }, 30_000);

  test('a file that changes while it is hashed fails the deploy before anything changes on the host', async () => {
    const tree = openTempDir('tagflip-changing-');
    // Hashed first (the walk takes the top level before sub-directories), and longer to hash
    // than the one slice that runs before the scan returns: the change lands in between.
    writeFileSync(join(tree, 'big.bin'), noise(64 * MB, 3));
    mkdirSync(join(tree, 'sub'));
    writeFileSync(join(tree, 'sub/late.txt'), 'before\n');
    const site = newSite();
    const { hosts } = await runCommand(sshdSettings(site, 'v1', tree), growingOnceListed(join(tree, 'sub/late.txt'), 'grown while tagflip reads the tree\n'));
    expect(hosts[0].status).toBe('failed');
    expect(hosts[0].error).toMatch(/upload failed: 'sub\/late\.txt' changed while being read \(7 bytes, then \d+\)/);
    expect(existsSync(join(site, 'releases'))).toBe(false);
    expect(existsSync(join(site, 'current'))).toBe(false);
  }, 30_000);

  test('a relative upload is relative to the workspace', () => {
    expect(parseSettings({ hosts: 'local', 'deploy-path': '/srv/app', release: 'v1', upload: 'dist/' }, { workspace: '/home/runner/work/app' }).upload).toBe('/home/runner/work/app/dist');
  });
});

describe('archives, single files and excludes', () => {
  test('a .tar.gz is unpacked into the release; upload-exclude and .git are left out', async () => {
    const tree = sampleTree(1);
    writeFileSync(join(tree, 'debug.log'), 'noise\n');
    const archive = join(openTempDir('tagflip-archive-'), 'site.tar.gz');
    execFileSync('tar', ['-C', tree, '-czf', archive, '.']);
    const site = newSite();
    const { host } = await deploy(site, { release: 'v1', upload: archive, 'upload-exclude': '*.log' });
    expect(host.error).toBe('');
    rmSync(join(tree, 'debug.log'));
    expect(treeHash(join(site, 'releases/v1'))).toEqual(treeHash(tree));
  }, 30_000);

  test('any other single file is copied in as is, under its own name', async () => {
    const file = join(openTempDir('tagflip-single-'), 'app.bin');
    writeFileSync(file, Buffer.from([0, 1, 2, 3, 255]));
    chmodSync(file, 0o755);
    const site = newSite();
    const { host } = await deploy(site, { release: 'v1', upload: file });
    expect(host.error).toBe('');
    expect(readFileSync(join(site, 'releases/v1/app.bin'))).toEqual(Buffer.from([0, 1, 2, 3, 255]));
    expect(treeHash(join(site, 'releases/v1'))).toEqual(['app.bin file 755 ' + treeHash(dirname(file))[0].split(' ')[3]]);
  }, 30_000);

  test('a hostile archive is refused, naming the member, before anything reaches the host', async () => {
    const dir = openTempDir('tagflip-hostile-');
    const archive = join(dir, 'evil.tar');
    // `link -> /tmp` first, then `link/owned` written through it.
    execFileSync('python3', ['-c', `
import io, tarfile
with tarfile.open(${JSON.stringify(archive)}, 'w') as t:
    l = tarfile.TarInfo('link'); l.type = tarfile.SYMTYPE; l.linkname = '/tmp'; t.addfile(l)
    f = tarfile.TarInfo('link/owned'); f.size = 3; t.addfile(f, io.BytesIO(b'pwn'))
`]);
    const site = newSite();
    await expect(deploy(site, { release: 'v1', upload: archive })).rejects.toThrow(/link\/owned/);
    expect(existsSync(site)).toBe(false);
  }, 30_000);
});

describe('one release name, one content (upload)', () => {
  test('the same name with other content: refused while current, rebuilt when not', async () => {
    const first = sampleTree(1);
    const second = sampleTree(1);
    writeFileSync(join(second, 'keep.txt'), 'changed\n');
    const site = newSite();
    expect((await deploy(site, { release: 'staging', upload: first })).host.error).toBe('');
    const refused = await deploy(site, { release: 'staging', upload: second });
    expect(refused.host.status).toBe('failed');
    expect(refused.host.error).toMatch(/releases\/staging is current and was built from .*: deploy under a new release name/);
    expect(treeHash(join(site, 'releases/staging'))).toEqual(treeHash(first));
    expect((await deploy(site, { release: 'v2', upload: first })).host.error).toBe('');
    const rebuilt = await deploy(site, { release: 'staging', upload: second });
    expect(rebuilt.host.error).toBe('');
    expect(rebuilt.log).toMatch(/releases\/staging was built from .* building it again/);
    expect(treeHash(join(site, 'releases/staging'))).toEqual(treeHash(second));
    // The same content again is the same release: activated, not rebuilt.
    expect((await deploy(site, { release: 'v2', upload: first })).host.error).toBe('');
    const again = await deploy(site, { release: 'staging', upload: second });
    expect(again.log).toContain('already built');
  }, 60_000);
});
