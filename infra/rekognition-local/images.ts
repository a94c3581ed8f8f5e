/**
 * Turns a request's Image (Bytes, or an S3Object read from the S3 endpoint of the same environment)
 * into bytes and the faces it declares, with the errors the real service gives for each problem.
 */
import { GetObjectCommand, NoSuchBucket, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import { httpStatusOf } from '../../src/aws/clients';
import { imageDimensions, MIN_IMAGE_SIDE } from '../../src/domain/image-checks';
import { invalidParameter, RekognitionError } from './errors';
import type { BoundingBox } from './store';

const MAX_S3_OBJECT_BYTES = 15 * 1024 * 1024;
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** S3 user metadata key and PNG tEXt keyword under which a synthetic image declares its faces. */
export const DECLARED_FACES_KEY = 'rekognition-faces';

export type ImageFormat = 'jpeg' | 'png';

/** A face written into the image by whoever made it: who it is and where. */
export interface DeclaredFace {
  person: string;
  /** [Left, Top, Width, Height], ratios of the image's width and height. */
  box: [number, number, number, number];
  /** 0-100; below a QualityFilter's bar the face is not indexed. Default 90. */
  quality?: number;
}

export interface LoadedImage {
  bytes: Buffer;
  format: ImageFormat;
  declaredFaces: DeclaredFace[] | undefined;
}

export interface ImageInput {
  Bytes?: Buffer;
  S3Object?: { Bucket?: string; Name?: string; Version?: string };
}

const invalidFormat = () => new RekognitionError('InvalidImageFormatException', 'Request has invalid image format');
const invalidS3Object = () =>
  new RekognitionError(
    'InvalidS3ObjectException',
    'Unable to get object metadata from S3. Check object key, region and/or access permissions.',
  );

/** The format of an image the service accepts: JPEG or PNG, at least MIN_IMAGE_SIDE pixels a side. */
function formatOf(bytes: Buffer): ImageFormat {
  let format: ImageFormat;
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) format = 'jpeg';
  else if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) format = 'png';
  else throw invalidFormat();
  const size = imageDimensions(bytes);
  // The real service names no reason for a small image; neither does this one.
  if (size && (size.width < MIN_IMAGE_SIDE || size.height < MIN_IMAGE_SIDE))
    throw invalidParameter('Request has invalid parameters');
  return format;
}

/** The text of a PNG tEXt chunk with this keyword, if there is one before the image data. */
function pngText(bytes: Buffer, keyword: string): string | undefined {
  let offset = PNG_SIGNATURE.length;
  while (offset + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === 'tEXt') {
      const separator = data.indexOf(0);
      if (separator > 0 && data.toString('latin1', 0, separator) === keyword) {
        return data.toString('latin1', separator + 1);
      }
    }
    if (type === 'IDAT' || type === 'IEND') return undefined;
    offset += 12 + length;
  }
  return undefined;
}

function isUnitBox(box: unknown): box is DeclaredFace['box'] {
  return Array.isArray(box) && box.length === 4 && box.every((n) => typeof n === 'number' && n >= 0 && n <= 1);
}

function parseDeclaredFaces(text: string): DeclaredFace[] {
  let faces: unknown;
  try {
    faces = JSON.parse(text);
  } catch {
    throw invalidFormat();
  }
  const valid =
    Array.isArray(faces) &&
    faces.every(
      (face: Partial<DeclaredFace>) =>
        typeof face.person === 'string' &&
        isUnitBox(face.box) &&
        (face.quality === undefined || typeof face.quality === 'number'),
    );
  if (!valid) throw invalidFormat();
  return faces as DeclaredFace[];
}

export function toBoundingBox([Left, Top, Width, Height]: DeclaredFace['box']): BoundingBox {
  return { Width, Height, Left, Top };
}

export async function loadImage(s3: S3Client, image: ImageInput): Promise<LoadedImage> {
  if ((image.Bytes === undefined) === (image.S3Object === undefined)) {
    throw invalidParameter('Requested image should either contain bytes or s3 object.');
  }
  if (image.Bytes !== undefined) {
    const format = formatOf(image.Bytes);
    const declared = format === 'png' ? pngText(image.Bytes, DECLARED_FACES_KEY) : undefined;
    return {
      bytes: image.Bytes,
      format,
      declaredFaces: declared === undefined ? undefined : parseDeclaredFaces(declared),
    };
  }
  const { Bucket, Name, Version } = image.S3Object ?? {};
  if (!Bucket || !Name) throw invalidS3Object();
  let object;
  try {
    object = await s3.send(new GetObjectCommand({ Bucket, Key: Name, VersionId: Version }));
  } catch (error) {
    if (error instanceof NoSuchKey || error instanceof NoSuchBucket) throw invalidS3Object();
    const status = httpStatusOf(error);
    if (status === 403 || status === 404) throw invalidS3Object();
    throw error;
  }
  if ((object.ContentLength ?? 0) > MAX_S3_OBJECT_BYTES) {
    object.Body?.transformToWebStream()
      .cancel()
      .catch(() => undefined);
    throw new RekognitionError('ImageTooLargeException', 'Image size is too large.');
  }
  const bytes = Buffer.from((await object.Body?.transformToByteArray()) ?? []);
  const format = formatOf(bytes);
  const declared =
    object.Metadata?.[DECLARED_FACES_KEY] ?? (format === 'png' ? pngText(bytes, DECLARED_FACES_KEY) : undefined);
  return { bytes, format, declaredFaces: declared === undefined ? undefined : parseDeclaredFaces(declared) };
}
