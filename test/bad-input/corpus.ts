/**
 * The bad-input corpus (test/fixtures/bad-input): its table of cases and what each case's input is
 * once filled in for a test's bucket and prefix, and the images its records name, put in S3.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type DeclaredFace, DECLARED_FACES_KEY, PNG_SIGNATURE } from '../../infra/rekognition-local/images';
import { pngChunk, syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { SAMPLE_PHOTOS } from '../../infra/rekognition-local/calibrate';
import { imageRef } from '../../src/domain/identifiers';
import { MAX_S3_IMAGE_BYTES } from '../../src/domain/image-checks';
import type { ReasonCode } from '../../src/domain/reasons';

const FIXTURES = path.resolve(__dirname, '../fixtures/bad-input');

export interface ExpectedReview {
  index: number;
  reason: ReasonCode;
  detail?: string;
  detailStart?: string;
}

export type Outcome =
  | { cli: string }
  | { run: { migrated: string[]; dlq: ExpectedReview[] } }
  | { migrated: true }
  | { dlq: ReasonCode; detail?: string; detailStart?: string; validate?: ReasonCode | 'valid' };

export type ImageKind = 'none' | 'empty' | 'text' | 'jpeg-cut-short' | 'over-15-mb' | 'png-with-alpha';

export interface Case {
  name: string;
  input: string;
  what: string;
  image?: ImageKind;
  outcome: Outcome;
}

/** Generated inputs made by their own test rather than by this module. */
export const MADE_BY_THEIR_TEST = ['generated:huge-record-lines', 'generated:huge-record-array'];

export const CASES = (JSON.parse(readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as { cases: Case[] }).cases;

/** The cases of one kind of outcome, for `test.each`. */
export function casesWith<K extends 'cli' | 'run' | 'migrated' | 'dlq'>(
  kind: K,
): (Case & { outcome: Extract<Outcome, Record<K, unknown>> })[] {
  return CASES.filter((c): c is Case & { outcome: Extract<Outcome, Record<K, unknown>> } => kind in c.outcome);
}

/** A prefix of the fixtures' fixed length: the 1024-byte keys are 1024 bytes with it. */
export const testPrefix = () => `bad-input/${randomBytes(4).toString('hex')}`;

export interface Filling {
  bucket: string;
  prefix: string;
}

/** The bytes with {{bucket}} and {{prefix}} filled in; bytes that are not UTF-8 stay as they are. */
export function fill(bytes: Buffer, { bucket, prefix }: Filling): Buffer {
  return Buffer.from(
    bytes.toString('latin1').replaceAll('{{bucket}}', bucket).replaceAll('{{prefix}}', prefix),
    'latin1',
  );
}

/** A text with {{name}} placeholders filled in from `values`. */
export function expand(text: string, values: Record<string, string | number>): string {
  return (
    text
      .replace(/\{\{(\w+)\}\}/g, (whole, name: string) => String(values[name] ?? whole))
      // `ref(s3://bucket/key)`: the image as failures name it (domain/identifiers.ts).
      .replace(/ref\(s3:\/\/([^/]+)\/([^)]+)\)/g, (_, bucket: string, key: string) => imageRef(bucket, key))
  );
}

/** A record of about 200 KB: an ordinary one with an unknown member padding it. */
function recordOf200Kb({ bucket, prefix }: Filling): Buffer {
  const record = {
    Bucket: bucket,
    Key: `${prefix}/padded.png`,
    Notes: 'x'.repeat(200 * 1024),
    Faces: [
      {
        FaceId: '00000000-0000-4000-8000-0000000000ff',
        BoundingBoxes: { Width: 0.3, Height: 0.4, Left: 0.2, Top: 0.2 },
      },
    ],
  };
  return Buffer.from(`${JSON.stringify(record)}\n`);
}

/** An ordinary record of the corpus's own photo `name`, as its files spell them. */
function recordNamed({ bucket, prefix }: Filling, name: string, face: number): string {
  const id = String(face).padStart(12, '0');
  return JSON.stringify({
    Bucket: bucket,
    Key: `${prefix}/${name}`,
    ExternalImageId: name,
    Faces: [
      {
        FaceId: `00000000-0000-4000-8000-${id}`,
        ImageId: `10000000-0000-4000-8000-${id}`,
        BoundingBoxes: { Width: 0.3, Height: 0.4, Left: 0.2, Top: 0.2 },
      },
    ],
  });
}

/**
 * A record whose extra column nests 5,000 arrays, on one line:
 * about 10 KB, written as text since no serialiser would write it.
 */
function recordNested5000Deep({ bucket, prefix }: Filling): Buffer {
  const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
  return Buffer.from(
    `{"Bucket":"${bucket}","Key":"${prefix}/deep.png","Deep":${deep},"Faces":[{"FaceId":"00000000-0000-4000-8000-0000000000fe","BoundingBoxes":{"Width":0.3,"Height":0.4,"Left":0.2,"Top":0.2}}]}\n`,
  );
}

/** A JSON array of two ordinary records, then 40 MB of '[' that never close. */
function fortyMbOfBrackets(filling: Filling): Buffer {
  const records = `[\n${recordNamed(filling, 'brackets-1.png', 0x200)},\n${recordNamed(filling, 'brackets-2.png', 0x201)},\n`;
  return Buffer.concat([Buffer.from(records), Buffer.alloc(40 * 1024 * 1024, '[')]);
}

/** An .xlsx is a ZIP archive: what matters is how it starts. */
const xlsx = () => Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(200)]);

/** The input of a case, filled in; generated inputs are made here. */
export function inputOf(testCase: Case, filling: Filling): Buffer {
  switch (testCase.input) {
    case 'generated:record-of-200-KB':
      return recordOf200Kb(filling);
    case 'generated:gzip':
      return gzipSync(fill(readFileSync(path.join(FIXTURES, 'files/json-lines-with-bom-and-crlf.jsonl')), filling));
    case 'generated:xlsx':
      return xlsx();
    case 'generated:record-nested-5000-deep':
      return recordNested5000Deep(filling);
    case 'generated:forty-mb-of-brackets':
      return fortyMbOfBrackets(filling);
    default:
      if (testCase.input.startsWith('generated:'))
        throw new Error(`${testCase.name}: no generator here for ${testCase.input}`);
      return fill(readFileSync(path.join(FIXTURES, testCase.input)), filling);
  }
}

/** An 80x80 RGBA PNG (colour type 6), half transparent, declaring `faces` as synthetic images do. */
function pngWithAlpha(faces: DeclaredFace[]): Buffer {
  const side = 80;
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.writeUInt8(8, 8);
  header.writeUInt8(6, 9);
  const row = (y: number) =>
    Buffer.from([0, ...Array.from({ length: side }, (_, x) => [200, 120, 80, (x + y) % 2 === 0 ? 255 : 128]).flat()]);
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', header),
    pngChunk('tEXt', Buffer.from(`${DECLARED_FACES_KEY}\0${JSON.stringify(faces)}`, 'latin1')),
    pngChunk('IDAT', deflateSync(Buffer.concat(Array.from({ length: side }, (_, y) => row(y))))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

interface RecordLike {
  Bucket?: unknown;
  Key?: unknown;
  Faces?: { BoundingBoxes?: { Left: number; Top: number; Width: number; Height: number } }[];
}

/** The faces a photo must show for the record's old faces to match: one at each old box, the part inside the image. */
function facesOf(record: RecordLike): DeclaredFace[] {
  const clamp = (value: number) => Math.min(1, Math.max(0, value));
  return (Array.isArray(record.Faces) ? record.Faces : []).flatMap((face, i) => {
    const box = face?.BoundingBoxes;
    if (typeof box?.Left !== 'number' || typeof box.Width !== 'number' || box.Width <= 0 || box.Height <= 0) return [];
    const left = clamp(box.Left);
    const top = clamp(box.Top);
    return [
      {
        person: `person-${i}`,
        box: [left, top, clamp(box.Left + box.Width) - left, clamp(box.Top + box.Height) - top],
      },
    ];
  });
}

function imageOf(kind: ImageKind | undefined, record: RecordLike): Buffer | undefined {
  switch (kind) {
    case 'none':
      return undefined;
    case 'empty':
      return Buffer.alloc(0);
    case 'text':
      return Buffer.from('Notes from the photo shoot, not a photo.\n');
    case 'jpeg-cut-short':
      return readFileSync(SAMPLE_PHOTOS[0] ?? '').subarray(0, 20_000);
    case 'over-15-mb':
      return Buffer.concat([syntheticPng(facesOf(record)), Buffer.alloc(MAX_S3_IMAGE_BYTES)]);
    case 'png-with-alpha':
      return pngWithAlpha(facesOf(record));
    default:
      return syntheticPng(facesOf(record));
  }
}

/** Every record object in the text that parses on its own, wherever the file around it is broken. */
function recordsIn(text: string): RecordLike[] {
  const found: RecordLike[] = [];
  for (const match of text.matchAll(/\{\s*"Bucket"/g)) {
    for (let end = text.indexOf('}', match.index); end >= 0; end = text.indexOf('}', end + 1)) {
      try {
        found.push(JSON.parse(text.slice(match.index, end + 1)) as RecordLike);
        break;
      } catch {
        // Not the record's end yet, or a record that is broken.
      }
    }
  }
  return found;
}

/**
 * Puts in S3 the image each record of `text` names: the kind the case asks for, by default a photo
 * of the record's faces. Keys S3 cannot hold, and other buckets, are left alone.
 */
export async function putImages(s3: S3Client, bucket: string, text: Buffer, kind?: ImageKind): Promise<void> {
  for (const record of recordsIn(text.toString('utf8'))) {
    if (record.Bucket !== bucket || typeof record.Key !== 'string' || Buffer.byteLength(record.Key) > 1024) continue;
    const Body = imageOf(kind, record);
    if (Body)
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: record.Key,
          Body,
          ContentType: kind === 'text' ? 'image/jpeg' : undefined,
        }),
      );
  }
}
