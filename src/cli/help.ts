/**
 * `tagflip --help` and `tagflip <command> --help`. The texts of the inputs are
 * action.yml's: the CLI's flags are the action's inputs, so one file documents
 * both front ends and the help cannot drift from what the action says.
 */

import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { COMMANDS, COMMAND_INPUTS, type Command } from '../core/inputs.js';

export interface InputDoc {
  description: string;
  default?: string;
  required?: boolean;
}

/** action.yml's `inputs:` map, as the help reads it. */
export type InputDocs = Readonly<Record<string, InputDoc>>;

/**
 * Read when help is asked for, not at every start. ncc sees this URL and ships
 * action.yml beside the bundle (dist/cli/action.yml), so the bundled CLI finds
 * it wherever it is installed; from the sources it is the repository's own.
 */
export function readInputDocs(): InputDocs {
  const action = YAML.parse(readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')) as { inputs: Record<string, { description?: unknown; default?: unknown; required?: unknown }> };
  return Object.fromEntries(
    Object.entries(action.inputs).map(([name, input]) => [
      name,
      {
        description: String(input.description ?? ''),
        ...(input.default !== undefined ? { default: String(input.default) } : {}),
        ...(input.required === true ? { required: true } : {}),
      },
    ]),
  );
}

/**
 * One line per command, taken from the description of the `command` input,
 * which says each as "`deploy` (build the release and flip to it)".
 */
export function commandSummaries(docs: InputDocs): Record<Command, string> {
  const found = new Map([...(docs.command?.description ?? '').matchAll(/`([a-z]+)` \(([^)]*)\)/g)].map((match) => [match[1], match[2]]));
  return Object.fromEntries(COMMANDS.map((command) => [command, asFlags(found.get(command) ?? '', docs)])) as Record<Command, string>;
}

/** What the CLI adds to an input's text: where else its value may come from, its default from ~/.ssh. */
export type CliNotes = Readonly<Record<string, string>>;

/**
 * Phrases of action.yml that are true of the action only (the runner, its
 * workspace, `secrets.*`, the step), each with what the CLI says instead:
 * `[the action's words, the CLI's words]`. A phrase action.yml no longer holds
 * is an error, so that a reworded action.yml cannot slip the action's words
 * back into the CLI's help unnoticed.
 */
export type CliRewording = Readonly<Record<string, readonly (readonly [string, string])[]>>;

/** An input's text as the CLI says it. */
export function rewordForCli(name: string, text: string, rewording: CliRewording = {}): string {
  let reworded = text;
  for (const [actionWords, cliWords] of rewording[name] ?? []) {
    if (!reworded.includes(actionWords)) {
      throw new Error(`action.yml's text of ${name} no longer says ${JSON.stringify(actionWords)}: update the CLI's rewording of it (src/cli/cli.ts)`);
    }
    reworded = reworded.replaceAll(actionWords, cliWords);
  }
  return reworded;
}

export function renderMainHelp(docs: InputDocs): string {
  const summaries = commandSummaries(docs);
  const width = Math.max(...COMMANDS.map((command) => command.length));
  return [
    'usage: tagflip <command> [--input value ...] [--config FILE] [--json]',
    '',
    'commands:',
    ...COMMANDS.map((command) => `  ${command.padEnd(width)}  ${summaries[command]}`),
    '',
    'tagflip <command> --help lists the inputs a command uses, with their defaults.',
    '',
    'options:',
    '  --config FILE   a YAML map of input names to values; flags win over it,',
    "                  and --name '' (or --name=) clears a value the file sets",
    '  --json          the result as one JSON object on stdout (the log stays on stderr)',
    '  --help, -h      this text, or with a command the inputs it uses',
    '  --version       the version of tagflip',
    '',
    ...COMMON_NOTES,
  ].join('\n');
}

export function renderCommandHelp(command: Command, docs: InputDocs, notes: CliNotes, booleans: ReadonlySet<string>, rewording: CliRewording = {}): string {
  const inputs = Object.keys(docs).filter((name) => name !== 'command' && (COMMAND_INPUTS[command] as readonly string[]).includes(name));
  const entries = inputs.flatMap((name) => {
    const doc = docs[name];
    const facts = [doc.required ? 'required' : '', doc.default !== undefined ? `default: ${doc.default}` : ''].filter(Boolean);
    const heading = `  --${name}${booleans.has(name) ? '' : ' VALUE'}${facts.length > 0 ? `  (${facts.join(', ')})` : ''}`;
    return [heading, ...wrap(asFlags(rewordForCli(name, doc.description, rewording), docs), 6), ...(notes[name] ? wrap(notes[name], 6) : [])];
  });
  return [
    `usage: tagflip ${command} [--input value ...] [--config FILE] [--json]`,
    '',
    `${command}: ${commandSummaries(docs)[command]}.`,
    '',
    'inputs (the action\'s, as flags: --name VALUE or --name=VALUE):',
    ...entries,
    '',
    ...COMMON_NOTES,
  ].join('\n');
}

const COMMON_NOTES = [
  'Every user of this machine can read a command line (ps): give secrets by @FILE',
  'or a TAGFLIP_ variable, never as --passphrase VALUE (tagflip warns when you do).',
  'A flag the command does not use is refused (a --config file may hold more).',
  'Exit codes: 0 deployed, prepared, rolled back, unchanged or dry run; 1 failed;',
  '2 bad input or usage (nothing was contacted).',
];

/** `rollback-to` in action.yml's Markdown is `--rollback-to` on a command line. */
function asFlags(text: string, docs: InputDocs): string {
  return text.replace(/`([a-z-]+)`/g, (quoted, name: string) => (name in docs && name !== 'command' ? `--${name}` : quoted));
}

/** Lines of at most 80 characters, each indented. */
function wrap(text: string, indent: number, width = 80): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((text) => `${' '.repeat(indent)}${text}`);
}
