/**
 * What Rekognition accepts as an image in S3, checked before a run spends quota on it: present,
 * not empty, at most 15 MB, and JPEG or PNG by its first bytes (what IndexFaces itself looks at),
 * whatever its Content-Type or file name say.
 */
import { ReasonCode } from './reasons';

/** IndexFaces' limit for an image in S3 (images sent as bytes may hold 5 MB). */
export const MAX_S3_IMAGE_BYTES = 15 * 1024 * 1024;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];

export type ImageVerdict = { ok: true } | { ok: false; reason: ReasonCode; detail: string };

export type ImageFormat = 'png' | 'jpeg';

/** The media type of each format, as a data: URI or a Content-Type names it. */
export const MIME_TYPES: Record<ImageFormat, string> = { png: 'image/png', jpeg: 'image/jpeg' };

/** The format the first bytes of an image tell (eight of them are enough). */
export function imageFormat(head: Uint8Array): ImageFormat | undefined {
  const startsWith = (signature: number[]) => signature.every((byte, i) => head[i] === byte);
  if (startsWith(PNG_SIGNATURE)) return 'png';
  if (startsWith(JPEG_SIGNATURE)) return 'jpeg';
  return undefined;
}

/** The verdict on an image's size, before its bytes are read. */
export function sizeVerdict(contentLength: number): ImageVerdict {
  if (contentLength === 0) return { ok: false, reason: ReasonCode.ImageEmpty, detail: 'the object is empty (0 bytes)' };
  if (contentLength > MAX_S3_IMAGE_BYTES) {
    return {
      ok: false,
      reason: ReasonCode.ImageTooLarge,
      detail: `${contentLength} bytes: over Rekognition's limit of 15 MB (${MAX_S3_IMAGE_BYTES} bytes) for images in S3`,
    };
  }
  return { ok: true };
}

export function formatVerdict(head: Uint8Array): ImageVerdict {
  if (imageFormat(head)) return { ok: true };
  const shown = Buffer.from(head.subarray(0, PNG_SIGNATURE.length)).toString('hex').replace(/(..)/g, '$1 ').trim();
  return {
    ok: false,
    reason: ReasonCode.InvalidImageFormat,
    detail: `neither JPEG nor PNG: it starts with ${shown || 'nothing'}`,
  };
}

/** Rekognition's smallest image: both sides at least this many pixels, or InvalidParameterException. */
export const MIN_IMAGE_SIDE = 80;

/** Bytes to read from the start of an image to find its size: a JPEG's frame header follows its metadata. */
export const DIMENSION_BYTES = 64 * 1024;

/**
 * Width and height from the first bytes of a PNG (its IHDR chunk) or a JPEG (its first start-of-frame
 * marker); undefined when the bytes do not reach them or are neither format.
 */
export function imageDimensions(head: Uint8Array): { width: number; height: number } | undefined {
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const format = imageFormat(bytes);
  if (format === 'png') {
    if (bytes.length < 24 || bytes.toString('latin1', 12, 16) !== 'IHDR') return undefined;
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  if (format !== 'jpeg') return undefined;
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) return undefined;
    const marker = bytes[offset + 1] ?? 0;
    // Fill bytes and markers without a length (RSTn, TEM) carry no segment.
    if (marker === 0xff) {
      offset += 1;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      offset += 2;
      continue;
    }
    const length = bytes.readUInt16BE(offset + 2);
    // SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC) hold the frame's size.
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (offset + 9 > bytes.length) return undefined;
      return { width: bytes.readUInt16BE(offset + 7), height: bytes.readUInt16BE(offset + 5) };
    }
    offset += 2 + length;
  }
  return undefined;
}

/** The verdict on an image's size in pixels, when its first bytes tell it. */
export function dimensionsVerdict(head: Uint8Array): ImageVerdict {
  const size = imageDimensions(head);
  if (size === undefined || (size.width >= MIN_IMAGE_SIDE && size.height >= MIN_IMAGE_SIDE)) return { ok: true };
  return {
    ok: false,
    reason: ReasonCode.ImageTooSmall,
    detail: `${size.width}x${size.height} pixels: under Rekognition's minimum of ${MIN_IMAGE_SIDE} pixels a side`,
  };
}

/**
 * A box reaching past the image's edge: Rekognition reports a face cut by the edge that way, and
 * the run accepts it (records.ts), so it is counted for the operator, not refused.
 */
export function reachesPastEdge(box: { Left: number; Top: number; Width: number; Height: number }): boolean {
  return box.Left < 0 || box.Top < 0 || box.Left + box.Width > 1 || box.Top + box.Height > 1;
}
