/**
 * What a run would make of a records file at each IoU threshold, forecast from a sample of its
 * images: the old boxes of each record against the boxes the new model detects, paired one to one
 * exactly as a run pairs them (matchFaces). The forecast keeps running sums, not images, so it
 * takes a whole file in constant memory.
 */
import { type BoundingBox, matchFaces } from './matching';

/** One image the new model answered for: its record's old boxes and the boxes detected now. */
export interface DetectedImage {
  oldBoxes: BoundingBox[];
  newBoxes: BoundingBox[];
}

/** What a run would do with the old and new faces of the answered images at one threshold. */
export interface ThresholdCounts {
  threshold: number;
  matched: number;
  /** Old faces of images in which the new model found no face at all. */
  noFaceDetected: number;
  /** Old faces no new face overlapped enough (or that another old face matched better). */
  iouBelowThreshold: number;
  /** New faces no old face was paired with: deleted from the target by default. */
  newFacesNobodyHad: number;
}

export interface ThresholdForecast extends ThresholdCounts {
  /** matched / old faces of the answered images. */
  matchedShare: number;
  /**
   * Half the width of the 95% confidence interval of matchedShare for the whole file; 0 when every
   * image was seen, undefined when too few were to say.
   */
  margin: number | undefined;
}

interface Sums extends ThresholdCounts {
  matchedSquared: number;
  matchedTimesFaces: number;
}

export interface Forecast {
  images: number;
  oldFaces: number;
  newFaces: number;
  oldFacesSquared: number;
  byThreshold: Sums[];
}

/** 95% of a normal distribution lies within this many standard deviations of its mean. */
const Z_95 = 1.96;

export function emptyForecast(thresholds: number[]): Forecast {
  return {
    images: 0,
    oldFaces: 0,
    newFaces: 0,
    oldFacesSquared: 0,
    byThreshold: thresholds.map((threshold) => ({
      threshold,
      matched: 0,
      noFaceDetected: 0,
      iouBelowThreshold: 0,
      newFacesNobodyHad: 0,
      matchedSquared: 0,
      matchedTimesFaces: 0,
    })),
  };
}

/** Adds one answered image to the forecast. */
export function addImage(forecast: Forecast, { oldBoxes, newBoxes }: DetectedImage): void {
  const faces = oldBoxes.length;
  forecast.images += 1;
  forecast.oldFaces += faces;
  forecast.newFaces += newBoxes.length;
  forecast.oldFacesSquared += faces * faces;
  for (const sums of forecast.byThreshold) {
    const matched = matchFaces(oldBoxes, newBoxes, sums.threshold).length;
    sums.matched += matched;
    if (newBoxes.length === 0) sums.noFaceDetected += faces;
    else sums.iouBelowThreshold += faces - matched;
    sums.newFacesNobodyHad += newBoxes.length - matched;
    sums.matchedSquared += matched * matched;
    sums.matchedTimesFaces += matched * faces;
  }
}

/**
 * The counts and matched share per threshold. The share is a ratio over a sample of images (each
 * image a cluster of faces), so its margin comes from the ratio estimator's variance, with the
 * finite-population correction: `sampledImages` of the file's `fileImages` were drawn.
 */
export function thresholdForecasts(forecast: Forecast, sampledImages: number, fileImages: number): ThresholdForecast[] {
  const n = forecast.images;
  const populationCorrection = fileImages > 0 ? Math.max(0, 1 - sampledImages / fileImages) : 0;
  return forecast.byThreshold.map(({ matchedSquared, matchedTimesFaces, ...counts }) => {
    const share = forecast.oldFaces > 0 ? counts.matched / forecast.oldFaces : 0;
    let margin: number | undefined;
    if (populationCorrection === 0) margin = 0;
    else if (n >= 2 && forecast.oldFaces > 0) {
      const residualSquares = matchedSquared - 2 * share * matchedTimesFaces + share * share * forecast.oldFacesSquared;
      const variance = (populationCorrection * Math.max(0, residualSquares)) / (n - 1) / n;
      margin = (Z_95 * Math.sqrt(variance)) / (forecast.oldFaces / n);
    }
    return { ...counts, matchedShare: share, margin };
  });
}

/** The counts scaled from the sample to the whole file: each sampled image stands for `scale` images. */
export function extrapolate(counts: ThresholdCounts, scale: number): ThresholdCounts {
  return {
    threshold: counts.threshold,
    matched: Math.round(counts.matched * scale),
    noFaceDetected: Math.round(counts.noFaceDetected * scale),
    iouBelowThreshold: Math.round(counts.iouBelowThreshold * scale),
    newFacesNobodyHad: Math.round(counts.newFacesNobodyHad * scale),
  };
}

/**
 * The strictest threshold that costs (almost) no matches: the highest one whose matched share is
 * within `tolerance` of the best share any threshold reached. A stricter threshold pairs fewer
 * faces wrongly in crowded images; past this one it starts losing faces to the review DLQ.
 */
export function recommendThreshold(forecasts: ThresholdForecast[], tolerance = 0.01): number | undefined {
  if (forecasts.length === 0 || forecasts.every((forecast) => forecast.matched === 0)) return undefined;
  const best = Math.max(...forecasts.map((forecast) => forecast.matchedShare));
  const keeping = forecasts.filter((forecast) => forecast.matchedShare >= best - tolerance - 1e-12);
  return Math.max(...keeping.map((forecast) => forecast.threshold));
}
