/**
 * A real app under a real process manager, for tests of what a deploy promises about
 * the *running* app: `supervisord` (Debian package `supervisor`) runs a tiny HTTP
 * server from `<site>/current`.
 *
 * The server (`server.py`, committed in every release of `appRepo()`) loads everything
 * it serves ONCE, when it starts, as Python, Ruby, Java or Node apps load their code:
 * `version` of its release, whether the release has a `broken` marker, and the value
 * of the live versioned data (`<site>/data/current/value`). So flipping `current`
 * without a restart leaves the old release served; only `activate`
 * (`supervisorctl … restart app`) brings the new one up. It answers
 *
 * - `/`       → 200 `<version>`, or `<version> data=<value>` when the data file existed;
 * - `/health` → 200, or 500 when the release has a `broken` marker.
 *
 * and appends `start <version>` and `health <version> <code>` to an events file before
 * answering, so a test can tell that `activate` and then `verify` ran, and on which code.
 *
 * supervisord runs as the SSH test user, so `activate` and `verify` run over SSH
 * reach it through its own unix socket; everything lives in a temp dir. It runs in the
 * foreground as a child of the test process, with a parent-death signal, so it and the
 * app go away even if Jest dies; stop() ends them and checks that nothing is left.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { openTempDir } from './fixtures.js';
import { descendantPids, freePort, tryKill } from './processes.js';

const SUPERVISORD = '/usr/bin/supervisord';
const SUPERVISORCTL = '/usr/bin/supervisorctl';
const PYTHON = '/usr/bin/python3';
const HOST = '127.0.0.1';

const NEEDED = [SUPERVISORD, SUPERVISORCTL, PYTHON, '/usr/bin/curl'];

/** The app: see the module comment. Arguments: port, events file, data file. */
const APP_SERVER = `import socket, sys

# Listen before anything else: a health check that connects while the rest loads
# waits in the backlog rather than being refused (supervisord calls the app started
# after startsecs, whether or not it listens by then).
port, events, data_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(('127.0.0.1', port))
listener.listen(16)

import http.server, os

version = open('version').read().strip()
broken = os.path.exists('broken')
data = open(data_file).read().strip() if os.path.exists(data_file) else None
body = version if data is None else '%s data=%s' % (version, data)


def event(line):
    with open(events, 'a') as out:
        out.write(line + '\\n')


class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == '/health':
            code, text = (500, 'broken') if broken else (200, 'ok')
            event('health %s %d' % (version, code))
        else:
            code, text = 200, body
        payload = (text + '\\n').encode()
        self.send_response(code)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(('127.0.0.1', port), App, bind_and_activate=False)
server.socket = listener
event('start %s' % version)
server.serve_forever()
`;

const GIT_IDENTITY = ['-c', 'user.name=tagflip tests', '-c', 'user.email=tests@example.invalid'];

/**
 * A git repository of the app with one commit and tag per release, in order; a release
 * listed in `broken` gets the marker that fails its health check. `owner` (the SSH test
 * user) gets to own it, as git only trusts a repository owned by the user reading it.
 */
export async function appRepo(releases: readonly string[], broken: readonly string[], owner: string): Promise<string> {
  const repo = join(openTempDir('tagflip-app-'), 'app.git-src');
  await run('git', ['init', '-q', '-b', 'main', repo]);
  writeFileSync(join(repo, 'server.py'), APP_SERVER);
  for (const release of releases) {
    writeFileSync(join(repo, 'version'), `${release}\n`);
    if (broken.includes(release)) writeFileSync(join(repo, 'broken'), '');
    else rmSync(join(repo, 'broken'), { force: true });
    await run('git', ['-C', repo, 'add', '-A', '.']);
    await run('git', ['-C', repo, ...GIT_IDENTITY, 'commit', '-q', '-m', release]);
    await run('git', ['-C', repo, 'tag', release]);
  }
  await run('chmod', ['-R', 'a+rX', repo]);
  if (owner !== userInfo().username) await run('chown', ['-R', owner, repo]);
  return repo;
}

export interface SupervisedApp {
  /** Loopback port the app listens on. */
  port: number;
  /** `activate` for tagflip: restart the app through supervisorctl. */
  activate: string;
  /** `verify` for tagflip: the app's health check over HTTP. */
  verify: string;
  /** GET `path`; status 0 when nothing answers. */
  get(path: string): Promise<{ status: number; body: string }>;
  /**
   * Poll `/` until it answers `expected` (bounded), so a test does not depend on how
   * fast the app came up; throws with what it served last.
   */
  waitForBody(expected: string, timeoutMs?: number): Promise<void>;
  /** Lines the app wrote: `start <version>`, `health <version> <code>`, oldest first. */
  events(): string[];
  /** supervisord's log and the app's output, for failure messages. */
  log(): string;
  /** Stop supervisord and the app, make sure no process of theirs is left, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start supervisord as `user` with one program, `app`: `server.py` run in
 * `<site>/current` on a free loopback port. It does not start the app: the first
 * deploy's `activate` does (as `current` does not exist before it).
 */
export async function startSupervisedApp(options: { user: string; site: string }): Promise<SupervisedApp> {
  const { user, site } = options;
  const missing = NEEDED.filter((file) => !existsSync(file));
  if (missing.length > 0) throw new Error(`${missing.join(', ')} not found; install the Debian packages supervisor, python3 and curl`);
  const dir = mkdtempSync(join(tmpdir(), 'tagflip-supervisor-'));
  let child: ChildProcess | undefined;
  try {
    const port = await freePort();
    const config = join(dir, 'supervisord.conf');
    const files = {
      socket: join(dir, 'supervisor.sock'),
      log: join(dir, 'supervisord.log'),
      appLog: join(dir, 'app.log'),
      events: join(dir, 'events'),
    };
    writeFileSync(config, supervisorConfig({ dir, port, site, ...files }));
    writeFileSync(files.events, '');
    if (user !== userInfo().username) await run('chown', ['-R', user, dir]);

    // setpriv execs supervisord in place (its pid is the child's), as `user` when we are
    // root, and asks the kernel to SIGTERM it if the test process dies first.
    const asUser = user === userInfo().username ? [] : ['--reuid', user, '--regid', user, '--init-groups'];
    let output = '';
    child = spawn('setpriv', [...asUser, '--pdeathsig', 'TERM', SUPERVISORD, '--nodaemon', '--configuration', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8' },
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    const started = child;
    // In the foreground supervisord also copies its log to stdout: show that only while
    // the log file does not exist yet (it failed to start).
    const log = () => [readIfExists(files.log) || output, readIfExists(files.appLog)].filter(Boolean).join('\n');
    await waitForSupervisord(started, config, log);

    const get = (path: string) => httpGet(port, path);
    const waitForBody = async (expected: string, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      let last = await get('/');
      while (!(last.status === 200 && last.body === expected) && Date.now() < deadline) {
        await sleep(100);
        last = await get('/');
      }
      if (last.status !== 200 || last.body !== expected) {
        const served = last.status === 0 ? 'nothing (no answer)' : `${last.status} '${last.body}'`;
        throw new Error(`the app on port ${port} should serve '${expected}', but after ${timeoutMs} ms it still serves ${served}\n${log()}`);
      }
    };
    let stopped: Promise<void> | undefined;
    return {
      port,
      activate: `supervisorctl -c ${config} restart app`,
      verify: `curl -fsS http://${HOST}:${port}/health`,
      get,
      waitForBody,
      events: () => readFileSync(files.events, 'utf8').split('\n').filter(Boolean),
      log,
      stop: () => (stopped ??= stopSupervisord(started, dir)),
    };
  } catch (error) {
    if (child) await stopSupervisord(child, dir);
    else rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function supervisorConfig(c: { dir: string; port: number; site: string; socket: string; log: string; appLog: string; events: string }): string {
  return `[unix_http_server]
file=${c.socket}
chmod=0700

[supervisord]
logfile=${c.log}
pidfile=${join(c.dir, 'supervisord.pid')}
childlogdir=${c.dir}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://${c.socket}

[program:app]
command=${PYTHON} server.py ${c.port} ${c.events} ${c.site}/data/current/value
directory=${c.site}/current
autostart=false
autorestart=false
startsecs=1
startretries=0
stopasgroup=true
killasgroup=true
stopwaitsecs=5
redirect_stderr=true
stdout_logfile=${c.appLog}
`;
}

/** Wait until supervisord answers on its socket; fail fast if it exits. */
async function waitForSupervisord(child: ChildProcess, config: string, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await sleep(50);
      throw new Error(`supervisord exited before answering (${child.exitCode ?? child.signalCode}):\n${log()}`);
    }
    // As root this bypasses the socket's mode; as the user it is the socket's owner.
    if ((await run(SUPERVISORCTL, ['-c', config, 'pid'], { check: false })).code === 0) return;
    await sleep(100);
  }
  throw new Error(`supervisord did not answer within ${timeoutMs} ms:\n${log()}`);
}

/**
 * SIGTERM supervisord, which stops the app (its whole process group) and exits; SIGKILL
 * after a grace period. Then kill whatever of the tree snapshot taken first is still
 * alive, and fail if anything survives: a leftover app would hold its port and the
 * test user's processes across tests.
 */
async function stopSupervisord(child: ChildProcess, dir: string): Promise<void> {
  try {
    const tree = child.pid ? [child.pid, ...descendantPids(child.pid)] : [];
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    for (const pid of tree.filter(isAlive)) tryKill(pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (tree.some(isAlive) && Date.now() < deadline) await sleep(50);
    const left = tree.filter(isAlive);
    if (left.length > 0) throw new Error(`processes of supervisord still alive after stop: ${left.join(', ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** GET over plain HTTP without keep-alive; status 0 when the connection fails. */
function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    let response = '';
    const done = () => {
      socket.destroy();
      const match = /^HTTP\/1\.\d (\d{3})[^\r\n]*\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(response);
      resolve(match ? { status: Number(match[1]), body: match[2].trim() } : { status: 0, body: response });
    };
    socket.setEncoding('utf8');
    socket.setTimeout(2000, done);
    socket.on('data', (chunk: string) => (response += chunk));
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`));
    socket.once('end', done);
    socket.once('error', done);
  });
}

function run(cmd: string, args: string[], options: { check?: boolean } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      if (code !== 0 && options.check !== false) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stdout}${stderr}`));
      else resolve({ code, output: stdout + stderr });
    });
  });
}

function readIfExists(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Alive and not a zombie (an exited child not yet reaped counts as gone). */
function isAlive(pid: number): boolean {
  const stat = readIfExists(`/proc/${pid}/stat`);
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
