import { reservoir, seededRandom } from '../../src/domain/sampling';

describe('seededRandom', () => {
  test('gives the same sequence for the same seed and another for another seed, always in [0, 1)', () => {
    const draw = (seed: string) => {
      const random = seededRandom(seed);
      return Array.from({ length: 1000 }, () => random());
    };

    expect(draw('42')).toEqual(draw('42'));
    expect(draw('42')).not.toEqual(draw('43'));
    expect(draw('42').every((value) => value >= 0 && value < 1)).toBe(true);
  });
});

describe('reservoir', () => {
  const sampleOf = (count: number, capacity: number, seed: string) => {
    const sample = reservoir<number>(capacity, seededRandom(seed));
    for (let i = 0; i < count; i += 1) sample.offer(i);
    return sample;
  };

  test('keeps every item of a stream shorter than its capacity, in stream order', () => {
    const sample = sampleOf(5, 10, 'a');

    expect(sample.items()).toEqual([0, 1, 2, 3, 4]);
    expect(sample.seen).toBe(5);
  });

  test('keeps exactly its capacity of a longer stream, in stream order, the same items for the same seed', () => {
    const sample = sampleOf(10_000, 50, 'seed');

    expect(sample.seen).toBe(10_000);
    expect(sample.items()).toHaveLength(50);
    expect(new Set(sample.items()).size).toBe(50);
    expect(sample.items()).toEqual([...sample.items()].sort((a, b) => a - b));
    expect(sample.items()).toEqual(sampleOf(10_000, 50, 'seed').items());
    expect(sample.items()).not.toEqual(sampleOf(10_000, 50, 'other').items());
  });

  test('gives every item of the stream the same chance, wherever it stands', () => {
    const trials = 20_000;
    const kept = new Array<number>(10).fill(0);
    for (let trial = 0; trial < trials; trial += 1) {
      for (const item of sampleOf(10, 3, `trial-${trial}`).items()) kept[item]! += 1;
    }

    // Each item is kept with chance 3/10; the standard deviation over 20,000 trials is about 0.003.
    for (const times of kept) expect(Math.abs(times / trials - 0.3)).toBeLessThan(0.015);
  });
});
