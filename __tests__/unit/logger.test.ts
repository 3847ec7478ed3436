import { describe, expect, test } from '@jest/globals';
import { type Logger, hostLogger, silentLogger } from '../../src/core/logger.js';

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

  test('a group becomes one info line "host | ── name"; no group is opened', () => {
    const { logger, calls } = recorder();
    hostLogger(logger, HOST).startGroup('build');
    expect(calls).toEqual([['info', `${HOST} | ── build`]]);
  });

  test('endGroup is a no-op: the wrapped logger sees nothing', () => {
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
