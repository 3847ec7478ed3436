import { expect } from '@jest/globals';
import { InputError } from '../../src/errors.js';

/** Run `action` and return the InputError it throws (failing the test otherwise). */
export function inputErrorOf(action: () => unknown): InputError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error('expected an InputError, but nothing was thrown');
}
