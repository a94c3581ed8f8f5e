/**
 * Makes synthetic images: small real PNGs whose faces are declared in a tEXt chunk, for load tests
 * and demos that need thousands of images with known faces and no neural work.
 */
import { crc32, deflateSync } from 'node:zlib';
import { DECLARED_FACES_KEY, type DeclaredFace, PNG_SIGNATURE } from './images';

/** One PNG chunk: length, type, data and the CRC of type and data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** An 80x80 grey PNG declaring `faces`: the smallest image Rekognition takes. */
export function syntheticPng(faces: DeclaredFace[], side = 80): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.writeUInt8(8, 8); // bit depth
  header.writeUInt8(0, 9); // greyscale
  // Each row: filter byte 0, then one grey byte per pixel.
  const pixels = Buffer.concat(Array.from({ length: side }, () => Buffer.from([0, ...Array<number>(side).fill(128)])));
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', header),
    pngChunk('tEXt', Buffer.from(`${DECLARED_FACES_KEY}\0${JSON.stringify(faces)}`, 'latin1')),
    pngChunk('IDAT', deflateSync(pixels)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
