import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync } from 'node:fs';
import { access, appendFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { EOL } from 'node:os';

/**
 * The runner's side of a step: inputs from INPUT_* variables, workflow commands on
 * stdout, outputs and the job summary in the files the runner names. This is the
 * part of @actions/core the action uses, written to the same protocol, the same
 * escaping and the same conversion of non-string values. @actions/core itself is not
 * imported: loading it loads its HTTP client (undici, for OIDC tokens the action never
 * asks for), which cost about 50 ms of the action's start-up before its first log
 * line. It is a devDependency only: __tests__/unit/workflow-commands-vs-core.test.ts
 * feeds both the same hostile values and compares the bytes they write.
 */

/** An input as the runner passes it: INPUT_<NAME>, '' when not given; trimmed unless asked not to. */
export function getInput(name: string, { trimWhitespace = true }: { trimWhitespace?: boolean } = {}): string {
  const value = process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] || '';
  return trimWhitespace ? value.trim() : value;
}

/**
 * A value as a workflow command carries it, converted as @actions/core's
 * toCommandValue does: a string as it is, null and undefined as '', anything
 * else as JSON (so a number 3 is "3", an object its JSON, an Error "{}").
 */
export function toCommandValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string' || value instanceof String) return String(value);
  return JSON.stringify(value);
}

/**
 * A line the runner shows as it is (or obeys, if it reads as a command). A
 * non-string is joined to the newline by `+`, as @actions/core does.
 */
export function info(message: unknown): void {
  process.stdout.write((message as string) + EOL);
}

export function debug(message: unknown): void {
  issue('debug', message);
}

/** An Error is shown by its toString() (`Error: message`), as @actions/core does. */
export function warning(message: unknown): void {
  issue('warning', message instanceof Error ? message.toString() : message);
}

export function error(message: unknown): void {
  issue('error', message instanceof Error ? message.toString() : message);
}

export function startGroup(name: unknown): void {
  issue('group', name);
}

export function endGroup(): void {
  issue('endgroup', '');
}

/** The runner replaces this value with *** in everything the job prints from now on. */
export function setSecret(secret: unknown): void {
  issue('add-mask', secret);
}

/** Marks the step failed (exit code 1) with an error annotation. */
export function setFailed(message: unknown): void {
  process.exitCode = 1;
  error(message);
}

/**
 * An output of the step: appended to $GITHUB_OUTPUT as name<<delimiter … delimiter,
 * the delimiter random so that no value can end it early; without that file, the
 * older `::set-output` command. Throws (as @actions/core does) when the file
 * is missing or cannot be written.
 */
export function setOutput(name: string, value: unknown): void {
  const file = process.env.GITHUB_OUTPUT || '';
  const text = toCommandValue(value);
  if (!file) {
    process.stdout.write(EOL);
    issue('set-output', text, { name });
    return;
  }
  const delimiter = `ghadelimiter_${randomUUID()}`;
  if (name.includes(delimiter)) throw new Error(`Unexpected input: name should not contain the delimiter "${delimiter}"`);
  if (text.includes(delimiter)) throw new Error(`Unexpected input: value should not contain the delimiter "${delimiter}"`);
  if (!existsSync(file)) throw new Error(`Missing file at path: ${file}`);
  appendFileSync(file, `${name}<<${delimiter}${EOL}${text}${EOL}${delimiter}${EOL}`, { encoding: 'utf8' });
}

/**
 * Appends markdown to the job summary ($GITHUB_STEP_SUMMARY); a non-string is
 * joined by `+`, as @actions/core's summary.addRaw does.
 */
export async function appendSummary(markdown: unknown): Promise<void> {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file) throw new Error('Unable to find environment variable for $GITHUB_STEP_SUMMARY. Check if your runtime environment supports job summaries.');
  try {
    await access(file, constants.R_OK | constants.W_OK);
  } catch {
    throw new Error(`Unable to access summary file: '${file}'. Check if the file has correct read/write permissions.`);
  }
  await appendFile(file, '' + (markdown as string), { encoding: 'utf8' });
}

/** `::name key=value::message`, escaped so that the runner reads back exactly these values. */
function issue(name: string, message: unknown, properties: Record<string, string> = {}): void {
  const props = Object.entries(properties)
    .filter(([, value]) => value)
    .map(([key, value]) => `${key}=${escapeProperty(value)}`)
    .join(',');
  process.stdout.write(`::${name}${props ? ` ${props}` : ''}::${escapeData(toCommandValue(message))}${EOL}`);
}

function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}
