import { describe, expect, test } from '@jest/globals';
import { inPool } from '../../src/core/pool.js';

/** A promise and the functions that settle it, for stepping through a pool by hand. */
interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((done, fail) => {
    resolve = done;
    reject = fail;
  });
  return { promise, resolve, reject };
}

/** Let every queued promise callback run (the pool's workers pick up the next item). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Work whose items finish only when the test says so; counts what runs at once
 * and records which items started, in order.
 */
function instrumented<T>(count: number) {
  const gates = Array.from({ length: count }, () => deferred<T>());
  const state = { running: 0, maxRunning: 0, started: [] as number[], finished: [] as number[] };
  const work = async (_item: unknown, index: number): Promise<T> => {
    state.running += 1;
    state.maxRunning = Math.max(state.maxRunning, state.running);
    state.started.push(index);
    try {
      return await gates[index].promise;
    } finally {
      state.running -= 1;
      state.finished.push(index);
    }
  };
  return { gates, state, work };
}

describe('inPool', () => {
  test('results come back in input order, whatever order the work finishes in', async () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    const { gates, work } = instrumented<string>(items.length);
    const pool = inPool(items, 5, (item, index) => work(item, index).then((value) => `${item}:${value}`));
    // Finish in reverse order.
    for (const index of [4, 3, 2, 1, 0]) {
      gates[index].resolve(`done-${index}`);
      await settle();
    }
    await expect(pool).resolves.toEqual(['a:done-0', 'b:done-1', 'c:done-2', 'd:done-3', 'e:done-4']);
  });

  test('results in input order with real delays, limit 2', async () => {
    const delays = [30, 5, 20, 1, 10, 0];
    const results = await inPool(delays, 2, (delay, index) => new Promise<string>((resolve) => setTimeout(() => resolve(`${index}/${delay}`), delay)));
    expect(results).toEqual(['0/30', '1/5', '2/20', '3/1', '4/10', '5/0']);
  });

  test('work gets each item with its index, each exactly once', async () => {
    const seen: [string, number][] = [];
    await inPool(['x', 'y', 'z'], 2, async (item, index) => {
      seen.push([item, index]);
    });
    expect(seen.sort((a, b) => a[1] - b[1])).toEqual([
      ['x', 0],
      ['y', 1],
      ['z', 2],
    ]);
  });

  test('never more than `limit` at once: exactly `limit` start, the next starts only when one finishes', async () => {
    const { gates, state, work } = instrumented<number>(7);
    const pool = inPool([0, 1, 2, 3, 4, 5, 6], 3, work);
    await settle();
    expect(state.started).toEqual([0, 1, 2]);
    expect(state.running).toBe(3);

    // Nothing new starts while all three are busy.
    await settle();
    expect(state.started).toEqual([0, 1, 2]);

    gates[1].resolve(1);
    await settle();
    expect(state.started).toEqual([0, 1, 2, 3]);
    expect(state.running).toBe(3);

    gates[0].resolve(0);
    gates[2].resolve(2);
    await settle();
    expect(state.started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(state.running).toBe(3);

    gates[5].resolve(5);
    await settle();
    expect(state.started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(state.running).toBe(3);

    for (const index of [3, 4, 6]) gates[index].resolve(index);
    await expect(pool).resolves.toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(state.maxRunning).toBe(3);
    expect(state.running).toBe(0);
  });

  test.each([1, 2, 4])('limit %i: the maximum running at once is the limit, with many items', async (limit) => {
    let running = 0;
    let maxRunning = 0;
    const results = await inPool(
      Array.from({ length: 12 }, (_, index) => index),
      limit,
      async (item) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setTimeout(resolve, 2 + (item % 3)));
        running -= 1;
        return item * 2;
      },
    );
    expect(maxRunning).toBe(limit);
    expect(results).toEqual(Array.from({ length: 12 }, (_, index) => index * 2));
  });

  test('limit 1 runs the items one after another, in order', async () => {
    const { gates, state, work } = instrumented<number>(3);
    const pool = inPool([0, 1, 2], 1, work);
    await settle();
    expect(state.started).toEqual([0]);
    gates[0].resolve(0);
    await settle();
    expect(state.started).toEqual([0, 1]);
    gates[1].resolve(1);
    await settle();
    expect(state.started).toEqual([0, 1, 2]);
    gates[2].resolve(2);
    await expect(pool).resolves.toEqual([0, 1, 2]);
    expect(state.finished).toEqual([0, 1, 2]);
    expect(state.maxRunning).toBe(1);
  });

  test('a limit larger than the list starts every item at once', async () => {
    const { gates, state, work } = instrumented<string>(3);
    const pool = inPool(['a', 'b', 'c'], 16, work);
    await settle();
    expect(state.started).toEqual([0, 1, 2]);
    expect(state.running).toBe(3);
    gates.forEach((gate, index) => gate.resolve(`r${index}`));
    await expect(pool).resolves.toEqual(['r0', 'r1', 'r2']);
    expect(state.maxRunning).toBe(3);
  });

  test('an empty list gives an empty result without calling work', async () => {
    let calls = 0;
    const results = await inPool([], 4, async () => {
      calls += 1;
      return 1;
    });
    expect(results).toEqual([]);
    expect(calls).toBe(0);
  });

  test('a rejection propagates: inPool rejects with the same error', async () => {
    const boom = new Error('host web2 failed');
    await expect(
      inPool(['web1', 'web2', 'web3'], 2, async (item) => {
        if (item === 'web2') throw boom;
        return item;
      }),
    ).rejects.toBe(boom);
  });

  test('a rejection while others still run rejects the pool at once', async () => {
    const { gates, state, work } = instrumented<number>(3);
    const pool = inPool([0, 1, 2], 3, work);
    const outcome = pool.then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    await settle();
    gates[1].reject(new Error('second failed'));
    await expect(outcome).resolves.toBe('second failed');
    // The others were still running when the pool gave up.
    expect(state.running).toBe(2);
    gates[0].resolve(0);
    gates[2].resolve(2);
    await settle();
    expect(state.running).toBe(0);
  });

  test('a synchronous throw inside async work is a rejection too', async () => {
    await expect(
      inPool([1], 1, async () => {
        throw new TypeError('bad');
      }),
    ).rejects.toThrow(TypeError);
  });
});
