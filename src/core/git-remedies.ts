/**
 * What to do when git on the host refuses a repository for reasons the usual
 * source remedy (repository, ref, deploy key, network) does not cover:
 *
 * - "detected dubious ownership": since 2.35.2 git will not read a repository
 *   that another user owns (its safe.directory check), typically `repository`
 *   as a path on the host (/srv/git/app.git) that the git user owns;
 * - "Permission denied" inside tagflip's mirror (.tagflip/repo.git): someone
 *   ran git or tagflip there as another user (root), and the deploy user can
 *   no longer write to it.
 */

const DUBIOUS_OWNERSHIP = /detected dubious ownership in repository at '([^']+)'/;
const MIRROR_DENIED = /'([^']*\/\.tagflip\/repo\.git)(?:\/[^']*)?'[^']*Permission denied/;

export type GitRefusal = { kind: 'owner'; repository: string } | { kind: 'mirror-permission'; mirror: string };

/** What git refused in this line of its output, if it is one of the refusals above. */
export function gitRefusal(line: string): GitRefusal | undefined {
  const owner = DUBIOUS_OWNERSHIP.exec(line)?.[1];
  if (owner) return { kind: 'owner', repository: owner };
  const mirror = MIRROR_DENIED.exec(line)?.[1];
  if (mirror) return { kind: 'mirror-permission', mirror };
  return undefined;
}

/** The remedy for `refusal`, for `user`, who deploys ('' when not known). */
export function gitRefusalRemedy(refusal: GitRefusal, user: string): string {
  const who = user || 'the deploy user';
  if (refusal.kind === 'owner') {
    return `git on the host refused ${refusal.repository} because another user owns it (git's safe.directory check): ` +
      `as ${who} on the host, run git config --global --add safe.directory '${refusal.repository}' ` +
      `(or, if ${who} should own it, as root: chown -R ${user || 'DEPLOY_USER'}: '${refusal.repository}')`;
  }
  return `${who} cannot write tagflip's mirror ${refusal.mirror} (another user, such as root, wrote to it): ` +
    `as root, chown -R ${user || 'DEPLOY_USER'}: '${refusal.mirror}' (or remove it: the next deploy clones it again)`;
}
