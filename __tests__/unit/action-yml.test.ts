import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { INPUT_NAMES } from '../../src/core/settings.js';

// action.yml is what users read and what the runner passes: it must declare
// exactly the inputs the code reads, each with a description.
describe('action.yml', () => {
  const action = YAML.parse(readFileSync('action.yml', 'utf8'));

  test('declares exactly the inputs the settings read, each described', () => {
    expect(Object.keys(action.inputs).sort()).toEqual([...INPUT_NAMES].sort());
    for (const [name, input] of Object.entries<{ description?: string }>(action.inputs)) {
      expect(`${name}: ${input.description?.length ?? 0}`).not.toBe(`${name}: 0`);
    }
  });

  test('declares the outputs the action sets', () => {
    const setOutputs = [...readFileSync('src/action/action.ts', 'utf8').matchAll(/core\.setOutput\('([^']+)'/g)].map((match) => match[1]);
    expect(Object.keys(action.outputs).sort()).toEqual([...new Set(setOutputs)].sort());
  });

  test('runs the bundle on node24', () => {
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
  });
});
