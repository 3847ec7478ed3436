/**
 * Text from a host or an input, made safe to put into the job summary, which
 * GitHub renders as Markdown (GFM, raw HTML allowed). A `current` link named
 * `<img src=x onerror=…> [more](https://…)` must show as those characters, not
 * as an image and a link.
 */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/**
 * `text` as literal Markdown text on one line: good in a table cell, a heading,
 * a blockquote line or a paragraph, and at the start of a line.
 *
 * - `&`, `<`, `>` become entities: no HTML, no `<…>` autolink, no entity of the host's.
 * - The punctuation that opens or closes inline syntax is backslash-escaped
 *   (CommonMark makes an escaped punctuation character literal): `\` `` ` `` `*`
 *   `_` `~` `[` `]` `(` `)` `!` `|` (also the cell separator) `$` (GitHub's
 *   math) `#` `+`.
 * - The GFM autolink triggers are broken: the `:` of `://` and the `.` of `www.`.
 * - A leading `-` or `1.` would open a list at the start of a line: escaped.
 * - Every control character (newline, carriage return, tab, …) becomes a space,
 *   and the ends are trimmed: a cell stays on its row, and four leading spaces
 *   cannot open a code block.
 *
 * The rest of the punctuation (`.` `:` `-` `'` `,` `/` `@` …) opens nothing
 * mid-line and is left as it is, so host names and messages read as they are.
 * Not stopped, because no escape can: an e-mail-shaped text (`a@b.example`) is
 * still a mailto: link in GitHub's renderer, and GitHub still links @mentions.
 */
export function markdownText(text: string): string {
  return text
    .replace(/[\p{Cc}\u2028\u2029]/gu, ' ')
    .trim()
    .replace(/[\\`*_~[\]()!|$#+]|:(?=\/\/)|(?<=www)\.|^-|(?<=^\d+)\./giu, (special) => `\\${special}`)
    .replace(/[&<>]/g, (special) => ENTITIES[special]);
}
