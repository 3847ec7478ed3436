import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { deployRootFor, runTagflip } from '../support/fixtures.js';
import { type TestSshd, startSshd } from '../support/sshd.js';
import { type SupervisedApp, appRepo, startSupervisedApp } from '../support/supervisor.js';

// What a deploy promises about the *running* app: a tiny HTTP server under a real
// supervisord, which loads its release once at start (see support/supervisor.ts), so
// only a restart by `activate` makes a flip visible over HTTP.
let sshd: TestSshd;
let repo: string;
let root: string;
let sites = 0;
const apps: SupervisedApp[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  repo = await appRepo(['good1', 'good2', 'bad'], ['bad'], sshd.user);
  root = deployRootFor(sshd.user);
});

afterAll(async () => {
  // Every app, even when a test failed half-way: no supervisord may outlive the suite.
  const stopped = await Promise.allSettled(apps.map((app) => app.stop()));
  await sshd?.stop();
  for (const outcome of stopped) if (outcome.status === 'rejected') throw outcome.reason;
});

/** A new site with its own supervisord, whose program `app` runs `<site>/current`. */
async function newSupervisedSite(): Promise<{ site: string; app: SupervisedApp }> {
  const site = join(root, `site${++sites}`);
  const app = await startSupervisedApp({ user: sshd.user, site });
  apps.push(app);
  return { site, app };
}

const current = (site: string) => readlinkSync(join(site, 'current'));

/** The events the app wrote while `work` ran: which release started, which health checks it answered. */
async function eventsDuring<T>(app: SupervisedApp, work: () => Promise<T>): Promise<[T, string[]]> {
  const before = app.events().length;
  const outcome = await work();
  return [outcome, app.events().slice(before)];
}

test('the harness sees a flip without a restart: the app keeps serving the release it started with', async () => {
  const { site, app } = await newSupervisedSite();
  const deploy = (release: string, activate: string) => runTagflip(sshd, site, repo, { release, activate });

  expect((await deploy('good1', app.activate)).result.status).toBe('deployed');
  await app.waitForBody('good1');
  expect((await deploy('good2', '')).result.status).toBe('deployed');
  expect(current(site)).toBe('releases/good2');
  // Give a wrongly reloading app every chance to show good2 before concluding it did not.
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(await app.get('/')).toEqual({ status: 200, body: 'good1' });
  expect(app.events()).toEqual(['start good1']);
});

/** A migration that records which release migrated the data: the app serves it. */
const MIGRATE = 'printf "%s\\n" "$TAGFLIP_RELEASE" > "$TAGFLIP_DATA_PATH/value"';

describe.each([
  { name: 'code', inputs: {} as Record<string, string>, served: (release: string) => release },
  { name: 'code and versioned data', inputs: { migrate: MIGRATE }, served: (release: string) => `${release} data=${release}` },
])('$name under supervisord: activate restarts the app, verify asks it over HTTP', ({ inputs, served }) => {
  // One site through the whole story, as a user's would go: each test is the next step.
  let site: string;
  let app: SupervisedApp;
  const run = (extra: Record<string, string>) => runTagflip(sshd, site, repo, { activate: app.activate, verify: app.verify, ...inputs, ...extra });

  beforeAll(async () => {
    ({ site, app } = await newSupervisedSite());
  });

  test('deploy good1, then good2: each is served once deployed', async () => {
    for (const release of ['good1', 'good2']) {
      const [{ result }, events] = await eventsDuring(app, () => run({ release }));
      expect(result).toMatchObject({ ok: true, status: 'deployed', release });
      expect(events).toEqual([`start ${release}`, `health ${release} 200`]);
      await app.waitForBody(served(release));
    }
  });

  test('deploy bad: verify fails, current flips back, activate runs again and good2 is served', async () => {
    const [{ result, host, log }, events] = await eventsDuring(app, () => run({ release: 'bad' }));
    expect(result).toMatchObject({ ok: false, status: 'rolled-back', release: 'good2', previousRelease: 'bad' });
    expect(host.error).toMatch(/verify/);
    expect(log).toContain('flipped back to releases/good2');
    expect(current(site)).toBe('releases/good2');
    await app.waitForBody(served('good2'));
    // bad really ran and failed its health check; then good2 was started again.
    expect(events.slice(0, 3)).toEqual(['start bad', 'health bad 500', 'start good2']);
  });

  test('command: rollback flips to good1, then runs activate and verify: good1 is served', async () => {
    const [{ result }, events] = await eventsDuring(app, () => run({ command: 'rollback' }));
    expect(result).toMatchObject({ ok: true, status: 'rolled-back', release: 'good1', previousRelease: 'good2' });
    if (inputs.migrate) expect(result).toMatchObject({ dataRelease: 'good1', previousDataRelease: 'good2' });
    expect(current(site)).toBe('releases/good1');
    // The promise to the user: the rolled-back-to release is what runs, not only what `current` names.
    await app.waitForBody(served('good1'));
    expect(events).toEqual(['start good1', 'health good1 200']);
  });
});
