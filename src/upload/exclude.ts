/**
 * `upload-exclude`: gitignore-style lines, matched against paths relative to the
 * upload. Supported as git does: blank lines and `#` comments, `!` to re-include,
 * a trailing `/` for directories only, a leading or inner `/` to anchor at the
 * top, `*`, `?`, `[...]`, and `**` as a whole segment (at the start: any depth;
 * at the end: everything under; in the middle: zero or more directories). The
 * last matching line wins, and as in git nothing under an excluded directory
 * can be re-included: the walk never enters it.
 */

interface Rule {
  regex: RegExp;
  negated: boolean;
  dirOnly: boolean;
}

/** Decide whether a path is excluded by the lines; `isDir` for directories. */
export type Excluder = (path: string, isDir: boolean) => boolean;

/** `.git` (the repository, or a submodule's link to it) is never shipped, whatever the lines say. */
export const ALWAYS_EXCLUDED = '.git';

function trimTrailingSpaces(line: string): string {
  // A trailing space escaped with a backslash stays, as in git.
  let end = line.length;
  while (end > 0 && line[end - 1] === ' ' && line[end - 2] !== '\\') end -= 1;
  return line.slice(0, end);
}

function escapeRegex(char: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(char) ? `\\${char}` : char;
}

/** `[...]` starting at `start` (the '['): the regex class and where it ends, or null when unclosed. */
function bracket(glob: string, start: number): { source: string; end: number } | null {
  let i = start + 1;
  let negated = false;
  if (glob[i] === '!' || glob[i] === '^') {
    negated = true;
    i += 1;
  }
  let body = '';
  let first = true;
  for (; i < glob.length; i += 1) {
    const char = glob[i];
    if (char === ']' && !first) return { source: `[${negated ? '^' : ''}${body}]`, end: i };
    first = false;
    if (char === '\\' && i + 1 < glob.length) {
      i += 1;
      body += escapeRegex(glob[i]);
    } else if (char === '-') body += '-';
    else body += char === '/' ? '' : escapeRegex(char);
  }
  return null;
}

function globToRegex(glob: string): string {
  let source = '';
  for (let i = 0; i < glob.length; i += 1) {
    const char = glob[i];
    if (char === '*' && glob[i + 1] === '*') {
      const atStart = i === 0 || glob[i - 1] === '/';
      const end = i + 2;
      if (atStart && glob[end] === '/') {
        // `**/`: zero or more whole directories.
        source += '(?:.*/)?';
        i = end;
        continue;
      }
      if (atStart && end === glob.length) {
        // Trailing `/**`: everything inside (not the directory itself).
        source += '.+';
        i = end - 1;
        continue;
      }
      // Any other run of asterisks is a plain `*`.
      while (glob[i + 1] === '*') i += 1;
      source += '[^/]*';
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else if (char === '[') {
      const parsed = bracket(glob, i);
      if (parsed) {
        source += parsed.source;
        i = parsed.end;
      } else source += '\\[';
    } else if (char === '\\' && i + 1 < glob.length) {
      i += 1;
      source += escapeRegex(glob[i]);
    } else source += escapeRegex(char);
  }
  return source;
}

function parseRule(raw: string): Rule | null {
  let line = trimTrailingSpaces(raw.replace(/\r$/, ''));
  if (line === '' || line.startsWith('#')) return null;
  let negated = false;
  if (line.startsWith('!')) {
    negated = true;
    line = line.slice(1);
  } else if (line.startsWith('\\!') || line.startsWith('\\#')) line = line.slice(1);
  let dirOnly = false;
  while (line.endsWith('/') && !line.endsWith('\\/')) {
    dirOnly = true;
    line = line.slice(0, -1);
  }
  if (line === '') return null;
  // A slash at the start or in the middle anchors the pattern at the top of the upload.
  const anchored = line.includes('/');
  if (line.startsWith('/')) line = line.replace(/^\/+/, '');
  const body = globToRegex(line);
  return { regex: new RegExp(`^${anchored ? '' : '(?:.*/)?'}${body}$`, 's'), negated, dirOnly };
}

/** Compile `upload-exclude` lines (lines, or text with newlines) into a matcher. */
export function compileExcludes(lines: readonly string[]): Excluder {
  const rules = lines.flatMap((text) => text.split('\n')).map(parseRule).filter((rule): rule is Rule => rule !== null);
  return (path, isDir) => {
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (name === ALWAYS_EXCLUDED) return true;
    let excluded = false;
    for (const rule of rules) {
      if (rule.dirOnly && !isDir) continue;
      if (rule.negated === excluded && rule.regex.test(path)) excluded = !rule.negated;
    }
    return excluded;
  };
}

/**
 * For paths met in any order (an archive): excluded when the path or any directory
 * above it is. Directory answers are remembered, so a deep archive costs one test per directory.
 */
export function excluderWithParents(excluder: Excluder): Excluder {
  const dirs = new Map<string, boolean>();
  const dirExcluded = (dir: string): boolean => {
    let answer = dirs.get(dir);
    if (answer === undefined) {
      const slash = dir.lastIndexOf('/');
      answer = (slash > 0 && dirExcluded(dir.slice(0, slash))) || excluder(dir, true);
      dirs.set(dir, answer);
    }
    return answer;
  };
  return (path, isDir) => {
    if (isDir) return dirExcluded(path);
    const slash = path.lastIndexOf('/');
    return (slash > 0 && dirExcluded(path.slice(0, slash))) || excluder(path, false);
  };
}
