/** The login user of the tests' sshd: created when missing, never locked, its ids read. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { run, runOk, sleep } from './run.js';

const DEFAULT_ROOT_USER = 'tagflip-test';

export async function resolveUser(isRoot: boolean, requested: string | undefined): Promise<string> {
  if (!isRoot) {
    // An unprivileged sshd cannot switch uid, so it can only log in as ourselves.
    const me = os.userInfo().username;
    if (requested !== undefined && requested !== me) {
      throw new Error(`startSshd: not running as root, so the login user must be '${me}', not '${requested}'`);
    }
    return me;
  }
  const user = requested ?? DEFAULT_ROOT_USER;
  await ensureUser(user);
  return user;
}

/**
 * Create `user` if missing and make sure the account is not locked. Several Jest
 * workers may do this at the same moment: useradd/usermod then fail either with
 * "already exists" (useradd exit 9) or because another one holds the /etc/passwd
 * lock, so we re-check and retry rather than trusting a single exit code.
 */
export async function ensureUser(user: string): Promise<void> {
  const attempts = 30;
  let last = '';

  for (let i = 0; i < attempts && !userExists(user); i++) {
    const r = await run('useradd', ['-m', '-s', '/bin/sh', user]);
    if (r.code === 0 || r.code === 9) break; // 9 = username already in use
    last = `useradd exited ${r.code}: ${r.stderr}`;
    await sleep(50 + Math.random() * 200);
  }
  if (!userExists(user)) throw new Error(`could not create user '${user}': ${last}`);

  // useradd leaves the password as '!' ("locked"), and with UsePAM no sshd refuses
  // locked accounts even for key auth. '*' means "no password" without the lock.
  for (let i = 0; i < attempts && isLocked(user); i++) {
    const r = await run('usermod', ['-p', '*', user]);
    if (r.code === 0) break;
    last = `usermod exited ${r.code}: ${r.stderr}`;
    await sleep(50 + Math.random() * 200);
  }
  if (isLocked(user)) throw new Error(`could not unlock user '${user}': ${last}`);
}

/** Field `index` of `user`'s line in a colon-separated account file, or undefined if absent. */
function accountField(file: string, user: string, index: number): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const line = text.split('\n').find((l) => l.startsWith(`${user}:`));
  return line?.split(':')[index];
}

/** uid and gid of `user`. */
export async function userIds(user: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([runOk('id', ['-u', user]), runOk('id', ['-g', user])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

function userExists(user: string): boolean {
  return accountField('/etc/passwd', user, 0) !== undefined;
}

function isLocked(user: string): boolean {
  // Without a shadow entry the passwd field decides; either way '!' marks a lock.
  const password = accountField('/etc/shadow', user, 1) ?? accountField('/etc/passwd', user, 1) ?? '';
  return password.startsWith('!');
}
