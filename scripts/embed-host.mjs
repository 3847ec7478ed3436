#!/usr/bin/env node
/**
 * Embeds the host scripts (src/remote/host/*.sh) in src/remote/host-files.ts,
 * so that the bundle carries them and `node dist/index.js` needs no other file.
 * The files go in as they are but for their headers (the comment lines after
 * `# shellcheck shell=sh`, up to the first blank line: never sent, so not
 * carried); src/remote/host-pieces.ts reads them (puts in the included files). Run by `npm run build`; `--check` fails
 * when the module is not what the files make (a unit test runs it).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'src/remote/host');
const target = join(root, 'src/remote/host-files.ts');

export function embedded() {
  const names = readdirSync(dir).filter((name) => name.endsWith('.sh')).sort();
  const entries = names.map((name) => {
    const text = readFileSync(join(dir, name), 'utf8').replace(/^(# shellcheck shell=sh\n)(?:#.*\n)*\n/, '$1\n');
    return `  ${JSON.stringify(name)}: ${JSON.stringify(text)},`;
  });
  return [
    '// Made by scripts/embed-host.mjs from src/remote/host/*.sh (`npm run embed`): edit those, not this.',
    'export const HOST_FILES: Readonly<Record<string, string>> = {',
    ...entries,
    '};',
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = embedded();
  if (process.argv.includes('--check')) {
    let now = '';
    try {
      now = readFileSync(target, 'utf8');
    } catch {
      // missing: not up to date
    }
    if (now !== text) {
      console.error('src/remote/host-files.ts is not what src/remote/host/*.sh make: run npm run embed');
      process.exit(1);
    }
  } else {
    writeFileSync(target, text);
  }
}
