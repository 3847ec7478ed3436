// npm run bench: the deploys it measures. The floor (a minimal script in one OpenSSH
// session), a hand-written script doing tagflip's steps, Mina 0.3, and tagflip's CLI;
// each one deploys a tag and checks that `current` holds it.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST, USER, inNs } from './hosts.mjs';
import { measure } from './measure.mjs';
import { BenchError, tail } from './processes.mjs';
import { say } from './report.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'bin', 'tagflip.js');
export const BUNDLE = path.join(ROOT, 'dist', 'cli', 'index.js');
export const ACTION_BUNDLE = path.join(ROOT, 'dist', 'index.js');
const KEEP_RELEASES = 5; // tagflip's default keep-releases; the baseline prunes the same way
export const BUILD = 'true';
const MINA_TEMPLATE = '/usr/lib/ruby/data/deploy.sh.erb';
const MINA_TEMPLATE_EXAMPLE = '/usr/share/doc/mina/examples/deploy.sh.erb';

const shq = (value) => `'${String(value).replace(/'/g, `'\\''`)}'`;

/**
 * The hand-written deploy: what an operator would feed one `ssh host 'sh -s'`. Same
 * steps as tagflip: lock, mirror fetch (clone once), export the tag, build in place
 * with stdin from /dev/null, JSON manifests written by rename, flip `current` by
 * rename, a history line, prune to the newest KEEP_RELEASES.
 */
function baselineScript(deployPath, tag, repo) {
  return `set -eu
umask 022
d=${shq(deployPath)} tag=${shq(tag)} repo=${shq(repo)} build=${shq(BUILD)}
m=$d/.tagflip/repo.git
r=$d/releases/$tag
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
started=$(now)
mkdir -p -- "$d/releases" "$d/.tagflip/releases"
exec 9>>"$d/.tagflip/lock"
flock -w 300 9
printf '{"user":"%s","since":"%s"}\\n' "$(id -un)" "$started" > "$d/.tagflip/lock.json.tmp"
mv -f -- "$d/.tagflip/lock.json.tmp" "$d/.tagflip/lock.json"
prev=$(readlink -- "$d/current" 2>/dev/null) || prev=''
commit=''
manifest() {
  printf '{"release":"%s","state":"%s","commit":"%s","previous":"%s","started":"%s","finished":"%s"}\\n' \\
    "$tag" "$1" "$commit" "$prev" "$started" "$(now)" > "$d/.tagflip/releases/$tag.json.tmp"
  mv -f -- "$d/.tagflip/releases/$tag.json.tmp" "$d/.tagflip/releases/$tag.json"
}
rm -rf -- "$r"
mkdir -- "$r"
manifest building
if [ -d "$m" ]; then
  git --git-dir="$m" fetch --prune --quiet origin
else
  git clone --mirror --quiet -- "$repo" "$m"
fi
commit=$(git --git-dir="$m" rev-parse --verify --quiet "$tag^{commit}")
git --git-dir="$m" archive --format=tar -o "$r/.source.tar" "$commit"
tar -x -f "$r/.source.tar" -C "$r"
rm -f -- "$r/.source.tar"
(cd "$r" && sh -c "$build") </dev/null
manifest ready
rm -f -- "$d/.current.tmp"
ln -s -- "releases/$tag" "$d/.current.tmp"
mv -T -- "$d/.current.tmp" "$d/current"
manifest active
printf '{"event":"deploy","release":"%s","previous":"%s","time":"%s"}\\n' "$tag" "$prev" "$(now)" >> "$d/.tagflip/history.jsonl"
ls -1t -- "$d/releases" | tail -n +${KEEP_RELEASES + 1} | while IFS= read -r old; do
  rm -rf -- "$d/releases/$old" "$d/.tagflip/releases/$old.json"
done
`;
}

/**
 * The floor: the least a deploy does, in one `ssh host 'sh -s'`: fetch into a mirror
 * (cloned once), export the tag, build, flip `current` by rename. No lock, no record.
 */
function floorScript(deployPath, tag, repo) {
  return `set -eu
d=${shq(deployPath)} tag=${shq(tag)} repo=${shq(repo)} build=${shq(BUILD)}
m=$d/mirror.git r=$d/releases/$tag
if [ -d "$m" ]; then git --git-dir="$m" fetch -q origin; else mkdir -p "$d/releases"; git clone -q --mirror "$repo" "$m"; fi
mkdir "$r"
git --git-dir="$m" archive "$tag" | tar -x -C "$r"
(cd "$r" && sh -c "$build") </dev/null
ln -sfn "releases/$tag" "$d/.current.tmp" && mv -T "$d/.current.tmp" "$d/current"
`;
}

/**
 * Mina 0.3's deploy.rb: its own git:clone (a bare mirror, then a clone of the tag into
 * a numbered release), the build, its flip (ln -nfs) and its cleanup to KEEP_RELEASES.
 * ssh_options make its one `ssh` check our known_hosts with our key, as ours do
 * (OpenSSH takes the first -o StrictHostKeyChecking, so Mina's own "=no" after it is moot).
 */
function minaDeployRb(ctx, { port, site }) {
  const sshOptions = ['-F /dev/null', '-o BatchMode=yes', `-o UserKnownHostsFile=${ctx.knownHosts}`, '-o GlobalKnownHostsFile=/dev/null', '-o StrictHostKeyChecking=yes', '-o IdentitiesOnly=yes'].join(' ');
  const ruby = (value) => JSON.stringify(String(value)); // a double-quoted Ruby string (no #{ in these values)
  return `require 'mina/git'
set :domain, ${ruby(HOST)}
set :user, ${ruby(USER)}
set :port, ${ruby(port)}
set :identity_file, ${ruby(ctx.clientKey)}
set :ssh_options, ${ruby(sshOptions)}
set :deploy_to, ${ruby(site)}
set :repository, ${ruby(ctx.repo)}
set :branch, ENV.fetch('BENCH_TAG')
set :keep_releases, ${KEEP_RELEASES}
task :environment do
end
task :deploy => :environment do
  deploy do
    invoke :'git:clone'
    queue ${ruby(BUILD)}
    invoke :'deploy:cleanup'
  end
end
`;
}

/** Why Mina cannot run here, or null; puts the template Debian's package lacks in place. */
export function minaMissing() {
  if (spawnSync('sh', ['-c', 'command -v mina'], { timeout: 5000 }).status !== 0) return 'mina is not installed (Debian: apt-get install mina ruby-open4)';
  if (spawnSync('ruby', ['-e', "require 'open4'"], { timeout: 20_000 }).status !== 0) return "ruby's open4 is missing (Debian: apt-get install ruby-open4)";
  if (!fs.existsSync(MINA_TEMPLATE)) {
    if (!fs.existsSync(MINA_TEMPLATE_EXAMPLE)) return `${MINA_TEMPLATE} is missing and there is no ${MINA_TEMPLATE_EXAMPLE} to copy`;
    // Debian's mina 0.3 ships the template only as documentation.
    fs.mkdirSync(path.dirname(MINA_TEMPLATE), { recursive: true });
    fs.copyFileSync(MINA_TEMPLATE_EXAMPLE, MINA_TEMPLATE);
    say(`  copied ${MINA_TEMPLATE_EXAMPLE} to ${MINA_TEMPLATE} (Debian's mina 0.3 lacks it)`);
  }
  return null;
}

export function checkCurrent(site, tag, what) {
  let link;
  try {
    link = fs.readlinkSync(path.join(site, 'current'));
  } catch (error) {
    throw new BenchError(`${what}: ${site}/current is not a symlink after the deploy (${error.code})`);
  }
  if (link !== `releases/${tag}`) throw new BenchError(`${what}: ${site}/current points to ${link}, expected releases/${tag}`);
}

/**
 * OpenSSH with no config file (so no ControlMaster or GSSAPI from ~/.ssh/config or
 * /etc/ssh/ssh_config), strict host key checking against our known_hosts.
 */
export function sshArgs(ctx, port, remoteCommand) {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${ctx.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'IdentitiesOnly=yes',
    '-i', ctx.clientKey,
    '-p', String(port),
    `${USER}@${HOST}`,
    remoteCommand,
  ];
}

/** The floor: the minimal deploy script in one OpenSSH session. */
export async function floorDeploy(ctx, { ns, port, site }, tag) {
  const ssh = inNs(ns, 'ssh', sshArgs(ctx, port, 'sh -s'));
  const sample = await measure(ctx, `minimal deploy of ${tag}`, ssh.command, ssh.args, { input: floorScript(site, tag, ctx.repo) });
  checkCurrent(site, tag, `minimal deploy of ${tag}`);
  return sample;
}

/** One `mina deploy` of `tag` to `site` (its releases are numbered, so check what current holds). */
export async function minaDeploy(ctx, { ns, port, site }, tag) {
  const dir = path.join(ctx.tmp, `mina-${path.basename(site)}`);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'deploy.rb'), minaDeployRb(ctx, { port, site }));
    // What `mina setup` would make, without its shared-paths extras.
    for (const sub of ['', 'releases', 'shared']) {
      fs.mkdirSync(path.join(site, sub), { recursive: true, mode: 0o755 });
      fs.chownSync(path.join(site, sub), ctx.ids.uid, ctx.ids.gid);
    }
  }
  const mina = inNs(ns, 'mina', ['-f', path.join(dir, 'deploy.rb'), 'deploy']);
  const sample = await measure(ctx, `mina deploy of ${tag}`, mina.command, mina.args, { cwd: dir, env: { ...ctx.env, BENCH_TAG: tag } });
  let version = '';
  try {
    version = fs.readFileSync(path.join(site, 'current', 'VERSION'), 'utf8').trim();
  } catch (error) {
    throw new BenchError(`mina deploy of ${tag}: ${site}/current/VERSION cannot be read (${error.code})\n${tail(sample.output)}`);
  }
  if (version !== tag) throw new BenchError(`mina deploy of ${tag}: current holds ${version}`);
  return sample;
}

/** One hand-written deploy of `tag` to `site` through `port` (ns: network namespace or null). */
export async function baselineDeploy(ctx, { ns, port, site }, tag) {
  const ssh = inNs(ns, 'ssh', sshArgs(ctx, port, 'sh -s'));
  const sample = await measure(ctx, `hand-written deploy of ${tag}`, ssh.command, ssh.args, { input: baselineScript(site, tag, ctx.repo) });
  checkCurrent(site, tag, `hand-written deploy of ${tag}`);
  return sample;
}

/** One tagflip deploy of `tag` to `site` (hosts: one or more ports). */
export async function tagflipDeploy(ctx, { ns, ports, site, sources }, tag) {
  const hosts = ports.map((port) => `${USER}@${HOST}:${port}`).join(',');
  const cli = inNs(ns, process.execPath, [
    CLI, 'deploy',
    '--hosts', hosts,
    '--private-key', `@${ctx.clientKey}`,
    '--known-hosts', `@${ctx.knownHosts}`,
    '--deploy-path', site,
    '--release', tag,
    '--repository', ctx.repo,
    '--build', BUILD,
  ]);
  const sample = await measure(ctx, `tagflip deploy of ${tag} to ${hosts}`, cli.command, cli.args);
  if (!/status: deployed/.test(sample.output)) throw new BenchError(`tagflip deploy of ${tag}: no "status: deployed" in its output\n${tail(sample.output)}`);
  for (const source of sources ?? [site]) checkCurrent(source, tag, `tagflip deploy of ${tag}`);
  return sample;
}
