/**
 * The host scripts as the files in src/remote/host/ hold them now (not as the
 * embedded module last made them): what the sh-level tests source.
 * hostFile('prelude.sh') is the text sent for that file, its includes put in.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pieceReader } from '../../src/remote/host-pieces.js';

export const HOST_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../src/remote/host');

export const hostFileNames = (): string[] => readdirSync(HOST_DIR).filter((name) => name.endsWith('.sh')).sort();

export const hostFile = pieceReader(Object.fromEntries(hostFileNames().map((name) => [name, readFileSync(join(HOST_DIR, name), 'utf8')])));
