import { describe, expect, test } from '@jest/globals';
import { markdownText } from '../../src/core/markdown.js';
import { type HostResult, renderStoppedSummary, renderSummary, summarize } from '../../src/core/result.js';
import { htmlText, renderGfm, tableCells, tagsOf } from '../support/markdown.js';
import { host } from './host-result.js';

// Text from a host or an input reaches the job summary, which GitHub renders as
// Markdown with raw HTML. Each value below must show as the characters it is:
// checked on the Markdown, and on the HTML of GitHub's own renderer.
const HOSTILE = [
  '<img src=x onerror=alert(1)> [more](https://evil.example/x)',
  '![pixel](https://evil.example/p.png)',
  '<script>alert(1)</script><!-- hidden -->',
  '<https://evil.example> <a href="https://evil.example">click</a>',
  'see https://evil.example/a and www.evil.example and WWW.EVIL.EXAMPLE and ftp://evil.example',
  '`code` **bold** __bold__ *em* _em_ ~~gone~~ $x^2$',
  'a|b||c \\| d',
  'line 1\nline 2\r\n| --- | --- |\rline 3\u2028line 4\tend\u0000',
  '# heading',
  '- item',
  '+ item',
  '1. item',
  '2) item',
  '> quote',
  '    indented code',
  '[x]: https://evil.example',
  '[!CAUTION] [^1] [ref]',
  '&lt;b&gt; &amp; &#60;i&#62; &copy;',
  '\\[not a link\\](https://evil.example) \\',
  'releases/<name>',
];

/** What the reader must see: the value with each control character a space, trimmed. */
const shown = (value: string) => value.replace(/[\p{Cc}\u2028\u2029]/gu, ' ').trim();

/** Tags GitHub's renderer makes of tagflip's own Markdown: nothing else may appear. */
const OWN_TAGS = ['h3', 'table', 'thead', 'tr', 'th', 'tbody', 'td', 'blockquote', 'p'];

describe('markdownText', () => {
  test.each([
    ['plain text, host names and messages stay as they are', "deploy@web1:2222 v3.0 rolled-back: it's 50%, a/b; c=d?", "deploy@web1:2222 v3.0 rolled-back: it's 50%, a/b; c=d?"],
    ['HTML becomes entities', '<img src=x> & co', '&lt;img src=x&gt; &amp; co'],
    ['a link is escaped', '[more](https://x.example)', '\\[more\\]\\(https\\://x.example\\)'],
    ['an image is escaped', '![x](y)', '\\!\\[x\\]\\(y\\)'],
    ['emphasis, code, strikethrough, math', '`a` *b* _c_ ~d~ $e$', '\\`a\\` \\*b\\* \\_c\\_ \\~d\\~ \\$e\\$'],
    ['the cell separator', 'a|b', 'a\\|b'],
    ['a backslash', 'a\\b', 'a\\\\b'],
    ['www. autolinks are broken', 'www.x.example WWW.y.example', 'www\\.x.example WWW\\.y.example'],
    ['line starts: heading, lists', '# x', '\\# x'],
    ['a leading dash (a list), not a dash inside', '- x-y', '\\- x-y'],
    ['a leading number and dot (a list), not a dot inside', '12. x.y', '12\\. x.y'],
    ['a plus anywhere', '+ x+y', '\\+ x\\+y'],
    ['line breaks and tabs are spaces, the ends trimmed', ' a\nb\r\nc\rd\te\u2028f ', 'a b  c d e f'],
    ['an empty text is empty', '', ''],
  ])('%s', (_what, text, expected) => {
    expect(markdownText(text)).toBe(expected);
  });

  test.each(HOSTILE)('renders as its own text, in no tag: %j', (value) => {
    const html = renderGfm(`${markdownText(value)}\n`);
    expect(tagsOf(html)).toEqual(['p']);
    expect(htmlText(html)).toBe(`<p>${shown(value)}</p>\n`);
  });
});

describe('renderSummary with hostile values in every text', () => {
  // One row per hostile value, each in every column that holds host or input text.
  const hosts: HostResult[] = HOSTILE.map((value) => host({ host: value, status: 'failed', release: value, previousRelease: value, error: value, warnings: [value], attention: value }));
  hosts.push(host({ host: 'web9', status: 'unknown', release: HOSTILE[0], unconfirmedRelease: HOSTILE[1], uploadBytes: 1e6 }));
  const markdown = renderSummary(summarize(hosts), HOSTILE[0]);
  const html = renderGfm(markdown);

  test('GitHub renders only tagflip’s own tags: no image, link, script, code, emphasis, list or heading of a host’s', () => {
    expect(tagsOf(html)).toEqual(OWN_TAGS);
  });

  test('one row per host, every cell showing the value as it is', () => {
    const cells = tableCells(html);
    expect(cells).toHaveLength(hosts.length);
    HOSTILE.forEach((value, index) => {
      expect(cells[index].map(htmlText)).toEqual([shown(value), 'failed', shown(value), shown(value), '12.3 s', '–', '14.0 s', shown(value)]);
    });
    expect(cells[HOSTILE.length].map(htmlText)).toEqual(['web9', 'unknown', `${shown(HOSTILE[0])} or ${shown(HOSTILE[1])}`, 'v2.9', '12.3 s', '1.0 MB', '14.0 s', '–']);
  });

  test('the title names the run and every host that needs attention, as text', () => {
    const heading = html.split('\n')[0];
    expect(htmlText(heading)).toBe(`<h3>${shown(HOSTILE[0])}: unknown (NEEDS ATTENTION: ${HOSTILE.map(shown).join(', ')})</h3>`);
  });

  test('every caution and warning is one blockquote line of text', () => {
    const quotes = [...html.matchAll(/<blockquote>\n<p>(\[!\w+\])\n([^\n]*)<\/p>\n<\/blockquote>/g)].map((match) => `${match[1]} ${htmlText(match[2])}`);
    expect(quotes).toEqual([...HOSTILE.map((value) => `[!CAUTION] ${shown(value)}`), ...HOSTILE.map((value) => `[!WARNING] ${shown(value)}: ${shown(value)}`)]);
  });

  test('the Markdown has no raw <, >, link opener or autolink from a host', () => {
    // Only tagflip's own `> ` quote markers and `[!…]` alert tags remain.
    const own = markdown.replace(/^> (\[!(CAUTION|WARNING)\])?/gm, '');
    expect(own).not.toMatch(/[<>]/);
    expect(own).not.toMatch(/(?<!\\)[[\]`*_~!$]|(?<!\\)\]\(|[^\\]:\/\/|www\./i);
  });

  test('a secret is masked before the escaping, which would otherwise hide it from the mask', () => {
    const secret = 'p[a]ss*word';
    const result = summarize([host({ status: 'failed', error: `login with ${secret} failed`, warnings: [secret] })]);
    const masked = renderSummary(result, 'T', (text) => text.split(secret).join('***'));
    expect(masked).not.toContain(markdownText(secret));
    expect(masked).toContain('login with \\*\\*\\* failed');
  });
});

describe('renderStoppedSummary', () => {
  test("tagflip's own remedy `releases/<name>` and a hostile link target show as text", () => {
    const message = `deploy@web1: current points to '${HOSTILE[0]}', which is not a release directory (releases/<name> in deploy-path); point current at the release that serves: ln -sfn releases/<name> current`;
    const markdown = renderStoppedSummary('tagflip deploy', message, false);
    const html = renderGfm(markdown);
    expect(tagsOf(html)).toEqual(['h3', 'p']);
    expect(htmlText(html)).toBe(`<h3>tagflip deploy: failed</h3>\n<p>${message}</p>\n`);
  });

  test('a refused input: the message, then that nothing changed', () => {
    expect(renderStoppedSummary('tagflip', "release: '<b>x</b>' is not a valid release name", true)).toBe(
      "### tagflip: failed\n\nrelease: '&lt;b&gt;x&lt;/b&gt;' is not a valid release name\n\nThe input was refused before any connection: nothing changed on any host.\n",
    );
  });
});
