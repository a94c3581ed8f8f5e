/**
 * Which new face is which old face: the intersection over union of every old and new bounding box,
 * then the one-to-one assignment that maximises the total IoU among pairs at or above the
 * threshold. Unlike a greedy choice per face, two old faces can never take the same new face, and
 * one old face's choice never robs another of its only good partner.
 */

/** Rekognition's bounding box: ratios of the image's width and height. */
export interface BoundingBox {
  Width: number;
  Height: number;
  Left: number;
  Top: number;
}

export interface FacePair {
  oldIndex: number;
  newIndex: number;
  iou: number;
}

export function iou(a: BoundingBox, b: BoundingBox): number {
  const width = Math.min(a.Left + a.Width, b.Left + b.Width) - Math.max(a.Left, b.Left);
  const height = Math.min(a.Top + a.Height, b.Top + b.Height) - Math.max(a.Top, b.Top);
  if (width <= 0 || height <= 0) return 0;
  const intersection = width * height;
  // Rounding can push identical boxes a hair past 1.
  return Math.min(1, intersection / (a.Width * a.Height + b.Width * b.Height - intersection));
}

/**
 * The assignment of rows to columns with the greatest total weight (Hungarian method, O(n³)).
 * Rows and columns may differ in number; a row left without a column gets -1.
 */
export function maxWeightAssignment(weights: number[][]): number[] {
  const rows = weights.length;
  const columns = Math.max(0, ...weights.map((row) => row.length));
  const size = Math.max(rows, columns);
  if (size === 0) return [];
  // Minimise cost = -weight over a square matrix padded with zeros; indices are 1-based below.
  const cost = (row: number, column: number) => -(weights[row - 1]?.[column - 1] ?? 0);
  const rowPotential = new Array<number>(size + 1).fill(0);
  const columnPotential = new Array<number>(size + 1).fill(0);
  const rowOfColumn = new Array<number>(size + 1).fill(0);
  const previousColumn = new Array<number>(size + 1).fill(0);
  for (let row = 1; row <= size; row += 1) {
    rowOfColumn[0] = row;
    let column = 0;
    const slack = new Array<number>(size + 1).fill(Infinity);
    const visited = new Array<boolean>(size + 1).fill(false);
    do {
      visited[column] = true;
      const currentRow = rowOfColumn[column]!;
      let delta = Infinity;
      let nextColumn = 0;
      for (let candidate = 1; candidate <= size; candidate += 1) {
        if (visited[candidate]) continue;
        const reduced = cost(currentRow, candidate) - rowPotential[currentRow]! - columnPotential[candidate]!;
        if (reduced < slack[candidate]!) {
          slack[candidate] = reduced;
          previousColumn[candidate] = column;
        }
        if (slack[candidate]! < delta) {
          delta = slack[candidate]!;
          nextColumn = candidate;
        }
      }
      for (let candidate = 0; candidate <= size; candidate += 1) {
        if (visited[candidate]) {
          rowPotential[rowOfColumn[candidate]!]! += delta;
          columnPotential[candidate]! -= delta;
        } else {
          slack[candidate]! -= delta;
        }
      }
      column = nextColumn;
    } while (rowOfColumn[column] !== 0);
    do {
      const previous = previousColumn[column]!;
      rowOfColumn[column] = rowOfColumn[previous]!;
      column = previous;
    } while (column !== 0);
  }
  const assignment = new Array<number>(rows).fill(-1);
  for (let column = 1; column <= size; column += 1) {
    const row = rowOfColumn[column]!;
    if (row >= 1 && row <= rows && column <= columns) assignment[row - 1] = column - 1;
  }
  return assignment;
}

/** Pairs old and new faces one to one, maximising total IoU among pairs with IoU ≥ threshold. */
export function matchFaces(oldBoxes: BoundingBox[], newBoxes: BoundingBox[], threshold: number): FacePair[] {
  const overlaps = oldBoxes.map((oldBox) => newBoxes.map((newBox) => iou(oldBox, newBox)));
  const eligible = overlaps.map((row) => row.map((overlap) => (overlap >= threshold ? overlap : 0)));
  return maxWeightAssignment(eligible).flatMap((newIndex, oldIndex) => {
    const overlap = overlaps[oldIndex]?.[newIndex] ?? 0;
    return newIndex >= 0 && overlap >= threshold && overlap > 0 ? [{ oldIndex, newIndex, iou: overlap }] : [];
  });
}
