#!/usr/bin/env node
// npm run demo: deploy examples/hello-site twice (v1.0, then v1.1) to a temporary
// directory with `--hosts local`, then show what tagflip left on the "host".
// Needs git and a POSIX sh; uses the bundled CLI, so run `npm run build` first.
// `npm run demo -- --keep` leaves the temporary directory in place for a look around.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cli = path.join(root, 'bin', 'tagflip.js');
const example = path.join(root, 'examples', 'hello-site');
const keep = process.argv.includes('--keep');

function heading(text) {
  process.stdout.write(`\n=== ${text}\n`);
}

/** Run a command with inherited output; stop the demo if it fails. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.status}`;
    const error = new Error(`${[command, ...args].join(' ')} ${how}`);
    error.exitCode = result.status || 1;
    throw error;
  }
}

/** git with a fixed identity, so the demo works without any git config. */
function git(repo, ...args) {
  run('git', ['-c', 'user.name=demo', '-c', 'user.email=demo@example.invalid', '-c', 'commit.gpgsign=false', '-c', 'init.defaultBranch=main', ...args], {
    cwd: repo,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

function deploy(tmp, release) {
  heading(`tagflip deploy ${release}`);
  run(process.execPath, [
    cli,
    'deploy',
    '--hosts', 'local',
    '--deploy-path', path.join(tmp, 'site'),
    '--release', release,
    '--repository', path.join(tmp, 'repo'),
    '--build', 'sh build.sh',
  ]);
}

function main() {
  if (!fs.existsSync(path.join(root, 'dist', 'cli', 'index.js'))) {
    process.stderr.write('dist/cli/index.js is missing: run npm run build first\n');
    return 1;
  }
  // realpath: on macOS the temp dir is reached through a symlink.
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tagflip-demo-')));
  const repo = path.join(tmp, 'repo');
  const site = path.join(tmp, 'site');
  try {
    heading(`making a git repository from examples/hello-site in ${repo}`);
    fs.cpSync(example, repo, { recursive: true });
    git(tmp, 'init', '-q', repo);
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'hello-site v1.0');
    git(repo, 'tag', 'v1.0');
    process.stdout.write('committed and tagged v1.0\n');

    deploy(tmp, 'v1.0');

    const index = path.join(repo, 'index.html');
    fs.writeFileSync(index, fs.readFileSync(index, 'utf8').replace('<h1>Hello from hello-site</h1>', '<h1>Hello again from hello-site</h1>'));
    git(repo, 'commit', '-q', '-a', '-m', 'hello-site v1.1');
    git(repo, 'tag', 'v1.1');
    heading('changed index.html, committed and tagged v1.1');

    deploy(tmp, 'v1.1');

    heading(`ls -l site site/releases site/.tagflip (in ${tmp})`);
    run('ls', ['-l', site, path.join(site, 'releases'), path.join(site, '.tagflip')]);
    heading('current/build-info.txt');
    process.stdout.write(fs.readFileSync(path.join(site, 'current', 'build-info.txt'), 'utf8'));
    const manifests = path.join(site, '.tagflip', 'releases');
    for (const name of fs.readdirSync(manifests).sort()) {
      heading(`.tagflip/releases/${name}`);
      const text = fs.readFileSync(path.join(manifests, name), 'utf8');
      process.stdout.write(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    }
    heading('.tagflip/history.jsonl');
    process.stdout.write(fs.readFileSync(path.join(site, '.tagflip', 'history.jsonl'), 'utf8'));

    heading('done');
    process.stdout.write(keep ? `everything is in ${tmp}; remove it with: rm -rf ${tmp}\n` : `(run with -- --keep to keep ${tmp})\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`demo failed: ${error.message}\n`);
    if (!keep) process.stderr.write(`(run with -- --keep to keep ${tmp} for a look)\n`);
    return error.exitCode || 1;
  } finally {
    if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

process.exitCode = main();
