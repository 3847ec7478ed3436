/**
 * The job summary as GitHub shows it: rendered by cmark-gfm, GitHub's own
 * Markdown renderer (its table, autolink and strikethrough extensions on, and
 * raw HTML let through, and no tagfilter: any tag the escaping let pass shows).
 */
import { execFileSync } from 'node:child_process';

export function renderGfm(markdown: string): string {
  return execFileSync('cmark-gfm', ['--unsafe', '-e', 'table', '-e', 'autolink', '-e', 'strikethrough'], { input: markdown, encoding: 'utf8' });
}

/** The tag names in `html`, each once, in order of first appearance. */
export function tagsOf(html: string): string[] {
  return [...new Set([...html.matchAll(/<\/?([A-Za-z][A-Za-z0-9-]*)/g)].map((match) => match[1].toLowerCase()))];
}

/** The text of an HTML fragment that has no tags: cmark-gfm's four escapes undone. */
export function htmlText(html: string): string {
  const entities: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&amp;': '&' };
  return html.replace(/&(lt|gt|quot|amp);/g, (entity) => entities[entity]);
}

/** The cells of every body row of the first table: [row][column] as text. */
export function tableCells(html: string): string[][] {
  const body = html.split('<tbody>')[1]?.split('</tbody>')[0] ?? '';
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) => [...row[1].matchAll(/<td>([\s\S]*?)<\/td>/g)].map((cell) => cell[1]));
}
