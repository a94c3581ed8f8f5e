import {
  formatVerdict,
  imageFormat,
  MAX_S3_IMAGE_BYTES,
  MIME_TYPES,
  reachesPastEdge,
  sizeVerdict,
} from '../../src/domain/image-checks';
import { ReasonCode } from '../../src/domain/reasons';

test('JPEG and PNG are told by their first bytes', () => {
  expect(imageFormat(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe('png');
  expect(imageFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46]))).toBe('jpeg');
  expect(imageFormat(Buffer.from('GIF89a..'))).toBeUndefined();
  expect(imageFormat(Buffer.from([0x89, 0x50]))).toBeUndefined();
});

test('another format is INVALID_IMAGE_FORMAT, showing the bytes it starts with', () => {
  expect(formatVerdict(Buffer.from('GIF89a'))).toEqual({
    ok: false,
    reason: ReasonCode.InvalidImageFormat,
    detail: 'neither JPEG nor PNG: it starts with 47 49 46 38 39 61',
  });
  expect(formatVerdict(Buffer.from([0xff, 0xd8, 0xff, 0xdb]))).toEqual({ ok: true });
});

test('an empty image and one over 15 MB are refused; 15 MB exactly is fine', () => {
  expect(sizeVerdict(0)).toMatchObject({ ok: false, reason: ReasonCode.ImageEmpty });
  expect(sizeVerdict(MAX_S3_IMAGE_BYTES)).toEqual({ ok: true });
  expect(sizeVerdict(MAX_S3_IMAGE_BYTES + 1)).toEqual({
    ok: false,
    reason: ReasonCode.ImageTooLarge,
    detail: "15728641 bytes: over Rekognition's limit of 15 MB (15728640 bytes) for images in S3",
  });
});

test('a box reaching past any edge is told from one inside', () => {
  expect(reachesPastEdge({ Left: 0.1, Top: 0.1, Width: 0.9, Height: 0.9 })).toBe(false);
  expect(reachesPastEdge({ Left: -0.01, Top: 0.1, Width: 0.2, Height: 0.2 })).toBe(true);
  expect(reachesPastEdge({ Left: 0.1, Top: 0.9, Width: 0.2, Height: 0.2 })).toBe(true);
});

test('each format names its media type', () => {
  const format = imageFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0]));

  expect(format && MIME_TYPES[format]).toBe('image/jpeg');
  expect(MIME_TYPES.png).toBe('image/png');
});
