/** Deploying in stages (issue 24): the inputs, the stages, what retention keeps and what a switch does with data. */
import { describe, expect, test } from '@jest/globals';
import type { Manifest, ReleaseState } from '../../src/core/manifest.js';
import { planPrune } from '../../src/core/plan.js';
import { hostRows, renderSummary, summarize } from '../../src/core/result.js';
import { parseSettings } from '../../src/core/settings.js';
import { dataAtSwitch, preparedAhead, splitStages } from '../../src/core/stages.js';
import { facts, manifest } from './host-facts.js';
import { emptyHostResult } from '../../src/commands/host-run.js';

const CONTEXT = { refType: 'tag', refName: 'v2', sshAgent: '/tmp/agent.sock' } as const;
const fleet = { hosts: 'local', 'deploy-path': '/srv/app' };
const three = { hosts: 'a.example, b.example, c.example', user: 'deploy', 'deploy-path': '/srv/app', 'insecure-ignore-host-key': 'true' };

function refusal(inputs: Record<string, string>): string {
  try {
    parseSettings(inputs, CONTEXT);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe('parseSettings: prepare, canary, canary-wait', () => {
  test('prepare names a release and its source, as a deploy does', () => {
    expect(parseSettings({ ...fleet, command: 'prepare', repository: 'https://example.com/app.git' }, CONTEXT)).toMatchObject({ command: 'prepare', release: 'v2', ref: 'v2', canary: 0, canaryWait: 0 });
  });

  test('canary and canary-wait are read with a deploy to several hosts and verify', () => {
    expect(parseSettings({ ...three, canary: '2', 'canary-wait': '30', verify: 'true' }, CONTEXT)).toMatchObject({ canary: 2, canaryWait: 30 });
  });

  test.each([
    [{ ...three, canary: '3', verify: 'true' }, "canary: '3' is not a number of canary hosts; expected a whole number from 1 to 2: the first N of the 3 hosts flip first, the others after them"],
    [{ ...three, canary: '0', verify: 'true' }, "canary: '0' is not a number of canary hosts; expected a whole number from 1 to 2"],
    [{ ...three, canary: 'one', verify: 'true' }, "canary: 'one' is not a number of canary hosts"],
    [{ ...fleet, canary: '1', verify: 'true' }, "canary: is '1', but hosts has one host: there is no second stage; expected two or more hosts, or no canary"],
    [{ ...three, canary: '1' }, 'canary: is 1, but verify is not set: a canary is judged by verify; expected a verify command (a health check) with canary'],
    [{ ...three, 'canary-wait': '10' }, "canary-wait: is '10', but canary is not set; expected canary: N as well (the hosts that go first), or no canary-wait"],
    [{ ...three, canary: '1', verify: 'true', 'canary-wait': '1h' }, "canary-wait: '1h' is not a number of seconds; expected a whole number from 1 to 86400"],
    [{ ...three, canary: '1', verify: 'true', 'canary-wait': '86401' }, "canary-wait: '86401' is not a number of seconds"],
    [{ ...three, command: 'prepare', canary: '1', verify: 'true' }, 'canary: is set, but command is prepare: only a deploy flips in stages; expected canary on the deploy that flips (a prepare flips nothing), or no canary'],
    [{ ...three, command: 'rollback', canary: '1', verify: 'true' }, 'canary: is set, but command is rollback'],
  ])('refused before any connection: %j', (inputs, message) => {
    expect(refusal(inputs)).toContain(message);
  });
});

describe('splitStages', () => {
  test('no canary: one stage of every host, unnamed', () => {
    expect(splitStages(['a', 'b', 'c'], 0)).toEqual([{ name: null, hosts: ['a', 'b', 'c'] }]);
  });

  test('canary: the first N hosts, in the order of hosts, then the rest', () => {
    expect(splitStages(['a', 'b', 'c'], 1)).toEqual([
      { name: 'canary', hosts: ['a'] },
      { name: 'rest', hosts: ['b', 'c'] },
    ]);
    expect(splitStages(['a', 'b', 'c'], 2)).toEqual([
      { name: 'canary', hosts: ['a', 'b'] },
      { name: 'rest', hosts: ['c'] },
    ]);
  });

  test('fewer hosts ready than the canary asks for (the others were unchanged): one stage', () => {
    expect(splitStages(['a'], 1)).toEqual([{ name: null, hosts: ['a'] }]);
  });
});

function at(release: string, state: ReleaseState, minute: number, changes: Partial<Manifest> = {}): Manifest {
  const time = `2024-06-01T10:${String(minute).padStart(2, '0')}:00Z`;
  return manifest(release, state, '', { started: time, finished: time, ...changes });
}

describe('retention and prepared releases', () => {
  const prepared = () =>
    facts({
      current: 'v3',
      dirs: ['v1', 'v2', 'v3', 'v4', 'v0'],
      records: [at('v0', 'ready', 0), at('v1', 'inactive', 1), at('v2', 'inactive', 2), at('v3', 'active', 3), at('v4', 'ready', 4)],
    });

  test('a ready release newer than current is prepared; one older than current (an interrupted deploy) is not', () => {
    expect(preparedAhead(prepared())).toEqual(['v4']);
  });

  test('keep-releases 1 keeps current, the rollback target and the prepared release, whatever their count', () => {
    expect(planPrune(prepared(), 1, ['v3', 'v2'])).toEqual({ remove: ['v0', 'v1'], keep: ['v4', 'v3', 'v2'], removeData: [], unknown: [] });
  });

  test('with nothing current, every ready release is prepared', () => {
    expect(preparedAhead(facts({ dirs: ['v1'], records: [at('v1', 'ready', 1)] }))).toEqual(['v1']);
  });
});

describe('dataAtSwitch', () => {
  test('a prepared release (no data of its own) is migrated at the switch when migrate is set, else data stays', () => {
    expect(dataAtSwitch(at('v2', 'ready', 2), 'migrate.sh')).toBe('migrate');
    expect(dataAtSwitch(at('v2', 'ready', 2), '')).toBe('keep');
  });

  test('a ready release that recorded another data release, with migrate: migrated for itself now', () => {
    expect(dataAtSwitch(at('v2', 'ready', 2, { dataRelease: 'v1' }), 'migrate.sh')).toBe('migrate');
  });

  test('a release migrated for itself, or one that was active before, goes back to its recorded data', () => {
    expect(dataAtSwitch(at('v2', 'ready', 2, { dataRelease: 'v2' }), 'migrate.sh')).toBe('recorded');
    expect(dataAtSwitch(at('v2', 'inactive', 2, { dataRelease: 'v1' }), 'migrate.sh')).toBe('recorded');
    expect(dataAtSwitch(at('v2', 'ready', 2, { dataRelease: 'v1' }), '')).toBe('recorded');
  });
});

describe('results', () => {
  const row = (host: string, changes: object) => ({ ...emptyHostResult(host), ...changes });

  test('a prepare is prepared when every host is ready, failed when one failed; its rows name the prepared release', () => {
    const hosts = [row('a', { status: 'prepared', release: 'v1', preparedRelease: 'v2' }), row('b', { status: 'unchanged', release: 'v2' })];
    expect(summarize(hosts, 'prepare')).toMatchObject({ ok: true, status: 'prepared', release: 'v1' });
    expect(summarize([...hosts, row('c', { status: 'failed' })], 'prepare')).toMatchObject({ ok: false, status: 'failed' });
    expect(hostRows(hosts)[0]).toMatchObject({ host: 'a', status: 'prepared', release: 'v1', 'prepared-release': 'v2' });
    expect(renderSummary(summarize(hosts, 'prepare'), 'tagflip prepare')).toContain('| a | prepared | v1 | – | v2 | 0.0 s | 0.0 s | – |');
  });

  test('with a canary, the stage is a column of the summary and a field of hosts', () => {
    const hosts = [row('a', { status: 'deployed', release: 'v2', stage: 'canary' }), row('b', { status: 'deployed', release: 'v2', stage: 'rest' })];
    const summary = renderSummary(summarize(hosts), 'tagflip deploy');
    expect(summary).toContain('| host | stage | status | release | previous | build | total | error |');
    expect(summary).toContain('| b | rest | deployed | v2 |');
    expect(hostRows(hosts).map((host) => (host as { stage?: string }).stage)).toEqual(['canary', 'rest']);
  });
});
