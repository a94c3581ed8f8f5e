import { ownerOf } from '../../bench/lib/profile';
import {
  median,
  steadyRate,
  successesPerInterval,
  throttledShare,
  timeOfCount,
  wholeRate,
} from '../../bench/lib/rates';
import type { Sample } from '../../bench/lib/stack';

/** Samples one second apart of a run that ramps up for 2 s, runs at `rate` a second, then stops. */
function run(rate: number, seconds: number): Sample[] {
  const samples: Sample[] = [];
  let succeeded = 0;
  for (let second = 0; second <= seconds + 2; second += 1) {
    if (second >= 1 && second <= 2) succeeded += rate / 4;
    if (second > 2 && second <= seconds) succeeded += rate;
    samples.push({ atMs: second * 1000, calls: succeeded + 1, succeeded, throttled: 1 });
  }
  return samples;
}

test('the steady rate leaves out the ramp at the start and the tail at the end', () => {
  const samples = run(50, 40);
  expect(steadyRate(samples)).toBeCloseTo(50, 5);
  expect(wholeRate(samples)).toBeLessThan(50);
});

test('the moment a count is reached is interpolated between samples', () => {
  const samples: Sample[] = [
    { atMs: 0, calls: 0, succeeded: 0, throttled: 0 },
    { atMs: 1000, calls: 10, succeeded: 10, throttled: 0 },
    { atMs: 2000, calls: 30, succeeded: 30, throttled: 0 },
  ];
  expect(timeOfCount(samples, 20)).toBe(1500);
  expect(() => timeOfCount(samples, 31)).toThrow('never reach 31');
});

test('successes per interval show where the rate fell, the last interval cut short', () => {
  const samples = run(50, 40);
  const perTenSeconds = successesPerInterval(samples, 10_000);
  expect(perTenSeconds).toEqual([25 + 8 * 50, 500, 500, 500, 0]);
  expect(perTenSeconds.reduce((sum, count) => sum + count, 0)).toBe(samples.at(-1)?.succeeded);
  expect(successesPerInterval([], 10_000)).toEqual([]);
});

test('the throttled share is throttled calls over all calls, and nothing is no share', () => {
  expect(throttledShare([{ atMs: 0, calls: 200, succeeded: 199, throttled: 1 }])).toBe(0.005);
  expect(throttledShare([])).toBe(0);
});

test('median of odd and even counts', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
});

test('profile time is owned by package, project file, Node or V8', () => {
  expect(ownerOf('file:///work/main/node_modules/@smithy/core/dist-cjs/index.js', 'f')).toBe('@smithy/core');
  expect(ownerOf('file:///work/main/node_modules/tsx/dist/cjs.js', 'f')).toBe('tsx');
  expect(ownerOf('file:///work/main/src/activities/ledger.ts', 'f')).toBe('src/activities/ledger.ts');
  expect(ownerOf('node:internal/net', 'connect')).toBe('(node)');
  expect(ownerOf('', '(garbage collector)')).toBe('(garbage collector)');
});
