import { describe, expect, test } from '@jest/globals';
import { didYouMean, editDistance } from '../../src/core/did-you-mean.js';
import { COMMANDS, INPUT_NAMES } from '../../src/core/inputs.js';

describe('editDistance', () => {
  test.each([
    ['', '', 0],
    ['', 'abc', 3],
    ['deploy-path', 'deploy-path', 0],
    ['deploy-pth', 'deploy-path', 1],
    ['prot', 'port', 1], // two neighbours swapped: one edit
    ['kitten', 'sitting', 3],
    ['ref', 'env', 3],
  ])('%j → %j: %i', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
    expect(editDistance(b, a)).toBe(distance);
  });
});

describe('didYouMean', () => {
  test.each([
    ['deploy-pth', ['deploy-path']],
    ['hostz', ['hosts']],
    ['Hosts', ['hosts']],
    ['dryrun', ['dry-run']],
    ['relase', ['release']],
    ['buidl', ['build']],
    ['prot', ['port']],
    ['keep-release', ['keep-releases']],
    ['insecure-ignore-hostkey', ['insecure-ignore-host-key']],
  ])('--%s: %j', (typed, expected) => {
    expect(didYouMean(typed, INPUT_NAMES)).toEqual(expected);
  });

  test.each(['nope', 'help-me', '', 'verbose', 'ssh-port', 'x'])('nothing close to %j: no guess', (typed) => {
    expect(didYouMean(typed, INPUT_NAMES)).toEqual([]);
  });

  test('a short name allows one edit only: --ref is not a typo of --env', () => {
    expect(didYouMean('ref', ['env'])).toEqual([]);
    expect(didYouMean('rex', ['ref'])).toEqual(['ref']);
  });

  test('ties: every nearest one, in the order given', () => {
    expect(didYouMean('host', ['hosts', 'hostz', 'port'])).toEqual(['hosts', 'hostz']);
  });

  test.each([
    ['deplyo', ['deploy']],
    ['rollbak', ['rollback']],
    ['stauts', ['status']],
    ['purne', ['prune']],
    ['undeploy', ['deploy']],
    ['frobnicate', []],
  ])('command %s: %j', (typed, expected) => {
    expect(didYouMean(typed, COMMANDS)).toEqual(expected);
  });
});
