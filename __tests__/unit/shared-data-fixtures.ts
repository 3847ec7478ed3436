/**
 * What the tests of the shared and data steps share: fresh directories under
 * one scratch root (removed after the importing file's tests), directory trees,
 * and a build with "the checkout" in place. No git: the scripts are rendered
 * with repository '', and withCheckout copies a fixture into the new release
 * right before the shared step.
 */
import { afterAll, expect } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseHistoryEntry, parseManifest } from '../../src/core/manifest.js';
import { type ScriptContext, renderBuildScript } from '../../src/remote/scripts.js';
import { quote } from '../../src/remote/shell.js';
import { manifest } from './host-facts.js';
import { type ShRun as Run, runSh as run, scriptContext as context } from './script-runner.js';

const root = mkdtempSync(join(tmpdir(), 'tagflip-shared-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A fresh, empty directory. */
export function fresh(name = 'site'): string {
  count += 1;
  const path = join(root, `${name}-${count}`);
  mkdirSync(path);
  return path;
}

const SHARED_STEP = '\nif [ -n "$tf_shared_dirs$tf_shared_files" ]; then\n';

/**
 * The build script with "the checkout" put in place: `checkout` is copied
 * (cp -a: symlinks stay symlinks) into the new release right after the source
 * step, where git's export would have put it.
 */
export function withCheckout(text: string, checkout: string): string {
  expect(text.split(SHARED_STEP)).toHaveLength(2);
  return text.replace(SHARED_STEP, `\ncp -a -- ${quote(`${checkout}/.`)} "$tf_release_path/" || exit 99${SHARED_STEP}`);
}

/** A directory tree: path -> file content, or { link } for a symlink. */
export type Tree = Record<string, string | { link: string }>;

export function makeTree(base: string, tree: Tree): string {
  mkdirSync(base, { recursive: true });
  for (const [path, entry] of Object.entries(tree)) {
    mkdirSync(dirname(join(base, path)), { recursive: true });
    if (typeof entry === 'string') writeFileSync(join(base, path), entry);
    else symlinkSync(entry.link, join(base, path));
  }
  return base;
}

/** Build `release` in deploy-path `path`; `checkout` is what the source step brought. */
export function build(path: string, changes: Partial<ScriptContext> = {}, checkout: Tree = {}): Run {
  const ctx = context(path, changes);
  const text = renderBuildScript(ctx, manifest(ctx.release, 'building', ctx.previousRelease)).text;
  return run(withCheckout(text, makeTree(fresh('checkout'), checkout)));
}

export const read = (path: string) => readFileSync(path, 'utf8');
export const record = (path: string, release: string) => parseManifest(read(join(path, `.tagflip/releases/${release}.json`)));
export const historyLines = (path: string) =>
  read(join(path, '.tagflip/history.jsonl'))
    .split('\n')
    .filter(Boolean)
    .map((line) => parseHistoryEntry(line));
export const list = (path: string) => (existsSync(path) ? readdirSync(path).sort() : []);
