import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

/**
 * Checks the links of the README and docs/: every relative link names a file
 * or directory of the repository, and every `#anchor` a heading of the page
 * it points to, as GitHub makes the anchors. A page moved or a heading renamed
 * then fails here, naming the file, the line and the link.
 */

/**
 * GitHub's anchor for a heading (github-slugger): the rendered text, lower
 * case, without punctuation (letters, digits, `-`, `_` and spaces stay), each
 * space a `-`. A repeated heading gets `-1`, `-2`, … in order.
 */
export function headingSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link: its text
    .replace(/<[^>]+>/g, '') // inline HTML
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

/** The lines of a Markdown text that are not inside a fenced code block, with their numbers (from 1). */
function proseLines(markdown: string): { line: number; text: string }[] {
  const lines: { line: number; text: string }[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, index) => {
    // A backtick fence's info string has no backtick (CommonMark): "```` ```yaml ````" is code in a line.
    const open = /^ {0,3}(`{3,}|~{3,})([^`]*)$/.exec(text) ?? /^ {0,3}(~{3,})(.*)$/.exec(text);
    if (open) {
      if (fence === undefined) fence = open[1];
      else if (open[1].startsWith(fence) && text.trim() === open[1]) fence = undefined;
      return;
    }
    if (fence === undefined) lines.push({ line: index + 1, text });
  });
  return lines;
}

/** Every anchor GitHub gives the headings of a Markdown text. */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^#{1,6} +(.*?)(?: +#+)? *$/.exec(text);
    if (!heading) continue;
    const slug = headingSlug(heading[1]);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** The inline links and images of a line, code spans left out: [text](target). */
function linkTargets(text: string): string[] {
  const prose = text.replace(/(`+)[\s\S]*?\1/g, '');
  return [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1]);
}

/**
 * The broken links of `file` (a path relative to the repository's root, as
 * `root` is where it lives): `FILE:LINE: [target] why`.
 */
export function brokenLinks(file: string, root = '.'): string[] {
  const markdown = readFileSync(join(root, file), 'utf8');
  const problems: string[] = [];
  for (const { line, text } of proseLines(markdown)) {
    for (const target of linkTargets(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split('#', 2) as [string, string | undefined];
      const resolved = path === '' ? file : normalize(join(dirname(file), decodeURIComponent(path)));
      const where = `${file}:${line}: [${target}]`;
      if (resolved.startsWith('..') || !existsSync(join(root, resolved))) {
        problems.push(`${where} ${resolved} does not exist`);
        continue;
      }
      if (anchor === undefined) continue;
      if (!resolved.endsWith('.md') || statSync(join(root, resolved)).isDirectory()) {
        problems.push(`${where} an anchor into ${resolved}, which is not a Markdown page`);
        continue;
      }
      if (!anchorsOf(readFileSync(join(root, resolved), 'utf8')).has(anchor)) {
        problems.push(`${where} ${resolved} has no heading #${anchor}`);
      }
    }
  }
  return problems;
}
