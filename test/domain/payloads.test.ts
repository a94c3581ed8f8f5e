import { slicesByJsonSize } from '../../src/domain/payloads';

const item = (n: number, chars: number) => ({ n, text: 'x'.repeat(chars) });

test("slices keep every item, in order, each slice's JSON under the limit", () => {
  const items = Array.from({ length: 200 }, (_, n) => item(n, 50 + ((n * 37) % 400)));

  const slices = slicesByJsonSize(items, 4_000);

  expect(slices.flat()).toEqual(items);
  expect(slices.length).toBeGreaterThan(10);
  for (const slice of slices) expect(JSON.stringify(slice).length).toBeLessThanOrEqual(4_000);
});

test('an item larger than the limit goes alone, and nothing is lost around it', () => {
  const items = [item(1, 10), item(2, 5_000), item(3, 10)];

  expect(slicesByJsonSize(items, 1_000)).toEqual([[items[0]], [items[1]], [items[2]]]);
});

test('no items, no slices: nothing to send', () => {
  expect(slicesByJsonSize([], 1_000)).toEqual([]);
});
