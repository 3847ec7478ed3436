/**
 * tagflip's sources as plain JavaScript modules in a temporary directory, for
 * tests that must run the code in a child `node` of its own (to measure its
 * memory, say) without the bundle in dist/, which only a release rebuilds.
 * Type-only transpilation: quick, and faithful to what the sources do.
 */
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { openTempDir } from './fixtures.js';

/** Transpile src/ into `<dir>/src` (ES modules, imports unchanged) and return `<dir>`. */
export function transpileSources(): string {
  const dir = openTempDir('tagflip-src-');
  const source = resolve('src');
  // Subdirectories too: deploy.ts imports ./upload/*.
  for (const file of readdirSync(source, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(source, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: file,
    });
    const out = join(dir, 'src', file.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, outputText);
  }
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
  return dir;
}
