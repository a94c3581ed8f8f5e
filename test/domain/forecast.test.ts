import {
  addImage,
  emptyForecast,
  extrapolate,
  recommendThreshold,
  thresholdForecasts,
  type ThresholdForecast,
} from '../../src/domain/forecast';
import { type BoundingBox, iou } from '../../src/domain/matching';

const THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7];

const box = (Left: number, Top: number, Width: number, Height: number): BoundingBox => ({ Left, Top, Width, Height });

/** A box inside `outer`, about the same centre, whose IoU with it is `overlap`. */
function shrunk(outer: BoundingBox, overlap: number): BoundingBox {
  const scale = Math.sqrt(overlap);
  const Width = outer.Width * scale;
  const Height = outer.Height * scale;
  return box(outer.Left + (outer.Width - Width) / 2, outer.Top + (outer.Height - Height) / 2, Width, Height);
}

const face = box(0.2, 0.2, 0.3, 0.3);
const elsewhere = box(0.6, 0.6, 0.3, 0.3);

test('the boxes built here overlap as intended', () => {
  expect(iou(shrunk(face, 0.45), face)).toBeCloseTo(0.45, 12);
});

test('counts per threshold what a run would make of each image', () => {
  const forecast = emptyForecast(THRESHOLDS);
  addImage(forecast, { oldBoxes: [shrunk(face, 0.95)], newBoxes: [face] });
  addImage(forecast, { oldBoxes: [shrunk(face, 0.65)], newBoxes: [face] });
  addImage(forecast, { oldBoxes: [shrunk(face, 0.45)], newBoxes: [face] });
  addImage(forecast, { oldBoxes: [face], newBoxes: [] });
  addImage(forecast, { oldBoxes: [shrunk(face, 0.95)], newBoxes: [face, elsewhere] });
  // Two old faces want one new face: one matches, the other is below the threshold, as in a run.
  addImage(forecast, { oldBoxes: [shrunk(face, 0.9), shrunk(face, 0.8)], newBoxes: [face] });

  const counts = thresholdForecasts(forecast, 6, 6).map(
    ({ threshold, matched, noFaceDetected, iouBelowThreshold, newFacesNobodyHad }) => [
      threshold,
      matched,
      noFaceDetected,
      iouBelowThreshold,
      newFacesNobodyHad,
    ],
  );

  expect(forecast).toMatchObject({ images: 6, oldFaces: 7, newFaces: 6 });
  expect(counts).toEqual([
    [0.3, 5, 1, 1, 1],
    [0.4, 5, 1, 1, 1],
    [0.5, 4, 1, 2, 2],
    [0.6, 4, 1, 2, 2],
    [0.7, 3, 1, 3, 3],
  ]);
});

test('the matched share is of the old faces answered; its margin is 0 when every image was seen', () => {
  const forecast = emptyForecast([0.5]);
  addImage(forecast, { oldBoxes: [face, elsewhere], newBoxes: [face, elsewhere] });
  addImage(forecast, { oldBoxes: [face], newBoxes: [] });

  const [row] = thresholdForecasts(forecast, 2, 2);

  expect(row).toMatchObject({ matched: 2, matchedShare: 2 / 3, margin: 0 });
});

test('the margin of a sample is the 95% interval of a ratio over clusters, with the finite-population correction', () => {
  const forecast = emptyForecast([0.5]);
  for (const matches of [true, true, true, false])
    addImage(forecast, { oldBoxes: [face], newBoxes: matches ? [face] : [elsewhere] });

  const [row] = thresholdForecasts(forecast, 4, 100);

  // Share 0.75; residuals 0.25, 0.25, 0.25, -0.75 give s² = 0.75 / 3; correction 1 - 4/100.
  expect(row?.matchedShare).toBe(0.75);
  expect(row?.margin).toBeCloseTo(1.96 * Math.sqrt((0.96 * 0.25) / 4), 12);
  expect(thresholdForecasts(emptyForecast([0.5]), 1, 100)[0]?.margin).toBeUndefined();
});

test('extrapolates the sample to the whole file', () => {
  expect(
    extrapolate({ threshold: 0.5, matched: 30, noFaceDetected: 1, iouBelowThreshold: 2, newFacesNobodyHad: 3 }, 2.5),
  ).toEqual({
    threshold: 0.5,
    matched: 75,
    noFaceDetected: 3,
    iouBelowThreshold: 5,
    newFacesNobodyHad: 8,
  });
});

describe('recommendThreshold', () => {
  const rows = (shares: [number, number][]): ThresholdForecast[] =>
    shares.map(([threshold, share]) => ({
      threshold,
      matched: Math.round(share * 1000),
      noFaceDetected: 0,
      iouBelowThreshold: 0,
      newFacesNobodyHad: 0,
      matchedShare: share,
      margin: 0,
    }));

  test('is the strictest threshold that matches within one point of the best', () => {
    expect(
      recommendThreshold(
        rows([
          [0.3, 0.8],
          [0.4, 0.8],
          [0.5, 0.6],
        ]),
      ),
    ).toBe(0.4);
    expect(
      recommendThreshold(
        rows([
          [0.3, 0.9],
          [0.5, 0.895],
          [0.7, 0.85],
        ]),
      ),
    ).toBe(0.5);
    expect(
      recommendThreshold(
        rows([
          [0.3, 0.97],
          [0.5, 0.97],
          [0.7, 0.97],
        ]),
      ),
    ).toBe(0.7);
  });

  test('is none when nothing matched at any threshold', () => {
    expect(
      recommendThreshold(
        rows([
          [0.3, 0],
          [0.5, 0],
        ]),
      ),
    ).toBeUndefined();
    expect(recommendThreshold([])).toBeUndefined();
  });
});
