// The whole fault matrix of issue 20: each fault (SIGKILL and SIGTERM of the client, a cut
// of either stream, a silent path, SIGSTOP of sshd or of the whole session) at every phase
// of every scenario (deploy, deploy with hooks, rollback, two-host fleet) and at a sweep of
// byte offsets in each direction; after each, the host checker of the test suite. It is the
// test file CI runs on a sample (__tests__/integration/fault-matrix.test.ts), run whole:
// TAGFLIP_FAULT_MATRIX=full. TAGFLIP_FAULT_OFFSETS sets the offsets per direction (8), and
// TAGFLIP_FAULT_PATIENT=1 holds every path fault until the client gives up by itself (its
// keepalive, ~30 s a point) instead of ending it in resets after 3 s.
//
// Not part of the default run (it takes long and measures no speed): --only faults.

import { spawnSync } from 'node:child_process';
import { ROOT } from './peers.mjs';
import { say } from './report.mjs';

export function partFaults() {
  const started = Date.now();
  const run = spawnSync('npx', ['jest', '--runInBand', '__tests__/integration/fault-matrix.test.ts', '-t', 'fault matrix'], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, NODE_OPTIONS: '--experimental-vm-modules', TAGFLIP_FAULT_MATRIX: 'full' },
  });
  say(`fault matrix: ${run.status === 0 ? 'no violation' : 'violations (see the table above)'} in ${((Date.now() - started) / 60000).toFixed(1)} min`);
}
