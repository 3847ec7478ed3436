/**
 * The folders of src/ are layers (docs/architecture.md): each imports only from
 * the layers below it, and the core does no I/O. A new file outside the layers,
 * or an import that points up, fails here.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

// Lowest first. Entry points (src/index.ts, src/cli-main.ts) sit above every layer.
const LAYERS = ['core', 'remote', 'upload', 'commands', 'action', 'cli'] as const;
const FRONT_ENDS = new Set(['action', 'cli']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [join(dir, entry.name)] : [],
  );
}

const layerOf = (file: string) => relative('src', file).split('/')[0];
const rank = (layer: string) => LAYERS.indexOf(layer as (typeof LAYERS)[number]);
const imports = (file: string) => [...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((match) => normalize(join(dirname(file), match[1])));

test('every source file is in a layer, or is an entry point', () => {
  const loose = sources('src').filter((file) => rank(layerOf(file)) < 0 && !['src/index.ts', 'src/cli-main.ts'].includes(file));
  expect(loose).toEqual([]);
});

test('imports only point down the layers (the two front ends do not import each other)', () => {
  const upward = sources('src')
    .filter((file) => rank(layerOf(file)) >= 0)
    .flatMap((file) =>
      imports(file)
        .filter((target) => target.startsWith('src/'))
        .filter((target) => {
          const [from, to] = [layerOf(file), layerOf(target)];
          return rank(to) > rank(from) || (FRONT_ENDS.has(from) && FRONT_ENDS.has(to) && from !== to);
        })
        .map((target) => `${file} imports ${target}`),
    );
  expect(upward).toEqual([]);
});

test('the core does no I/O: no file system, network, processes or SSH', () => {
  const io = sources('src/core').filter((file) => /from '(node:(fs|net|child_process|os|fs\/promises)|node-ssh|ssh2)'/.test(readFileSync(file, 'utf8')));
  expect(io).toEqual([]);
});
