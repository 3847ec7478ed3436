import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UploadError, type UploadSource, readUpload } from '../../src/upload/tree.js';
import { tarStream } from '../../src/upload/tar.js';
import { describeTree, extract, pythonTars, removeDir, tarBytes, tempDir, writeTree } from './upload-fixtures.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('archive');
});
afterAll(() => removeDir(dir));

async function refusal(archive: string): Promise<UploadError> {
  const error = await readUpload(archive, []).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UploadError);
  return error as UploadError;
}

async function bytesOf(source: UploadSource, path: string): Promise<string> {
  const { reader } = source;
  if (reader.kind !== 'archive') throw new Error(`${source.root} is not read as an archive`);
  const chunks: Buffer[] = [];
  for await (const chunk of reader.open(source.entries.find((entry) => entry.path === path)!)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('readUpload: a hostile archive is refused, the member named', () => {
  const cases: [string, string, RegExp][] = [
    ['absolute', `add('ok.txt', data=b'x')\nadd('/etc/passwd', data=b'root::0:0::/:/bin/sh\\n')`, /member '\/etc\/passwd' is an absolute path/],
    ['dotdot', `add('../x', data=b'x')`, /member '\.\.\/x' is a path with a "\.\." component/],
    ['inner dotdot', `add('a/../../x', data=b'x')`, /member 'a\/\.\.\/\.\.\/x' is a path with a "\.\." component/],
    ['through symlink', `add('link', tarfile.SYMTYPE, linkname='/etc')\nadd('link/passwd', data=b'x')`, /member 'link\/passwd' passes through the symlink 'link' made earlier in the archive/],
    ['through nested symlink', `add('a/', tarfile.DIRTYPE)\nadd('a/l', tarfile.SYMTYPE, linkname='../..')\nadd('a/l/b/c', data=b'x')`, /member 'a\/l\/b\/c' passes through the symlink 'a\/l'/],
    ['hard link outside', `add('h', tarfile.LNKTYPE, linkname='../outside')`, /member 'h' is a hard link to '\.\.\/outside', a path with a "\.\." component/],
    ['hard link absolute', `add('h', tarfile.LNKTYPE, linkname='/etc/shadow')`, /member 'h' is a hard link to '\/etc\/shadow', an absolute path/],
    ['hard link missing', `add('h', tarfile.LNKTYPE, linkname='later')\nadd('later', data=b'x')`, /member 'h' is a hard link to 'later', which is not an earlier file of the archive/],
    ['char device', `add('dev', tarfile.CHRTYPE)`, /member 'dev' is a device file/],
    ['block device', `add('disk', tarfile.BLKTYPE)`, /member 'disk' is a device file/],
    ['fifo', `add('pipe', tarfile.FIFOTYPE)`, /member 'pipe' is a FIFO/],
    ['symlink over a directory', `add('d/f', data=b'x')\nadd('d', tarfile.SYMTYPE, linkname='/tmp')`, /member 'd' replaces the directory of the same name/],
  ];
  const archiveOf = (label: string) => join(dir, `${label.replaceAll(' ', '-')}.tar.gz`);
  beforeAll(() => pythonTars(Object.fromEntries(cases.map(([label, script]) => [archiveOf(label), script]))));

  test.each(cases)('%s', async (label, _script, message) => {
    const archive = archiveOf(label);
    const error = await refusal(archive);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^upload: archive .*\.tar\.gz: member .*; expected an archive whose members stay inside the release/);
    expect(error.entry).toBeDefined();
  });

  test('a file that is not a tar archive', async () => {
    writeFileSync(join(dir, 'junk.tar'), 'this is not a tar archive'.repeat(40));
    expect((await refusal(join(dir, 'junk.tar'))).message).toMatch(/^upload: junk\.tar is not a readable tar archive \(no valid tar header at byte 0\); expected a \.tar/);
    writeFileSync(join(dir, 'junk.tgz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
    expect((await refusal(join(dir, 'junk.tgz'))).message).toMatch(/junk\.tgz is not a readable tar archive/);
  });

  test('an empty archive has nothing to upload', async () => {
    pythonTars({ [join(dir, 'empty.tar')]: '' });
    expect((await refusal(join(dir, 'empty.tar'))).message).toMatch(/archive '.*empty\.tar' has nothing to upload/);
  });
});

describe('readUpload: archives made by GNU tar and Python', () => {
  const long = `${'deep/'.repeat(25)}file-with-a-name-longer-than-one-hundred-bytes.txt`;
  let tree: string;
  beforeAll(() => {
    tree = join(dir, 'tree');
    writeTree(tree, {
      'a/b/c.txt': 'hello',
      'empty/': '',
      'bin/run': { mode: 0o755, data: '#!/bin/sh\necho run\n' },
      'name with spaces – ünïcödé.txt': 'utf8',
      [long]: 'long',
      'rel': { link: 'a/b/c.txt' },
      'abs': { link: '/etc/hostname' },
      'x.log': 'excluded',
    });
    // A hard link inside the archive: GNU tar records the second name as a link member.
    execFileSync('ln', [join(tree, 'a/b/c.txt'), join(tree, 'hard.txt')]);
  });

  test.each(['gnu', 'pax', 'pax-gzip'])('%s format: listed like the directory, hard links as copies, bytes read back', async (format) => {
    const archive = join(dir, `site-${format}.${format.endsWith('gzip') ? 'tgz' : 'tar'}`);
    const formatArgs = format === 'pax-gzip' ? ['--format=pax', '-z'] : [`--format=${format}`];
    execFileSync('tar', [...formatArgs, '-cf', archive, '-C', tree, '.']);
    const fromArchive = await readUpload(archive, ['*.log']);
    const fromDir = await readUpload(tree, ['*.log']);
    expect(fromArchive.kind).toBe('archive');
    // The archive's root member './' carries no entry; modes of every member come through.
    expect(fromArchive.entries).toEqual(fromDir.entries);
    expect(fromArchive.listHash).toBe(fromDir.listHash);
    expect(await bytesOf(fromArchive, 'hard.txt')).toBe('hello');
    expect(await bytesOf(fromArchive, long)).toBe('long');

    const out = join(dir, `out-${format}`);
    mkdirSync(out);
    const tar = tarStream(fromArchive, fromArchive.entries);
    await extract(tarBytes(tar), out);
    const expected = describeTree(tree);
    delete expected['x.log'];
    expect(describeTree(out)).toEqual(expected);
  });

  test('members without directory members get their directories; a later member of the same name wins; setuid dropped', async () => {
    const archive = join(dir, 'loose.tar');
    pythonTars({ [archive]: `add('x/y/z.txt', data=b'one')\nadd('x/y/z.txt', data=b'two')\nadd('tool', data=b'bin', mode=0o4755)\nadd('./', tarfile.DIRTYPE)` });
    const source = await readUpload(archive, []);
    expect(source.entries.map(({ path, type, mode, size }) => `${path} ${type} ${mode.toString(8)} ${size}`)).toEqual(['tool file 755 3', 'x dir 755 0', 'x/y dir 755 0', 'x/y/z.txt file 644 3']);
    expect(await bytesOf(source, 'x/y/z.txt')).toBe('two');
    expect(source.skipped).toEqual([{ path: 'tool', why: 'setuid/setgid/sticky bits dropped' }]);
  });

  test('upload-exclude applies inside an archive, to members under an excluded directory too', async () => {
    const archive = join(dir, 'deps.tar.gz');
    pythonTars({ [archive]: `add('node_modules/a/index.js', data=b'x')\nadd('app.js', data=b'y')\nadd('.git/HEAD', data=b'z')` });
    const source = await readUpload(archive, ['node_modules/']);
    expect(source.entries.map((entry) => entry.path)).toEqual(['app.js']);
  });
});
