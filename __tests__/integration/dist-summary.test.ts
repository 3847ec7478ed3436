import { afterAll, expect, test } from '@jest/globals';
import { readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runDistAction } from '../support/dist-action.js';
import { openTempDir } from '../support/fixtures.js';
import { htmlText, renderGfm, tableCells, tagsOf } from '../support/markdown.js';

// What a host says reaches the job summary through the bundled action: a
// `current` link relinked by hand to a hostile name shows in GitHub's rendering
// as that text, with tagflip's own remedy (`releases/<name>`), never as HTML,
// an image or a link. `hosts: local` is enough: the text is the host's either way.
const root = openTempDir('tagflip-dist-summary-');

afterAll(() => rmSync(root, { recursive: true, force: true }));

const HOSTILE = '<img src=x onerror=alert(1)> [more](https://evil.example/x) `code` *em* | cell';

test("a current link with a hostile name: the summary shows it, and tagflip's remedy, as text", () => {
  const site = join(root, 'site');
  const inputs = { hosts: 'local', 'deploy-path': site, build: 'true' };
  expect(runDistAction({ ...inputs, release: 'v1' }).code).toBe(0);
  rmSync(join(site, 'current'));
  symlinkSync(HOSTILE, join(site, 'current'));

  const run = runDistAction({ ...inputs, release: 'v2' });
  expect(run.code).toBe(1);
  expect(run.outputs).toMatchObject({ status: 'failed' });
  // Nothing flipped: the link is as the operator left it.
  expect(readlinkSync(join(site, 'current'))).toBe(HOSTILE);
  expect(run.summary).not.toMatch(/<img|\]\(|<name>/);

  const html = renderGfm(run.summary);
  expect(tagsOf(html)).toEqual(['h3', 'table', 'thead', 'tr', 'th', 'tbody', 'td']);
  const [row] = tableCells(html).map((cells) => cells.map(htmlText));
  expect(row.slice(0, 2)).toEqual(['local', 'failed']);
  const error = row[6];
  expect(error).toContain(`current points to '${HOSTILE}'`);
  expect(error).toContain('ln -sfn releases/<name> current');
});
