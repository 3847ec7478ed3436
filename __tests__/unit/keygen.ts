/** Real keys from ssh-keygen for the unit tests, in a temp dir removed by cleanup(). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GeneratedKey {
  /** Path of the private key file (the .pub sits next to it). */
  path: string;
  privateKey: string;
  /** 'ssh-ed25519 AAAA… comment' */
  publicLine: string;
  keyType: string;
  /** The base64 blob of the public key. */
  blob: string;
}

export class KeyDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'tagflip-unit-'));

  generate(name: string, { type = 'ed25519', passphrase = '', pem = false } = {}): GeneratedKey {
    const path = join(this.dir, name);
    const args = ['-q', '-N', passphrase, '-t', type, '-C', `${name}@test`, '-f', path];
    if (type === 'rsa') args.push('-b', '2048');
    if (pem) args.push('-m', 'PEM');
    execFileSync('ssh-keygen', args);
    const publicLine = readFileSync(`${path}.pub`, 'utf8').trim();
    const [keyType, blob] = publicLine.split(' ');
    return { path, privateKey: readFileSync(path, 'utf8'), publicLine, keyType, blob };
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
