/**
 * What a message of the results queue must be for the drain to write it. Anyone allowed to send to
 * the queue could otherwise remap an old face to another new face, have a "duplicate" delete a face,
 * or link a face to another user. So each row is signed with a key of its run, kept in the run's
 * bucket, which a sender with SQS rights alone cannot read; and its fields are checked before any
 * is used.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { ResultRow } from './outcomes';

/** The message attribute that carries a row's signature. */
export const ROW_SIGNATURE_ATTRIBUTE = 'signature';

/** Bytes of a run's signing key. */
export const ROW_KEY_BYTES = 32;

/** Identifiers the rows carry: FaceIds, ImageIds, UserIds, run ids. */
const identifier = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[a-zA-Z0-9_.\-:/]+$/);
/** Rekognition's pattern; it also keeps a collection from naming a path in the ledger. */
const collectionId = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[a-zA-Z0-9_.-]+$/);
const box = z.object({
  Width: z.number().finite(),
  Height: z.number().finite(),
  Left: z.number().finite(),
  Top: z.number().finite(),
});

const resultRow = z.strictObject({
  OldFaceId: identifier,
  FaceId: identifier,
  OldImageId: identifier.optional(),
  ImageId: identifier,
  ExternalImageId: identifier.optional(),
  UserId: identifier.optional(),
  Bucket: z.string().min(3).max(255),
  Key: z.string().min(1).max(1024),
  BoundingBox: box,
  OldBoundingBox: box,
  IoU: z.number().min(0).max(1),
  SourceCollectionId: collectionId.optional(),
  CollectionId: collectionId,
  FaceModelVersion: z.string().min(1).max(32),
  RunId: identifier,
  MigratedAt: z.iso.datetime(),
  RecordIndex: z.number().int().nonnegative().optional(),
  ExpiresAt: z.number().int().positive().optional(),
});

/** Why a message was not written; the message itself stays for the results queue's DLQ. */
export type RowRefusal = 'not a result row' | 'unsigned' | 'signature does not match';

/** The row a message body holds, or undefined when it is not JSON of a result row. */
export function parseRowBody(body: string): ResultRow | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  const parsed = resultRow.safeParse(value);
  return parsed.success ? (parsed.data as ResultRow) : undefined;
}

/** The signature of a message body under its run's key, as the attribute carries it. */
export function signRowBody(body: string, key: Buffer): string {
  return createHmac('sha256', key).update(body).digest('base64');
}

/** Whether `signature` is the body's under `key`; compared in constant time. */
export function rowSignatureMatches(body: string, signature: string, key: Buffer): boolean {
  const expected = Buffer.from(signRowBody(body, key), 'base64');
  const given = Buffer.from(signature, 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
