import { describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { anchorsOf, brokenLinks, headingSlug } from '../support/markdown-links.js';

// The README is the getting-started page and docs/ the manual (issue 22): the
// links between them resolve, and the reference of inputs and outputs is the
// one action.yml declares.
const pages = ['README.md', ...readdirSync('docs').filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];

describe('README and docs/', () => {
  test('every relative link names a file that exists, and every anchor a heading of its page', () => {
    expect([...pages, 'CHANGELOG.md', 'examples/hello-site/README.md'].flatMap((page) => brokenLinks(page))).toEqual([]);
  });

  test('the README stays a getting-started page: at most 450 lines, the quick starts and the tests in it', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(450);
    const anchors = anchorsOf(readme);
    expect(['quick-start-github-actions', 'owner-and-pinning', 'quick-start-the-cli', 'running-the-tests'].filter((anchor) => !anchors.has(anchor))).toEqual([]);
    expect(readme).toContain('<!-- example: examples/workflows/deploy-on-tag.yml -->');
    expect(readme).toContain('node bin/tagflip.js deploy');
    expect(readme).toContain('bash .ci/run');
    // The package is not published: the README must not send anyone to the registry for it.
    expect(readme.split('\n').filter((line) => /npx tagflip/.test(line) && !/does not work yet|will run/.test(line))).toEqual([]);
  });
});

/** The rows of the first table under `## heading`: [name, second column]. */
function tableRows(markdown: string, heading: string): [string, string][] {
  const section = markdown.split(/^## /m).find((part) => part.startsWith(`${heading}\n`)) ?? '';
  return [...section.matchAll(/^\| `([a-z-]+)` \|([^|]*)\|/gm)].map((match) => [match[1], match[2].trim()]);
}

describe('docs/inputs-and-outputs.md', () => {
  const action = YAML.parse(readFileSync('action.yml', 'utf8')) as {
    inputs: Record<string, { default?: string; required?: boolean }>;
    outputs: Record<string, unknown>;
  };
  const reference = readFileSync('docs/inputs-and-outputs.md', 'utf8');

  test('has a row for every input of action.yml and for no other', () => {
    const rows = tableRows(reference, 'Inputs').map(([name]) => name);
    expect(rows.filter((name, index) => rows.indexOf(name) !== index)).toEqual([]);
    expect([...rows].sort()).toEqual(Object.keys(action.inputs).sort());
  });

  // A declared default is written as it is; a required input says so; an input
  // without a default in action.yml shows an empty cell or words (`the pushed
  // tag`), never a bare value that action.yml does not declare.
  test("gives each input action.yml's default", () => {
    const wrong = tableRows(reference, 'Inputs').flatMap(([name, cell]) => {
      const input = action.inputs[name] ?? {};
      const expected = input.required ? '**required**' : input.default !== undefined ? `\`${input.default}\`` : undefined;
      if (expected !== undefined) return cell === expected ? [] : [`${name}: the docs say ${JSON.stringify(cell)}, action.yml ${expected}`];
      return /^(`[^`<]*`|\d+)$/.test(cell) ? [`${name}: the docs give the default ${cell}, action.yml declares none`] : [];
    });
    expect(wrong).toEqual([]);
  });

  test('has a row for every output of action.yml and for no other', () => {
    const rows = tableRows(reference, 'Outputs').map(([name]) => name);
    expect([...rows].sort()).toEqual(Object.keys(action.outputs).sort());
  });
});

// The checks above pass only if they can fail.
describe('the link check', () => {
  test("makes GitHub's anchors", () => {
    expect(headingSlug("What a hook's output cannot do")).toBe('what-a-hooks-output-cannot-do');
    expect(headingSlug('Logging in: keys, the ssh-agent and ssh config')).toBe('logging-in-keys-the-ssh-agent-and-ssh-config');
    expect(headingSlug('`current` relinked by_hand (v1.2)')).toBe('current-relinked-by_hand-v12');
    expect([...anchorsOf('# A\n## Notes\n```\n# not a heading\n```\n### Notes\n')]).toEqual(['a', 'notes', 'notes-1']);
  });

  test('finds a missing file, a missing heading, and an anchor into a file that has none', () => {
    const root = mkdtempSync(join(tmpdir(), 'tagflip-links-'));
    mkdirSync(join(root, 'docs'));
    writeFileSync(join(root, 'docs/a.md'), '# A\n\n## Only what changed\n');
    writeFileSync(join(root, 'x.txt'), '');
    writeFileSync(join(root, 'README.md'), [
      '# R', '',
      'Fine: [a](docs/a.md), [b](docs/a.md#only-what-changed), [c](#r), [d](https://example.com/#x), `[e](gone.md)`.',
      '[f](docs/gone.md) [g](#only-what-changed) [h](docs/a.md#speed)',
      '```', '[i](in-a-fence.md)', '```',
      '```` ```yaml ```` is code in a line, not a fence: [l](gone-too.md)',
      '[j](x.txt#top) [k](../outside.md)', '',
    ].join('\n'));
    expect(brokenLinks('README.md', root)).toEqual([
      'README.md:4: [docs/gone.md] docs/gone.md does not exist',
      'README.md:4: [#only-what-changed] README.md has no heading #only-what-changed',
      'README.md:4: [docs/a.md#speed] docs/a.md has no heading #speed',
      'README.md:8: [gone-too.md] gone-too.md does not exist',
      'README.md:9: [x.txt#top] an anchor into x.txt, which is not a Markdown page',
      'README.md:9: [../outside.md] ../outside.md does not exist',
    ]);
    rmSync(root, { recursive: true });
  });
});
