import { expect } from '@jest/globals';
import { InputError } from '../../src/core/errors.js';
import { PlanError } from '../../src/core/plan.js';

/** Run `action` and return the error of class `kind` it throws (failing the test otherwise). */
export function thrownBy<E extends Error>(kind: new (...args: never[]) => E, action: () => unknown): E {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(kind);
    return error as E;
  }
  throw new Error(`expected a ${kind.name}, but nothing was thrown`);
}

export const inputErrorOf = (action: () => unknown): InputError => thrownBy(InputError, action);
export const planError = (action: () => unknown): PlanError => thrownBy(PlanError, action);
