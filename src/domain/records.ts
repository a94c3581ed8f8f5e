/**
 * One image of the records file and the old faces it holds, as the original solution's data
 * preparation writes it (docs/records-file.md). A record that does not fit gets a reason code and
 * every problem named by its path, so an operator can fix it from the DLQ message alone.
 */
import { z } from 'zod';
import { COLLECTION_ID, isCollectionId } from './collection-names';
import { ReasonCode } from './reasons';

const FACE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Rekognition's patterns for the identifiers it will be given again. */
const EXTERNAL_IMAGE_ID = /^[a-zA-Z0-9_.\-:]+$/;
const USER_ID = /^[a-zA-Z0-9_.\-:]+$/;
const BUCKET = /^[0-9A-Za-z.\-_]+$/;
/** S3 counts a key's length in bytes of UTF-8, not in characters. */
const MAX_KEY_BYTES = 1024;
/** A record with many problems is named by its first ones: the DLQ message stays small. */
const MOST_PROBLEMS_NAMED = 10;

/**
 * The most text one record may take in the records file. A real record is far smaller (100 faces
 * with every field, pretty-printed, take about 50 KB); the bound keeps a broken or hostile record
 * from being held in memory, and a refused record small enough to travel whole in its DLQ message.
 */
export const MAX_RECORD_BYTES = 128 * 1024;

/**
 * The deepest a record's brackets may nest. A real record nests four deep (the record, its Faces,
 * a face, its box), with room for extra columns of the user's own; a deeper one is refused before
 * it is parsed, so neither the reader's bracket count nor a later JSON.stringify of it can grow
 * without bound.
 */
export const MAX_RECORD_NESTING = 32;

/** Whether `text`'s brackets, outside strings, nest deeper than MAX_RECORD_NESTING. */
export function nestsTooDeep(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
    } else if (char === '{' || char === '[') {
      depth += 1;
      if (depth > MAX_RECORD_NESTING) return true;
    } else if (char === '}' || char === ']') {
      depth -= 1;
    }
  }
  return false;
}

const utf8Bytes = (text: string) => new TextEncoder().encode(text).length;

/**
 * Rekognition reports a face cut by the image's edge with a box reaching past it (a negative Left,
 * say), so a box may stick out; it must still have a size and overlap the image.
 */
const boundingBox = z
  .object({
    Width: z.number().gt(0).lte(1),
    Height: z.number().gt(0).lte(1),
    Left: z.number().gte(-1).lt(1),
    Top: z.number().gte(-1).lt(1),
  })
  // A box already refused for its size is not said to be outside as well.
  .refine((box) => box.Width <= 0 || box.Height <= 0 || (box.Left + box.Width > 0 && box.Top + box.Height > 0), {
    message: 'lies wholly outside the image',
  });

const face = z.object({
  FaceId: z.string().regex(FACE_ID, 'must be a Rekognition FaceId (a lower-case UUID)'),
  ImageId: z.string().min(1).optional(),
  UserId: z.string().min(1).max(128).regex(USER_ID, 'may hold only letters, digits and _ . - :').optional(),
  BoundingBoxes: boundingBox,
});

const imageRecord = z.object({
  Bucket: z.string().min(3).max(255).regex(BUCKET, 'is not an S3 bucket name'),
  Key: z
    .string()
    .min(1)
    .refine(
      (key) => utf8Bytes(key) <= MAX_KEY_BYTES,
      `must be at most ${MAX_KEY_BYTES} bytes in UTF-8 (S3 holds no longer key)`,
    ),
  ExternalImageId: z
    .string()
    .min(1)
    .max(255)
    .regex(EXTERNAL_IMAGE_ID, 'may hold only letters, digits and _ . - : (Rekognition refuses others)')
    .optional(),
  CollectionId: z.string().min(1).max(255).regex(COLLECTION_ID, 'may hold only letters, digits and _ . -').optional(),
  Faces: z.array(face).min(1, 'must hold at least one face'),
});

export type ImageRecord = z.output<typeof imageRecord>;
export type RecordFace = ImageRecord['Faces'][number];

export type RecordCheck =
  | { ok: true; record: ImageRecord }
  | { ok: false; reason: ReasonCode.InvalidRecord | ReasonCode.DuplicateFaceId; problems: string[] };

/** `Faces[0].BoundingBoxes.Width`: the path as a person reads it in the records file. */
function pathOf(path: PropertyKey[]): string {
  return path.reduce<string>(
    (text, part) => (typeof part === 'number' ? `${text}[${part}]` : text ? `${text}.${String(part)}` : String(part)),
    '',
  );
}

function describe(issue: z.core.$ZodIssue): string {
  const where = pathOf(issue.path) || 'the record';
  if (issue.code === 'invalid_type') {
    const article = /^[aeiou]/.test(issue.expected) ? 'an' : 'a';
    return issue.input === undefined ? `${where} is missing` : `${where} must be ${article} ${issue.expected}`;
  }
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
    const comparison =
      issue.code === 'too_small'
        ? issue.inclusive
          ? 'at least'
          : 'greater than'
        : issue.inclusive
          ? 'at most'
          : 'less than';
    if (issue.origin === 'number') return `${where} must be ${comparison} ${String(bound)}`;
    if (issue.message.startsWith('must')) return `${where} ${issue.message}`;
    return `${where} must have ${comparison} ${String(bound)} ${issue.origin === 'array' ? 'items' : 'characters'}`;
  }
  return `${where} ${issue.message}`;
}

function firstProblems(problems: string[]): string[] {
  if (problems.length <= MOST_PROBLEMS_NAMED) return problems;
  return [...problems.slice(0, MOST_PROBLEMS_NAMED), `and ${problems.length - MOST_PROBLEMS_NAMED} more problems`];
}

/** What a refused record keeps of its old faces: at most this many FaceIds, each at most FACE_ID_CHARS long. */
export const REFUSED_FACE_IDS = 100;
const FACE_ID_CHARS = 64;

/** The old FaceIds a value that may be a record names, bounded: what is kept of a refused record. */
export function faceIdsNamed(value: unknown): string[] {
  const faces = (value as { Faces?: unknown } | null | undefined)?.Faces;
  if (!Array.isArray(faces)) return [];
  return faces
    .flatMap((face) => {
      const id = (face as { FaceId?: unknown } | null | undefined)?.FaceId;
      return typeof id === 'string' && id.length <= FACE_ID_CHARS ? [id] : [];
    })
    .slice(0, REFUSED_FACE_IDS);
}

export function checkRecord(value: unknown): RecordCheck {
  // reportInput tells a missing member from one of the wrong type.
  const parsed = imageRecord.safeParse(value, { reportInput: true });
  if (!parsed.success)
    return { ok: false, reason: ReasonCode.InvalidRecord, problems: firstProblems(parsed.error.issues.map(describe)) };
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const { FaceId } of parsed.data.Faces) {
    if (seen.has(FaceId)) repeated.add(FaceId);
    seen.add(FaceId);
  }
  if (repeated.size > 0) {
    return {
      ok: false,
      reason: ReasonCode.DuplicateFaceId,
      problems: firstProblems([...repeated].map((id) => `FaceId ${id} appears more than once`)),
    };
  }
  return { ok: true, record: parsed.data };
}

/**
 * Which records of a records file that many collections' runs read are one run's: those that name
 * its collection, and for the one run that refuses them, those that name none a run could take.
 */
export interface RecordsSelection {
  collectionId: string;
  refusesUnnamed: boolean;
}

/** The collection a record names as the one it is indexed into, when it names one Rekognition takes. */
export function collectionNamed(value: unknown): string | undefined {
  const named = (value as { CollectionId?: unknown } | null | undefined)?.CollectionId;
  return typeof named === 'string' && isCollectionId(named) ? named : undefined;
}

/** Whether a line that is not a record is the run's to refuse: exactly one run of those sharing the file refuses it. */
export function refusesMalformed(selection: RecordsSelection | undefined): boolean {
  return selection === undefined || selection.refusesUnnamed;
}

/** The check of a record the run takes; undefined when it is another run's. */
export function checkSelectedRecord(selection: RecordsSelection | undefined, value: unknown): RecordCheck | undefined {
  if (selection === undefined) return checkRecord(value);
  const named = collectionNamed(value);
  if (named !== undefined) return named === selection.collectionId ? checkRecord(value) : undefined;
  if (!selection.refusesUnnamed) return undefined;
  const check = checkRecord(value);
  if (!check.ok) return check;
  return {
    ok: false,
    reason: ReasonCode.InvalidRecord,
    problems: ['CollectionId is missing: a run without a target indexes each record into the collection it names'],
  };
}
