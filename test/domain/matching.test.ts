import { type BoundingBox, iou, matchFaces, maxWeightAssignment } from '../../src/domain/matching';

const box = (Left: number, Top: number, Width: number, Height: number): BoundingBox => ({ Left, Top, Width, Height });

describe('iou', () => {
  test('is 1 for the same box, 0 for boxes apart or only touching', () => {
    expect(iou(box(0.1, 0.1, 0.2, 0.2), box(0.1, 0.1, 0.2, 0.2))).toBe(1);
    expect(iou(box(0, 0, 0.1, 0.1), box(0.5, 0.5, 0.1, 0.1))).toBe(0);
    expect(iou(box(0, 0, 0.1, 0.1), box(0.1, 0, 0.1, 0.1))).toBe(0);
  });

  test('is intersection over union for a partial overlap, whichever box comes first', () => {
    // Intersection 0.1 x 0.2 = 0.02; union 0.04 + 0.04 - 0.02 = 0.06.
    expect(iou(box(0, 0, 0.2, 0.2), box(0.1, 0, 0.2, 0.2))).toBeCloseTo(1 / 3, 12);
    expect(iou(box(0.1, 0, 0.2, 0.2), box(0, 0, 0.2, 0.2))).toBeCloseTo(1 / 3, 12);
  });

  test('is 0, not NaN, for a box of no area', () => {
    expect(iou(box(0.1, 0.1, 0, 0), box(0.1, 0.1, 0, 0))).toBe(0);
  });
});

describe('maxWeightAssignment', () => {
  function permutations(items: number[]): number[][] {
    if (items.length <= 1) return [items];
    return items.flatMap((item, i) =>
      permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
    );
  }

  function total(weights: number[][], assignment: number[]): number {
    return assignment.reduce((sum, column, row) => sum + (column >= 0 ? (weights[row]?.[column] ?? 0) : 0), 0);
  }

  test('finds the best total on random matrices, as trying every permutation does', () => {
    let seed = 7;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    for (let trial = 0; trial < 60; trial += 1) {
      const size = 1 + (trial % 6);
      const weights = Array.from({ length: size }, () =>
        Array.from({ length: size }, () => (random() < 0.3 ? 0 : random())),
      );
      const best = Math.max(...permutations([...Array(size).keys()]).map((columns) => total(weights, columns)));

      const assignment = maxWeightAssignment(weights);

      expect(total(weights, assignment)).toBeCloseTo(best, 9);
      expect(new Set(assignment.filter((column) => column >= 0)).size).toBe(
        assignment.filter((column) => column >= 0).length,
      );
    }
  });

  test('works when rows and columns differ in number', () => {
    expect(maxWeightAssignment([[0.2], [0.9], [0.5]])).toEqual([-1, 0, -1]);
    expect(maxWeightAssignment([[0.1, 0.7, 0.3]])).toEqual([1]);
    expect(maxWeightAssignment([])).toEqual([]);
  });

  test('stays quick for a hundred faces against a hundred', () => {
    const weights = Array.from({ length: 100 }, (_, row) =>
      Array.from({ length: 100 }, (__, column) => (row === column ? 0.9 : 0.01)),
    );
    expect(maxWeightAssignment(weights)).toEqual([...Array(100).keys()]);
  });
});

describe('matchFaces', () => {
  test('one new face claimed by two old ones goes to the one that overlaps it more', () => {
    const newFace = box(0.4, 0.4, 0.2, 0.2);
    const pairs = matchFaces([box(0.42, 0.4, 0.2, 0.2), box(0.4, 0.4, 0.2, 0.2)], [newFace], 0.5);
    expect(pairs).toEqual([{ oldIndex: 1, newIndex: 0, iou: 1 }]);
  });

  test('beats greedy: the first old face yields its best partner so the second has one at all', () => {
    const oldA = box(0.3, 0.3, 0.2, 0.2);
    const oldB = box(0.26, 0.3, 0.2, 0.2);
    const newX = box(0.3, 0.3, 0.2, 0.2);
    const newY = box(0.33, 0.3, 0.2, 0.2);
    // Greedy would give A its best (X, IoU 1) and leave B below the threshold with Y.
    expect(iou(oldB, newY)).toBeLessThan(0.6);
    const pairs = matchFaces([oldA, oldB], [newX, newY], 0.6);
    expect(pairs.map(({ oldIndex, newIndex }) => [oldIndex, newIndex])).toEqual([
      [0, 1],
      [1, 0],
    ]);
  });

  test('pairs below the threshold are left unmatched, and the threshold itself counts', () => {
    const oldFace = box(0, 0, 0.2, 0.2);
    const shifted = box(0.1, 0, 0.2, 0.2);
    expect(matchFaces([oldFace], [shifted], 0.5)).toEqual([]);
    expect(matchFaces([oldFace], [shifted], iou(oldFace, shifted))).toHaveLength(1);
  });

  test('no new faces, no old faces, or no overlap at all gives no pairs, even at threshold 0', () => {
    expect(matchFaces([box(0, 0, 0.1, 0.1)], [], 0.5)).toEqual([]);
    expect(matchFaces([], [box(0, 0, 0.1, 0.1)], 0.5)).toEqual([]);
    expect(matchFaces([box(0, 0, 0.1, 0.1)], [box(0.5, 0.5, 0.1, 0.1)], 0)).toEqual([]);
  });

  test('equal overlaps still give a one-to-one answer', () => {
    const face = box(0.2, 0.2, 0.2, 0.2);
    const pairs = matchFaces([face, face], [face, face], 0.5);
    expect(pairs).toHaveLength(2);
    expect(new Set(pairs.map((pair) => pair.newIndex)).size).toBe(2);
  });
});
