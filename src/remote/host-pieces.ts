/**
 * The host scripts are shell files, src/remote/host/*.sh (embedded in the
 * bundle as HOST_FILES by scripts/embed-host.mjs). Each opens with a header for
 * its reader and for ShellCheck, the comment lines up to the first blank line,
 * which is never sent. A line `. ./NAME.sh` is replaced by the text of that
 * file, after the line's indentation: the host receives one script, never
 * sources a file. `@tagflip:include NAME.sh@` does the same inside a line (a
 * quoted `sh -c` text, a function on one line).
 */
const HEADER = '# shellcheck shell=sh\n';
const LINE = /^([ \t]*)\. \.\/([a-z0-9-]+\.sh)$/gm;
const INLINE = /@tagflip:include ([a-z0-9-]+\.sh)@/g;

/** A reader of the files: the text of a piece as it is sent, its includes put in. */
export function pieceReader(files: Readonly<Record<string, string>>): (name: string) => string {
  const done = new Map<string, string>();
  const piece = (name: string, from: readonly string[]): string => {
    const known = done.get(name);
    if (known !== undefined) return known;
    const file = files[name];
    if (file === undefined) throw new Error(`there is no host script ${name}${from.length > 0 ? ` (included by ${from[from.length - 1]})` : ''}`);
    if (from.includes(name)) throw new Error(`host scripts include each other: ${[...from, name].join(' -> ')}`);
    const start = file.indexOf('\n\n');
    if (!file.startsWith(HEADER) || start < 0 || !file.endsWith('\n') || file.endsWith('\n\n')) {
      throw new Error(`${name} must open with "${HEADER.trim()}", a header of comment lines and a blank line, and end with one newline`);
    }
    const inside = [...from, name];
    const text = file
      .slice(start + 2, -1)
      .replace(LINE, (_line, indent: string, included: string) => indent + piece(included, inside))
      .replace(INLINE, (_token, included: string) => piece(included, inside));
    done.set(name, text);
    return text;
  };
  return (name) => piece(name, []);
}
