import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployToHost } from '../../src/commands/deploy.js';
import { LocalTransport } from '../../src/remote/local-transport.js';
import { silentLogger } from '../../src/core/logger.js';
import { parseSettings } from '../../src/core/settings.js';

// A reader resolving current/… in a tight loop must never miss while current
// is flipped back and forth: the flip is one rename(2) of a symlink.
test('a reader never sees current missing or broken during many flips', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tagflip-flip-'));
  const site = join(root, 'site');
  const deploy = (release: string) =>
    deployToHost(
      parseSettings({ hosts: 'local', 'deploy-path': site, release, build: `echo ${release} > id` }),
      { transport: new LocalTransport(), logger: silentLogger },
    );
  try {
    expect((await deploy('v1')).status).toBe('deployed');
    expect((await deploy('v2')).status).toBe('deployed');

    const stop = join(root, 'stop');
    const reader = spawn('sh', ['-c', 'n=0; m=0; while [ ! -e "$1" ]; do if read -r x < current/id; then n=$((n+1)); else m=$((m+1)); fi; done; echo "$n $m"', 'reader', stop], { cwd: site });
    let out = '';
    reader.stdout.on('data', (chunk) => (out += chunk));
    const finished = new Promise((resolve) => reader.on('close', resolve));

    const flips = 60;
    for (let i = 0; i < flips; i++) {
      const result = await deploy(i % 2 === 0 ? 'v1' : 'v2');
      expect(result.status).toBe('deployed');
    }
    writeFileSync(stop, '');
    await finished;

    const [reads, misses] = out.trim().split(' ').map(Number);
    expect(misses).toBe(0);
    expect(reads).toBeGreaterThan(500);
    expect(readlinkSync(join(site, 'current'))).toBe('releases/v2');
    const history = readFileSync(join(site, '.tagflip/history.jsonl'), 'utf8').trim().split('\n');
    expect(history).toHaveLength(flips + 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}, 120_000);
