import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { INPUT_NAMES } from '../../src/core/inputs.js';
import { hostRows, releaseRows } from '../../src/core/result.js';
import { host } from './host-result.js';

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

  // Every field the code puts in a row, and no other, is named in the output's description (issue 22).
  const namedFields = (description: string) => [...new Set(description.match(/\b[a-z]+(?:-[a-z]+)*\b/g))];
  test("the hosts output's description names every field of its rows, optional ones included", () => {
    const everything = host({ unconfirmedRelease: 'v3.1', uploadBytes: 1024, attention: 'NEEDS ATTENTION: …', removed: ['v1'], preparedRelease: 'v2', stage: 'canary' });
    const fields = Object.keys(hostRows([everything])[0]);
    const description: string = action.outputs.hosts.description;
    expect(fields.filter((field) => !namedFields(description).includes(field))).toEqual([]);
    const listed = description.slice(description.indexOf('(') + 1, description.lastIndexOf(')')).split(/[,;:]\s*/).map((part) => part.trim().split(' ')[0]).filter((word) => /-|^[a-z]+$/.test(word));
    expect(listed.filter((field) => ['and', 'when', 'with'].includes(field) === false && !fields.includes(field))).toEqual([]);
  });

  test("the releases output's description names every field of its rows and of each release", () => {
    const report = { current: 'v3.0', rollbackTarget: 'v2.9', lockHolder: null, releases: [{ release: 'v3.0', state: 'active' as const, commit: '', finished: '', actor: '', current: true, rollbackTarget: false, adopted: false }] };
    const [row] = releaseRows([host({ report })]) as [{ releases: object[] }];
    const description: string = action.outputs.releases.description;
    const fields = [...Object.keys(row), ...Object.keys(row.releases[0])];
    expect(fields.filter((field) => !namedFields(description).includes(field))).toEqual([]);
  });

  test('runs the bundle on node24', () => {
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
  });
});
