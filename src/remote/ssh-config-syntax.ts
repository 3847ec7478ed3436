/**
 * ssh_config as OpenSSH reads it (readconf.c, match.c): its lines split into a
 * keyword and arguments, and its patterns. Pure: no file, no command, no lookup.
 */

/** One line of a config file: its keyword in lower case, its arguments unquoted. */
export interface ConfigLine {
  keyword: string;
  args: string[];
  /** 1-based, for messages. */
  line: number;
}

/**
 * `text` as OpenSSH's process_config_line reads it: `Keyword value`, `Keyword=value`
 * or `Keyword = value`; arguments split on blanks, with "…" and '…' quotes and `\`
 * before a quote, a backslash or (outside quotes) a blank; a `#` that starts an
 * argument starts a comment. Throws an Error naming the line on an unclosed quote or
 * a keyword without a value.
 */
export function parseConfigLines(text: string): ConfigLine[] {
  const lines: ConfigLine[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const keyword = /^[ \t\f]*([^ \t\f=]*)/.exec(raw)?.[1] ?? '';
    if (keyword === '' || keyword.startsWith('#')) return;
    const rest = raw.slice(raw.indexOf(keyword) + keyword.length).replace(/^[ \t\f]*(=[ \t\f]*)?/, '');
    const args = splitArguments(rest.replace(/[\s\f]+$/, ''), line);
    if (args.length === 0) throw new Error(`line ${line}: ${keyword} has no value`);
    lines.push({ keyword: keyword.toLowerCase(), args, line });
  });
  return lines;
}

/** OpenSSH's argv_split, with comments ending the line. */
function splitArguments(text: string, line: number): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === ' ' || text[i] === '\t') {
      i++;
      continue;
    }
    if (text[i] === '#') break;
    let arg = '';
    let quote = '';
    for (; i < text.length; i++) {
      const char = text[i];
      const next = text[i + 1];
      if (char === '\\' && (next === "'" || next === '"' || next === '\\' || (quote === '' && next === ' '))) {
        arg += next;
        i++;
      } else if (quote === '' && (char === ' ' || char === '\t')) {
        break;
      } else if (quote === '' && (char === '"' || char === "'")) {
        quote = char;
      } else if (quote !== '' && char === quote) {
        quote = '';
      } else {
        arg += char;
      }
    }
    if (quote !== '') throw new Error(`line ${line}: a ${quote} quote is not closed`);
    args.push(arg);
  }
  return args;
}

/** OpenSSH's match_pattern: `*` any run of characters, `?` exactly one; the rest as it is, case and all. */
export function matchPattern(text: string, pattern: string): boolean {
  const source = [...pattern].map((char) => (char === '*' ? '[\\s\\S]*' : char === '?' ? '[\\s\\S]' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`, 'u').test(text);
}

/**
 * OpenSSH's match_pattern_list: a comma-separated list of patterns, each maybe
 * negated with `!`. 1: a pattern matches and no negated one does; -1: a negated one
 * matches; 0: none does. `lower`: the patterns are lower-cased first.
 */
export function matchPatternList(text: string, list: string, lower: boolean): 1 | 0 | -1 {
  let matched: 1 | 0 = 0;
  for (const item of list.split(',')) {
    const negated = item.startsWith('!');
    const pattern = negated ? item.slice(1) : item;
    if (!matchPattern(text, lower ? pattern.toLowerCase() : pattern)) continue;
    if (negated) return -1;
    matched = 1;
  }
  return matched;
}

/** OpenSSH's match_hostname (Match host, Match originalhost): the name lower-cased, the patterns too. */
export function matchHostname(host: string, list: string): boolean {
  return matchPatternList(host.toLowerCase(), list, true) === 1;
}

/**
 * A `Host` line's arguments: each a pattern (not a list: a comma is a character),
 * matched case and all against the name; one negated pattern that matches makes
 * the block not apply, whatever else matches.
 */
export function hostLineMatches(host: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const argument of patterns) {
    const negated = argument.startsWith('!');
    if (!matchPattern(host, negated ? argument.slice(1) : argument)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}
