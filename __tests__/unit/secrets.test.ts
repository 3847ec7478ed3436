/**
 * Which values are secrets (issue 9): the key, its passphrase and secret-env's
 * values. env's values are not: registering `1` or `production` would turn every
 * such string of the job log into ***.
 */
import { describe, expect, test } from '@jest/globals';
import { type Logger, maskingLogger, secretMasker } from '../../src/core/logger.js';
import { secretsOf } from '../../src/commands/run.js';

describe('secretsOf', () => {
  test('env values are not registered; secret-env values are, with their spaces', () => {
    expect(secretsOf({ env: 'APP_ENV=production\nWORKERS=4\nDEBUG=1', 'secret-env': 'API_TOKEN=t0ken\nDB_PASSWORD= spaced \r\n' })).toEqual(['t0ken', ' spaced ']);
  });

  test('comments, blank values and lines without = in secret-env register nothing', () => {
    expect(secretsOf({ 'secret-env': '# TOKEN=not-a-value\nEMPTY=\nBLANK=   \n\nnot a line\nREAL=x=y' })).toEqual(['x=y']);
  });

  test('the private key (whole, and each long line) and the passphrase stay registered', () => {
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nshort\n-----END OPENSSH PRIVATE KEY-----\n';
    expect(secretsOf({ 'private-key': key, passphrase: 'pass phrase ', env: 'A=1' })).toEqual([
      key,
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      'b3BlbnNzaC1rZXktdjEAAAAA',
      '-----END OPENSSH PRIVATE KEY-----',
      'pass phrase ',
    ]);
  });

  test('nothing given: nothing to register', () => {
    expect(secretsOf({})).toEqual([]);
  });
});

describe('secretMasker', () => {
  test('replaces every occurrence of every secret by ***', () => {
    expect(secretMasker(['hunter2', 't0k'])('a hunter2 b t0k hunter2')).toBe('a *** b *** ***');
  });

  test('a secret that contains a shorter one is replaced whole', () => {
    expect(secretMasker(['abc', 'abcdef'])('xabcdefx abc')).toBe('x***x ***');
  });

  test('values are matched literally, not as patterns; an empty secret masks nothing', () => {
    expect(secretMasker(['a.c', '$(id)', ''])('abc a.c $(id)')).toBe('abc *** ***');
  });
});

describe('maskingLogger', () => {
  test('masks every level and group names, and keeps endGroup', () => {
    const calls: string[] = [];
    const inner: Logger = {
      info: (message) => calls.push(`info ${message}`),
      warning: (message) => calls.push(`warning ${message}`),
      error: (message) => calls.push(`error ${message}`),
      debug: (message) => calls.push(`debug ${message}`),
      startGroup: (name) => calls.push(`group ${name}`),
      endGroup: () => calls.push('end'),
    };
    const logger = maskingLogger(inner, ['s3cret']);
    logger.info('token s3cret');
    logger.warning('s3cret!');
    logger.error('x s3crets3cret');
    logger.debug("tf_user_env='A=s3cret'");
    logger.startGroup('build s3cret');
    logger.endGroup();
    logger.info('production');
    expect(calls).toEqual(['info token ***', 'warning ***!', 'error x ******', "debug tf_user_env='A=***'", 'group build ***', 'end', 'info production']);
  });
});
