/**
 * Face detection per face model version. An image that declares its faces (synthetic mode, for
 * load tests) is answered from the declaration, each version moving every edge of the declared box
 * by its own small deterministic amount, so two versions box the same face alike but not
 * identically. Any other image goes to the neural detector.
 */
import { createHash } from 'node:crypto';
import type { DeclaredFace, LoadedImage } from './images';
import { toBoundingBox } from './images';
import type { BoundingBox } from './store';

export interface DetectedFace {
  BoundingBox: BoundingBox;
  Confidence: number;
  /** 0-100, compared with the QualityFilter's bar. */
  quality: number;
  /** Identifies the person: close for the same person, far for others. */
  descriptor: number[];
}

export interface Detector {
  detect(image: LoadedImage, modelVersion: string): Promise<DetectedFace[]>;
}

export const DESCRIPTOR_LENGTH = 64;
/** How far, as a share of the box's size, a version may move each edge of a declared box. */
const EDGE_JITTER = 0.06;
const DEFAULT_DECLARED_QUALITY = 90;

/** Deterministic numbers in [-1, 1) from a seed: the same seed always gives the same sequence. */
function seededSequence(seed: string, count: number): number[] {
  const values: number[] = [];
  for (let block = 0; values.length < count; block += 1) {
    const digest = createHash('sha256').update(`${seed}#${block}`).digest();
    for (let i = 0; i + 4 <= digest.length && values.length < count; i += 4) {
      values.push(digest.readUInt32BE(i) / 2 ** 31 - 1);
    }
  }
  return values;
}

function normalise(vector: number[]): number[] {
  const length = Math.hypot(...vector);
  return vector.map((value) => value / length);
}

const clamp = (value: number) => Math.min(1, Math.max(0, value));

function jitteredBox(face: DeclaredFace, modelVersion: string): BoundingBox {
  const { Left, Top, Width, Height } = toBoundingBox(face.box);
  const [left, top, right, bottom] = seededSequence(`${modelVersion}|${face.person}|${face.box.join(',')}`, 4).map(
    (unit) => unit * EDGE_JITTER,
  ) as [number, number, number, number];
  const x1 = clamp(Left + left * Width);
  const y1 = clamp(Top + top * Height);
  const x2 = clamp(Left + Width + right * Width);
  const y2 = clamp(Top + Height + bottom * Height);
  return { Width: x2 - x1, Height: y2 - y1, Left: x1, Top: y1 };
}

/** A person's descriptor, with a little noise per image so two photos are close, not equal. */
function declaredDescriptor(face: DeclaredFace): number[] {
  const person = seededSequence(`person|${face.person}`, DESCRIPTOR_LENGTH);
  const noise = seededSequence(`photo|${face.person}|${face.box.join(',')}`, DESCRIPTOR_LENGTH);
  return normalise(person.map((value, i) => value + 0.08 * (noise[i] ?? 0)));
}

export function detectDeclared(faces: DeclaredFace[], modelVersion: string): DetectedFace[] {
  return faces.map((face) => ({
    BoundingBox: jitteredBox(face, modelVersion),
    Confidence: 99.9,
    quality: face.quality ?? DEFAULT_DECLARED_QUALITY,
    descriptor: declaredDescriptor(face),
  }));
}

/** Descriptor distance at which similarity is 50: face-api's own same-person cut-off is about 0.6. */
const HALF_SIMILAR_DISTANCE = 0.55;
const SIMILARITY_STEEPNESS = 15;

/** Similarity in 0-100 of two descriptors, as SearchFaces reports it: near 100 for one person. */
export function similarity(a: number[], b: number[]): number {
  let squared = 0;
  for (let i = 0; i < a.length; i += 1) squared += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
  return 100 / (1 + Math.exp(SIMILARITY_STEEPNESS * (Math.sqrt(squared) - HALF_SIMILAR_DISTANCE)));
}

export function createDetection(neural: Detector): Detector {
  return {
    async detect(image, modelVersion) {
      if (image.declaredFaces !== undefined) return detectDeclared(image.declaredFaces, modelVersion);
      return neural.detect(image, modelVersion);
    },
  };
}
