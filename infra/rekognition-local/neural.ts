/**
 * Real face detection with @vladmandic/face-api on TensorFlow.js's WASM backend: the npm packages
 * carry the model weights and the WASM binaries, so nothing is downloaded at run time. Two
 * detectors stand for two face model versions: the tiny face detector for the older "6.0", SSD
 * MobileNet v1 for the newer "7.0". Descriptors from the recognition net back the search calls.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as faceapi from '@vladmandic/face-api/dist/face-api.node-wasm.js';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { DetectedFace, Detector } from './detection';
import { RekognitionError } from './errors';
import type { LoadedImage } from './images';
import type { BoundingBox } from './store';

/**
 * How the older version's box relates to the newer one's for the same face, as measured on the
 * sample photos by `npm run rekognition:calibrate`: the tiny detector's raw boxes are much wider
 * and sit lower. Scaling about the centre and shifting by these factors brings the overlap of the
 * two versions' boxes to the range seen between model versions on AWS.
 */
export interface BoxGeometry {
  widthScale: number;
  heightScale: number;
  /** Shift of the centre, as a share of the box's own width and height. */
  centreShiftX: number;
  centreShiftY: number;
}

export const IDENTITY_GEOMETRY: BoxGeometry = { widthScale: 1, heightScale: 1, centreShiftX: 0, centreShiftY: 0 };

export const CALIBRATED_GEOMETRY: Record<string, BoxGeometry> = {
  '6.0': { widthScale: 0.77, heightScale: 1.045, centreShiftX: 0.027, centreShiftY: -0.13 },
  '7.0': IDENTITY_GEOMETRY,
};

const MIN_SCORE = 0.4;
const MOST_FACES = 100;

const clamp = (value: number) => Math.min(1, Math.max(0, value));

export function reshape(box: BoundingBox, geometry: BoxGeometry): BoundingBox {
  const centreX = box.Left + box.Width / 2 + geometry.centreShiftX * box.Width;
  const centreY = box.Top + box.Height / 2 + geometry.centreShiftY * box.Height;
  const width = box.Width * geometry.widthScale;
  const height = box.Height * geometry.heightScale;
  const left = clamp(centreX - width / 2);
  const top = clamp(centreY - height / 2);
  return { Left: left, Top: top, Width: clamp(centreX + width / 2) - left, Height: clamp(centreY + height / 2) - top };
}

function decode(image: LoadedImage): { data: Uint8Array; width: number; height: number } {
  try {
    if (image.format === 'jpeg') {
      const decoded = jpeg.decode(image.bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
      return { data: decoded.data, width: decoded.width, height: decoded.height };
    }
    const png = PNG.sync.read(image.bytes);
    const rgb = new Uint8Array(png.width * png.height * 3);
    for (let source = 0, target = 0; source < png.data.length; source += 4, target += 3) {
      rgb[target] = png.data[source]!;
      rgb[target + 1] = png.data[source + 1]!;
      rgb[target + 2] = png.data[source + 2]!;
    }
    return { data: rgb, width: png.width, height: png.height };
  } catch {
    throw new RekognitionError('InvalidImageFormatException', 'Request has invalid image format');
  }
}

async function loadModels(): Promise<void> {
  setWasmPaths(`${path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  await tf.setBackend('wasm');
  await tf.ready();
  const weights = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  await Promise.all([
    faceapi.nets.tinyFaceDetector.loadFromDisk(weights),
    faceapi.nets.ssdMobilenetv1.loadFromDisk(weights),
    faceapi.nets.faceLandmark68Net.loadFromDisk(weights),
    faceapi.nets.faceRecognitionNet.loadFromDisk(weights),
  ]);
}

function detectorOptions(modelVersion: string) {
  return modelVersion === '6.0'
    ? new faceapi.TinyFaceDetectorOptions({ inputSize: 608, scoreThreshold: MIN_SCORE })
    : new faceapi.SsdMobilenetv1Options({ minConfidence: MIN_SCORE, maxResults: MOST_FACES });
}

/**
 * The neural detector. Models load on first use, so a stack that only serves synthetic images
 * starts in a second; detections run one at a time, as the WASM backend has one thread.
 */
export function createNeuralDetector(geometry: Record<string, BoxGeometry> = CALIBRATED_GEOMETRY): Detector {
  let ready: Promise<void> | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  async function detectNow(image: LoadedImage, modelVersion: string): Promise<DetectedFace[]> {
    ready ??= loadModels();
    await ready;
    const { data, width, height } = decode(image);
    const tensor = tf.tensor3d(data, [height, width, 3], 'int32');
    try {
      const results = await faceapi
        .detectAllFaces(tensor, detectorOptions(modelVersion))
        .withFaceLandmarks()
        .withFaceDescriptors();
      return results.map(({ detection, descriptor }) => {
        const box = detection.relativeBox;
        const raw = { Left: box.x, Top: box.y, Width: box.width, Height: box.height };
        return {
          BoundingBox: reshape(raw, geometry[modelVersion] ?? IDENTITY_GEOMETRY),
          Confidence: detection.score * 100,
          quality: detection.score * 100,
          descriptor: Array.from(descriptor),
        };
      });
    } finally {
      tensor.dispose();
    }
  }

  return {
    detect(image, modelVersion) {
      const result = queue.then(() => detectNow(image, modelVersion));
      queue = result.catch(() => undefined);
      return result;
    },
  };
}
