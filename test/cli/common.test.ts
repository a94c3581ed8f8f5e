import { setTimeout as sleep } from 'node:timers/promises';
import { forEachConcurrently } from '../../src/cli/common';

describe('forEachConcurrently', () => {
  test('works on every item, in order of start, with at most `concurrency` in flight', async () => {
    const started: number[] = [];
    let running = 0;
    let most = 0;

    await forEachConcurrently([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3, async (item) => {
      started.push(item);
      running += 1;
      most = Math.max(most, running);
      await sleep(item % 3);
      running -= 1;
    });

    expect(started).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(most).toBe(3);
  });

  test('pulls an endless async iterable only as slots free, and closes it on the first failure', async () => {
    let pulled = 0;
    let closed = false;
    async function* endless(): AsyncGenerator<number> {
      try {
        for (;;) {
          await sleep(0);
          yield pulled++;
        }
      } finally {
        closed = true;
      }
    }

    const outcome = forEachConcurrently(endless(), 4, async (item) => {
      await sleep(1);
      if (item === 20) throw new Error('item 20 failed');
    });

    await expect(outcome).rejects.toThrow('item 20 failed');
    expect(pulled).toBeLessThanOrEqual(20 + 4 + 1);
    expect(closed).toBe(true);
  });

  test('throws the first failure only after the work in flight has settled', async () => {
    const finished: string[] = [];

    const outcome = forEachConcurrently(['slow', 'fails', 'never'], 2, async (item) => {
      if (item === 'fails') throw new Error('fails failed');
      await sleep(item === 'slow' ? 50 : 0);
      finished.push(item);
    });

    await expect(outcome).rejects.toThrow('fails failed');
    expect(finished).toEqual(['slow']);
  });

  test('a failing iterable is thrown after the work in flight has settled', async () => {
    const finished: number[] = [];
    async function* breaksOff(): AsyncGenerator<number> {
      yield 1;
      yield 2;
      await sleep(0);
      throw new Error('the file breaks off');
    }

    const outcome = forEachConcurrently(breaksOff(), 4, async (item) => {
      await sleep(20);
      finished.push(item);
    });

    await expect(outcome).rejects.toThrow('the file breaks off');
    expect(finished).toEqual([1, 2]);
  });

  test('no items is no work; a concurrency below 1 is refused', async () => {
    const work = jest.fn(() => Promise.resolve());

    await forEachConcurrently([], 2, work);

    expect(work).not.toHaveBeenCalled();
    await expect(forEachConcurrently([1], 0, work)).rejects.toThrow(RangeError);
  });
});
