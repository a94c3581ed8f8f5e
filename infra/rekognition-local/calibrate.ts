/**
 * Measures how the two neural model versions box the same faces on the sample photos that ship
 * in @vladmandic/face-api, raw and with the calibrated geometry, and fits the geometry that would
 * make the older version's boxes coincide with the newer one's. `npm run rekognition:calibrate`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DetectedFace } from './detection';
import type { LoadedImage } from './images';
import { CALIBRATED_GEOMETRY, createNeuralDetector, IDENTITY_GEOMETRY } from './neural';
import { iou } from '../../src/domain/matching';
import type { BoundingBox } from './store';

export const SAMPLE_PHOTOS = [1, 2, 3, 4, 5, 6].map((n) =>
  path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo', `sample${n}.jpg`),
);

/** Each older-version face with the newer-version face it overlaps most, when they overlap at all. */
function pairs(older: DetectedFace[], newer: DetectedFace[]): [BoundingBox, BoundingBox][] {
  return older.flatMap((face) => {
    const best = newer.reduce<DetectedFace | undefined>(
      (chosen, candidate) =>
        iou(face.BoundingBox, candidate.BoundingBox) > (chosen ? iou(face.BoundingBox, chosen.BoundingBox) : 0)
          ? candidate
          : chosen,
      undefined,
    );
    return best && iou(face.BoundingBox, best.BoundingBox) > 0.2
      ? [[face.BoundingBox, best.BoundingBox] as [BoundingBox, BoundingBox]]
      : [];
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => (sorted[Math.floor(q * (sorted.length - 1))] ?? Number.NaN).toFixed(2);
  return `n=${values.length} min=${at(0)} p10=${at(0.1)} median=${at(0.5)} p90=${at(0.9)} max=${at(1)}`;
};

async function main(): Promise<void> {
  const raw = createNeuralDetector({ '6.0': IDENTITY_GEOMETRY, '7.0': IDENTITY_GEOMETRY });
  const calibrated = createNeuralDetector(CALIBRATED_GEOMETRY);
  const rawPairs: [BoundingBox, BoundingBox][] = [];
  const calibratedPairs: [BoundingBox, BoundingBox][] = [];
  for (const photo of SAMPLE_PHOTOS) {
    const image: LoadedImage = { bytes: readFileSync(photo), format: 'jpeg', declaredFaces: undefined };
    const [older, newer, olderCalibrated] = [
      await raw.detect(image, '6.0'),
      await raw.detect(image, '7.0'),
      await calibrated.detect(image, '6.0'),
    ];
    console.log(`${path.basename(photo)}: 6.0 finds ${older.length} faces, 7.0 finds ${newer.length}`);
    rawPairs.push(...pairs(older, newer));
    calibratedPairs.push(...pairs(olderCalibrated, newer));
  }
  const centre = (box: BoundingBox) => [box.Left + box.Width / 2, box.Top + box.Height / 2] as const;
  const fitted = {
    widthScale: median(rawPairs.map(([o, n]) => n.Width / o.Width)),
    heightScale: median(rawPairs.map(([o, n]) => n.Height / o.Height)),
    centreShiftX: median(rawPairs.map(([o, n]) => (centre(n)[0] - centre(o)[0]) / o.Width)),
    centreShiftY: median(rawPairs.map(([o, n]) => (centre(n)[1] - centre(o)[1]) / o.Height)),
  };
  console.log(`IoU of 6.0 and 7.0 boxes, raw:        ${summary(rawPairs.map(([o, n]) => iou(o, n)))}`);
  console.log(`IoU of 6.0 and 7.0 boxes, calibrated: ${summary(calibratedPairs.map(([o, n]) => iou(o, n)))}`);
  console.log(`geometry that would make 6.0 match 7.0: ${JSON.stringify(fitted)}`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
