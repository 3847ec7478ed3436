/**
 * `npx tagflip …` from the npm registry (issue 13): the package npm would
 * publish, packed with `npm pack`, installed into a fresh project without the
 * network, runs the bundled CLI. Needs a built dist/ (`npm run build`; CI
 * builds before it tests).
 */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTempDir } from '../support/fixtures.js';

/** The environment without what an enclosing `npm test` set: the child npm must see only its own project. */
function npmEnv(cache: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  return { ...env, npm_config_cache: cache, npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { code: child.status, stdout: child.stdout, stderr: child.stderr };
}

describe('the npm package', () => {
  const packageJson = JSON.parse(readFileSync('package.json', 'utf8'));

  test('is publishable: not private, a bin, and nothing it would fetch at install (ncc bundled it all)', () => {
    expect(packageJson.private).toBeUndefined();
    expect(packageJson.bin).toEqual({ tagflip: 'bin/tagflip.js' });
    const bin = readFileSync('bin/tagflip.js', 'utf8');
    expect(bin.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(bin).toContain("require('../dist/cli/index.js')");
    expect(packageJson.dependencies ?? {}).toEqual({});
  });

  test('packed, installed offline into a new project, its tagflip runs: --help, status --help, --version, and through npx', () => {
    expect(existsSync('dist/cli/index.js') ? 'built' : 'dist/cli/index.js is missing: run `npm run build` first').toBe('built');
    const work = openTempDir('tagflip-npm-');
    const env = npmEnv(join(work, 'cache'));

    const pack = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], process.cwd(), env);
    expect(pack.stderr).not.toMatch(/npm (error|ERR!)/);
    expect(pack.code).toBe(0);
    const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    const files = packed.files.map((file) => file.path);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'action.yml', 'bin/tagflip.js', 'dist/index.js', 'dist/cli/index.js', 'dist/cli/action.yml']));
    expect(files.filter((path) => /^(src|__tests__|scripts|node_modules)\//.test(path))).toEqual([]);

    const project = join(work, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), '{ "name": "uses-tagflip", "version": "1.0.0", "private": true }\n');
    const install = run('npm', ['install', '--offline', '--ignore-scripts', join(work, packed.filename)], project, env);
    expect(install.stderr).not.toMatch(/npm (error|ERR!)/);
    expect(install.code).toBe(0);
    // Only tagflip itself: its dependencies are inside dist/.
    expect(readdirSync(join(project, 'node_modules')).filter((name) => !name.startsWith('.'))).toEqual(['tagflip']);

    const tagflip = join(project, 'node_modules/.bin/tagflip');
    const help = run(tagflip, ['--help'], project, env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('\n  deploy    build the release and flip to it, or only flip it where it is prepared\n');
    const statusHelp = run(tagflip, ['status', '--help'], project, env);
    expect(statusHelp.code).toBe(0);
    expect(statusHelp.stdout).toContain('  --deploy-path VALUE  (required)');
    expect(run(tagflip, ['--version'], project, env)).toEqual({ code: 0, stdout: `${packageJson.version}\n`, stderr: '' });
    expect(run('npx', ['--offline', 'tagflip', '--version'], project, env)).toMatchObject({ code: 0, stdout: `${packageJson.version}\n` });
  });
});
