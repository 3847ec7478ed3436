import { describe, expect, test } from '@jest/globals';
import { gitRefusal, gitRefusalRemedy } from '../../src/core/git-remedies.js';

describe('gitRefusal (issue 22)', () => {
  test("git's dubious ownership names the repository; a denied write in the mirror names the mirror; anything else is no refusal of these", () => {
    expect(gitRefusal("fatal: detected dubious ownership in repository at '/srv/git/app.git'")).toEqual({ kind: 'owner', repository: '/srv/git/app.git' });
    expect(gitRefusal("error: cannot open '/srv/app/.tagflip/repo.git/FETCH_HEAD': Permission denied")).toEqual({ kind: 'mirror-permission', mirror: '/srv/app/.tagflip/repo.git' });
    expect(gitRefusal("fatal: could not read from remote repository.")).toBeUndefined();
    expect(gitRefusal("cp: cannot open '/srv/app/shared/x': Permission denied")).toBeUndefined();
  });

  test('the remedies name the user who deploys, and say what to run where', () => {
    expect(gitRefusalRemedy({ kind: 'owner', repository: '/srv/git/app.git' }, 'deploy')).toBe(
      "git on the host refused /srv/git/app.git because another user owns it (git's safe.directory check): as deploy on the host, run git config --global --add safe.directory '/srv/git/app.git' (or, if deploy should own it, as root: chown -R deploy: '/srv/git/app.git')",
    );
    expect(gitRefusalRemedy({ kind: 'mirror-permission', mirror: '/srv/app/.tagflip/repo.git' }, '')).toBe(
      "the deploy user cannot write tagflip's mirror /srv/app/.tagflip/repo.git (another user, such as root, wrote to it): as root, chown -R DEPLOY_USER: '/srv/app/.tagflip/repo.git' (or remove it: the next deploy clones it again)",
    );
  });
});
