import { describe, expect, test } from '@jest/globals';
import { Writable } from 'node:stream';
import { type Logger, hostLogger, maskingLogger, silentLogger, tidyGroups, writerBacklog } from '../../src/core/logger.js';

type Call = [method: keyof Logger, ...args: string[]];

/** A logger that records every call, in order. */
function recorder(): { logger: Logger; calls: Call[] } {
  const calls: Call[] = [];
  const logger: Logger = {
    info: (message) => calls.push(['info', message]),
    warning: (message) => calls.push(['warning', message]),
    error: (message) => calls.push(['error', message]),
    debug: (message) => calls.push(['debug', message]),
    startGroup: (name) => calls.push(['startGroup', name]),
    endGroup: () => calls.push(['endGroup']),
  };
  return { logger, calls };
}

const HOST = 'deploy@web1.example.com:2222';

describe('hostLogger', () => {
  test.each(['info', 'warning', 'error', 'debug'] as const)('%s lines are prefixed with "host | " and go to the same level', (level) => {
    const { logger, calls } = recorder();
    hostLogger(logger, HOST)[level]('building v3.0');
    expect(calls).toEqual([[level, `${HOST} | building v3.0`]]);
  });

  test.each(['info', 'warning', 'error', 'debug'] as const)('%s: a line that already starts with "host: " is passed on unchanged', (level) => {
    const { logger, calls } = recorder();
    hostLogger(logger, HOST)[level](`${HOST}: build failed: build exited with status 2`);
    expect(calls).toEqual([[level, `${HOST}: build failed: build exited with status 2`]]);
  });

  test.each([
    ['another host’s name', 'deploy@web2.example.com:2222: build failed', `${HOST} | deploy@web2.example.com:2222: build failed`],
    ['the host without ": "', `${HOST}:x`, `${HOST} | ${HOST}:x`],
    ['the host with a space but no colon', `${HOST} building`, `${HOST} | ${HOST} building`],
    ['the host later in the line', `note: ${HOST}: x`, `${HOST} | note: ${HOST}: x`],
    ['a prefix of the host', 'deploy@web1: x', `${HOST} | deploy@web1: x`],
    ['an already "host | " prefixed line', `${HOST} | x`, `${HOST} | ${HOST} | x`],
    ['an empty line', '', `${HOST} | `],
  ])('%s is prefixed', (_what, message, expected) => {
    const { logger, calls } = recorder();
    hostLogger(logger, HOST).info(message);
    expect(calls).toEqual([['info', expected]]);
  });

  test('a group becomes one info line "host | ── name" before its first line; no group is opened', () => {
    const { logger, calls } = recorder();
    const prefixed = hostLogger(logger, HOST);
    prefixed.startGroup('build');
    expect(calls).toEqual([]);
    prefixed.info('make');
    prefixed.info('make install');
    expect(calls).toEqual([
      ['info', `${HOST} | ── build`],
      ['info', `${HOST} | make`],
      ['info', `${HOST} | make install`],
    ]);
  });

  test('a group with no line in it says nothing; a debug line does not count (it may not be shown)', () => {
    const { logger, calls } = recorder();
    const prefixed = hostLogger(logger, HOST);
    prefixed.startGroup('preflight');
    prefixed.debug('script');
    prefixed.endGroup();
    prefixed.startGroup('facts');
    prefixed.startGroup('build');
    prefixed.warning('slow');
    expect(calls).toEqual([
      ['debug', `${HOST} | script`],
      ['info', `${HOST} | ── build`],
      ['warning', `${HOST} | slow`],
    ]);
  });

  test('endGroup passes nothing on', () => {
    const { logger, calls } = recorder();
    const prefixed = hostLogger(logger, HOST);
    expect(prefixed.endGroup()).toBeUndefined();
    expect(calls).toEqual([]);
  });

  test('a whole phase in order', () => {
    const { logger, calls } = recorder();
    const prefixed = hostLogger(logger, 'local');
    prefixed.startGroup('build');
    prefixed.info('make');
    prefixed.warning('local: slow disk');
    prefixed.endGroup();
    prefixed.error('failed');
    expect(calls).toEqual([
      ['info', 'local | ── build'],
      ['info', 'local | make'],
      ['warning', 'local: slow disk'],
      ['error', 'local | failed'],
    ]);
  });

  test('two hosts over one logger each prefix their own lines', () => {
    const { logger, calls } = recorder();
    const web1 = hostLogger(logger, 'deploy@web1');
    const web2 = hostLogger(logger, 'deploy@web2');
    web1.info('a');
    web2.info('b');
    web2.info('deploy@web2: c');
    web1.info('deploy@web2: d');
    expect(calls).toEqual([
      ['info', 'deploy@web1 | a'],
      ['info', 'deploy@web2 | b'],
      ['info', 'deploy@web2: c'],
      ['info', 'deploy@web1 | deploy@web2: d'],
    ]);
  });

  test('wrapping twice prefixes twice (one wrapper per host is the contract)', () => {
    const { logger, calls } = recorder();
    hostLogger(hostLogger(logger, 'a'), 'b').info('x');
    expect(calls).toEqual([['info', 'a | b | x']]);
  });

  test('silentLogger discards everything', () => {
    for (const method of ['info', 'warning', 'error', 'debug', 'startGroup'] as const) expect(silentLogger[method]('x')).toBeUndefined();
    expect(silentLogger.endGroup()).toBeUndefined();
    const { calls } = recorder();
    hostLogger(silentLogger, HOST).info('nothing');
    expect(calls).toEqual([]);
  });
});

describe('tidyGroups', () => {
  test('a group is opened at its first line and closed at its end', () => {
    const { logger, calls } = recorder();
    const tidy = tidyGroups(logger, false);
    tidy.info('before');
    tidy.startGroup('build');
    tidy.info('make');
    tidy.endGroup();
    tidy.info('after');
    expect(calls).toEqual([['info', 'before'], ['startGroup', 'build'], ['info', 'make'], ['endGroup'], ['info', 'after']]);
  });

  test('a group with no line in it is not shown at all', () => {
    const { logger, calls } = recorder();
    const tidy = tidyGroups(logger, false);
    tidy.startGroup('connect');
    tidy.endGroup();
    tidy.startGroup('flip');
    tidy.endGroup();
    expect(calls).toEqual([]);
  });

  test('a group opened while another is shown ends that one first: never nested', () => {
    const { logger, calls } = recorder();
    const tidy = tidyGroups(logger, false);
    tidy.startGroup('build');
    tidy.info('make');
    tidy.startGroup('flip');
    tidy.info('flipped');
    tidy.endGroup();
    tidy.endGroup();
    expect(calls).toEqual([['startGroup', 'build'], ['info', 'make'], ['endGroup'], ['startGroup', 'flip'], ['info', 'flipped'], ['endGroup']]);
  });

  test('an end with no group shown says nothing, however many there are', () => {
    const { logger, calls } = recorder();
    const tidy = tidyGroups(logger, false);
    tidy.endGroup();
    tidy.startGroup('build');
    tidy.startGroup('flip');
    tidy.endGroup();
    tidy.endGroup();
    expect(calls).toEqual([]);
  });

  test.each(['info', 'warning', 'error'] as const)('%s is a line: it shows the group', (level) => {
    const { logger, calls } = recorder();
    const tidy = tidyGroups(logger, false);
    tidy.startGroup('verify');
    tidy[level]('x');
    tidy.endGroup();
    expect(calls).toEqual([['startGroup', 'verify'], [level, 'x'], ['endGroup']]);
  });

  test('a debug line shows the group only where debug lines are shown', () => {
    for (const debugShown of [false, true]) {
      const { logger, calls } = recorder();
      const tidy = tidyGroups(logger, debugShown);
      tidy.startGroup('preflight');
      tidy.debug('script');
      tidy.endGroup();
      expect(calls).toEqual(debugShown ? [['startGroup', 'preflight'], ['debug', 'script'], ['endGroup']] : [['debug', 'script']]);
    }
  });

  test('any sequence of calls gives well-formed groups: none nested, none empty, every end after its start', () => {
    const actions = ['start', 'end', 'info', 'debug'] as const;
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let run = 0; run < 200; run++) {
      const { logger, calls } = recorder();
      const tidy = tidyGroups(logger, false);
      for (let step = 0; step < 30; step++) {
        const action = actions[next() % actions.length];
        if (action === 'start') tidy.startGroup(`g${step}`);
        else if (action === 'end') tidy.endGroup();
        else tidy[action](`l${step}`);
      }
      let open = false;
      let linesInGroup = 0;
      for (const [method] of calls) {
        if (method === 'startGroup') {
          expect(open).toBe(false);
          open = true;
          linesInGroup = 0;
        } else if (method === 'endGroup') {
          expect(open).toBe(true);
          expect(linesInGroup).toBeGreaterThan(0);
          open = false;
        } else if (method === 'info') {
          linesInGroup++;
        }
      }
    }
  });
});

describe('secrets and the writer’s backlog pass through every wrapper', () => {
  test('tidyGroups, hostLogger and maskingLogger pass on secrets (maskingLogger adds its own) and the backlog', async () => {
    const drained = Promise.resolve();
    const inner: Logger = { ...silentLogger, secrets: ['inner-secret'], backlog: () => drained };
    const wrapped = maskingLogger(hostLogger(tidyGroups(inner, false), HOST), ['cli-secret']);
    expect(wrapped.secrets).toEqual(['inner-secret', 'cli-secret']);
    expect(wrapped.backlog?.()).toBe(drained);
    expect(tidyGroups(silentLogger, false).backlog?.()).toBeUndefined();
  });

  test('writerBacklog: undefined while the stream takes more; one promise for all while it wants a drain, resolved by the drain', async () => {
    const stream = new Writable({ highWaterMark: 4, write: (_chunk, _encoding, callback) => setImmediate(callback) });
    const backlog = writerBacklog(stream);
    expect(backlog()).toBeUndefined();
    stream.write('0123456789');
    const first = backlog();
    expect(first).toBeInstanceOf(Promise);
    expect(backlog()).toBe(first);
    await first;
    expect(backlog()).toBeUndefined();
  });
});
