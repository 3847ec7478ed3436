// npm run bench: its child processes and its cleanup. Every child has a timeout and
// is killed (its whole group) on cleanup; a daemon (sshd, the delay proxy) is stopped
// together with everything it started. Cleanup is a stack of synchronous undo steps,
// run once: at the normal end, on an error, on a signal.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

/** The benchmark itself cannot run (exit 1), as opposed to a target that is not met. */
export class BenchError extends Error {}
/** A part this machine cannot run: it prints "skipped: …" and the others go on. */
export class Skip extends Error {}

export const SHORT_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// Child processes: every one has a timeout and is killed (its whole group) on cleanup
// ---------------------------------------------------------------------------

export const liveChildren = new Set();

/**
 * Run a command; resolves with { code, signal, stdout, stderr, ms } (ms = wall time
 * from spawn to exit). Rejects on spawn errors and timeouts (after killing the group).
 */
export function run(command, args, { input, timeoutMs = SHORT_TIMEOUT_MS, env = process.env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let child;
    try {
      child = spawn(command, args, { cwd, env, detached: true, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    } catch (error) {
      reject(new BenchError(`cannot start ${command}: ${error.message}`));
      return;
    }
    liveChildren.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    if (input !== undefined) {
      child.stdin.on('error', () => undefined); // EPIPE when the child exits early; its status tells
      child.stdin.end(input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(new BenchError(`cannot run ${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      const ms = performance.now() - started;
      clearTimeout(timer);
      liveChildren.delete(child);
      if (timedOut) reject(new BenchError(`${describe(command, args)} timed out after ${timeoutMs / 1000} s\n${tail(stdout + stderr)}`));
      else resolve({ code, signal, stdout, stderr, ms });
    });
  });
}

export async function runOk(command, args, options) {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new BenchError(`${describe(command, args)} exited ${result.code ?? result.signal}\n${tail(result.stdout + result.stderr)}`);
  }
  return result;
}

export function describe(command, args) {
  const shown = [command, ...args].join(' ');
  return shown.length > 300 ? `${shown.slice(0, 300)}…` : shown;
}

export function tail(text, lines = 25) {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).map((line) => `    ${line}`).join('\n');
}

export function killGroup(pid, signal) {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

/** pid → ppid of every live, non-zombie process (Linux /proc). */
function processTable() {
  const table = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z') table.set(Number(entry), Number(ppid));
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

export function descendants(root) {
  const table = processTable();
  const out = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const [pid, ppid] of table) if (ppid === parent) (out.push(pid), queue.push(pid));
  }
  return out;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Cleanup: a stack of synchronous undo steps, run once (normal end, error, signal)
// ---------------------------------------------------------------------------

export const undo = [];
let cleanedUp = false;

export function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const child of liveChildren) killGroup(child.pid, 'SIGKILL');
  while (undo.length > 0) {
    const step = undo.pop();
    try {
      step();
    } catch (error) {
      process.stderr.write(`cleanup: ${error.message}\n`);
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    process.stderr.write(`\ninterrupted by ${signal}; cleaning up\n`);
    cleanup();
    process.exit(1);
  });
}

/** A long-running process (sshd, proxy) stopped on cleanup together with everything it started. */
export function startDaemon(command, args, label, { cgroup = null } = {}) {
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  // Before it listens: every session it forks is then counted as the host's CPU.
  if (cgroup && child.pid) cgroup.join('host', child.pid);
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (log += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (log += d));
  let exit = null;
  child.once('exit', (code, signal) => (exit = `code=${code} signal=${signal}`));
  child.once('error', (error) => (exit = `spawn error: ${error.message}`));
  undo.push(() => {
    if (!child.pid) return;
    const tree = descendants(child.pid);
    killGroup(child.pid, 'SIGKILL');
    for (const pid of tree) killGroup(pid, 'SIGKILL');
  });
  const waitFor = async (pattern, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(log)) {
      if (exit !== null) throw new BenchError(`${label} exited at start (${exit}):\n${tail(log)}`);
      if (Date.now() > deadline) throw new BenchError(`${label} was not ready within ${timeoutMs / 1000} s:\n${tail(log)}`);
      await sleep(20);
    }
  };
  return { child, waitFor, log: () => log, exited: () => exit };
}
