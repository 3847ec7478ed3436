/**
 * tagflip's sources as plain JavaScript modules in a temporary directory, for
 * tests that must run the code in a child `node` of its own (to measure its
 * memory, say) without the bundle in dist/, which only a release rebuilds.
 * Type-only transpilation: quick, and faithful to what the sources do.
 */
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { openTempDir } from './fixtures.js';

/** Transpile src/ (and its folders) into `<dir>/src` (ES modules, imports unchanged) and return `<dir>`. */
export function transpileSources(): string {
  const dir = openTempDir('tagflip-src-');
  transpileFolder(resolve('src'), join(dir, 'src'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
  return dir;
}

function transpileFolder(source: string, target: string): void {
  mkdirSync(target);
  for (const entry of readdirSync(source, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      transpileFolder(join(source, entry.name), join(target, entry.name));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      const { outputText } = ts.transpileModule(readFileSync(join(source, entry.name), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
        fileName: entry.name,
      });
      writeFileSync(join(target, entry.name.replace(/\.ts$/, '.js')), outputText);
    }
  }
}
