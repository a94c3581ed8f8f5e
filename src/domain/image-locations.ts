/**
 * Where each old face's image lies in S3, for `reindex prepare`: the ways the original solution's
 * notebook left to "write your own getAdditionalInfo", as resolvers. A face either gets a bucket
 * and key or a cause it could not be placed; no face is dropped without one.
 */

/** What ListFaces tells of a face, and what a records file needs of it. */
export interface ListedFace {
  FaceId: string;
  ImageId?: string;
  ExternalImageId?: string;
  UserId?: string;
  BoundingBox?: { Width?: number; Height?: number; Left?: number; Top?: number };
}

/** A face as ListFaces answers, as far as a records file needs it. */
export function listedFace(face: {
  FaceId?: string;
  ImageId?: string;
  ExternalImageId?: string;
  UserId?: string;
  BoundingBox?: ListedFace['BoundingBox'];
}): ListedFace {
  return {
    FaceId: face.FaceId ?? '',
    ImageId: face.ImageId,
    ExternalImageId: face.ExternalImageId,
    UserId: face.UserId,
    BoundingBox: face.BoundingBox,
  };
}

export interface S3Location {
  Bucket: string;
  Key: string;
}

export enum UnplacedCause {
  NoFaceId = 'NO_FACE_ID',
  NoImageId = 'NO_IMAGE_ID',
  NoExternalImageId = 'NO_EXTERNAL_IMAGE_ID',
  /** The mapping file has no row for the face's key. */
  NotInMapping = 'NOT_IN_MAPPING',
  /** The resolved bucket or key is not one S3 accepts. */
  InvalidLocation = 'INVALID_LOCATION',
  /** The image's record would not pass the records-file schema, so a run would refuse it. */
  InvalidRecord = 'INVALID_RECORD',
}

export type Placed = { placed: true; location: S3Location } | { placed: false; cause: UnplacedCause; detail: string };

/** A placement the operator asked for that cannot work: the CLI makes it a usage error. */
export class PlacementError extends Error {
  override name = 'PlacementError';
}

/** The face fields a key template or a mapping file may name. */
export const FACE_KEYS = ['FaceId', 'ImageId', 'ExternalImageId'] as const;
export type FaceKey = (typeof FACE_KEYS)[number];

const MISSING: Record<FaceKey, UnplacedCause> = {
  FaceId: UnplacedCause.NoFaceId,
  ImageId: UnplacedCause.NoImageId,
  ExternalImageId: UnplacedCause.NoExternalImageId,
};

const BUCKET = /^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$/i;
const MAX_KEY_BYTES = 1024;

/** A place images may be read from: a bucket, and a key prefix within it ('' for the whole bucket). */
export interface ImageLocation {
  Bucket: string;
  Prefix: string;
}

/** `s3://bucket/` or `s3://bucket/prefix` as a location, or undefined when it is not one. */
export function imageLocation(uri: string): ImageLocation | undefined {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri.trim());
  return match?.[1] && BUCKET.test(match[1]) ? { Bucket: match[1], Prefix: match[2] ?? '' } : undefined;
}

/** Whether an object lies in one of the locations: its bucket, under the prefix. */
export function isWithin(locations: readonly ImageLocation[], Bucket: string, Key: string): boolean {
  return locations.some((location) => location.Bucket === Bucket && Key.startsWith(location.Prefix));
}

/** `s3://bucket/key` as a location, or undefined when it is not one. */
export function s3Location(uri: string): S3Location | undefined {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri.trim());
  return match?.[1] && match[2] ? { Bucket: match[1], Key: match[2] } : undefined;
}

function checked(location: S3Location): Placed {
  if (!BUCKET.test(location.Bucket)) {
    return {
      placed: false,
      cause: UnplacedCause.InvalidLocation,
      detail: `"${location.Bucket}" is not an S3 bucket name`,
    };
  }
  if (Buffer.byteLength(location.Key) > MAX_KEY_BYTES) {
    return {
      placed: false,
      cause: UnplacedCause.InvalidLocation,
      detail: `the key is longer than ${MAX_KEY_BYTES} bytes`,
    };
  }
  return { placed: true, location };
}

function missing(field: FaceKey): Placed {
  return { placed: false, cause: MISSING[field], detail: `the face has no ${field}` };
}

// ---------------------------------------------------------------------------------------------
// --key-from external-image-id --bucket B [--prefix P] [--suffix S]

export interface ExternalImageIdPlacement {
  bucket: string;
  /** Taken literally: `photos/` and `photos` give `photos/ana.jpg` and `photosana.jpg`. */
  prefix: string;
  suffix: string;
}

export function placeByExternalImageId({ bucket, prefix, suffix }: ExternalImageIdPlacement, face: ListedFace): Placed {
  if (!face.ExternalImageId) return missing('ExternalImageId');
  return checked({ Bucket: bucket, Key: `${prefix}${face.ExternalImageId}${suffix}` });
}

// ---------------------------------------------------------------------------------------------
// --key-template 's3://bucket/{ExternalImageId}.jpg'

export interface KeyTemplate {
  text: string;
  /** The template cut at its placeholders: literal text and field names, alternately. */
  parts: (string | { field: FaceKey })[];
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

export function parseKeyTemplate(text: string): KeyTemplate {
  if (!/^s3:\/\/[^/{}]+\/./.test(text)) {
    throw new PlacementError(
      `the key template "${text}" must be s3://bucket/key with a literal bucket, e.g. s3://photos/{ExternalImageId}.jpg`,
    );
  }
  const parts: KeyTemplate['parts'] = [];
  let at = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? '';
    if (!(FACE_KEYS as readonly string[]).includes(name)) {
      throw new PlacementError(
        `the key template names {${name}}; it may name only ${FACE_KEYS.map((key) => `{${key}}`).join(', ')}`,
      );
    }
    parts.push(text.slice(at, match.index), { field: name as FaceKey });
    at = match.index + match[0].length;
  }
  parts.push(text.slice(at));
  if (!parts.some((part) => typeof part !== 'string')) {
    throw new PlacementError(`the key template "${text}" names no placeholder: every image would get the same key`);
  }
  return { text, parts };
}

export function placeByTemplate(template: KeyTemplate, face: ListedFace): Placed {
  let uri = '';
  for (const part of template.parts) {
    if (typeof part === 'string') {
      uri += part;
    } else {
      const value = face[part.field];
      if (!value) return missing(part.field);
      uri += value;
    }
  }
  // The bucket is literal and the key holds at least one placeholder's value, so the URI parses.
  const location = s3Location(uri);
  return location
    ? checked(location)
    : { placed: false, cause: UnplacedCause.InvalidLocation, detail: `"${uri}" is no S3 URI` };
}

// ---------------------------------------------------------------------------------------------
// --mapping file.csv [--mapping-key FaceId|ImageId|ExternalImageId]

export interface MappingColumns {
  key: FaceKey;
  keyColumn: number;
  uriColumn: number;
  userIdColumn: number | undefined;
}

export interface MappingEntry {
  key: string;
  location: S3Location;
  /** Fills or overrides the face's UserId; an empty cell leaves it as it is. */
  userId: string | undefined;
}

/** Header names of the URI column, compared without case. */
const URI_COLUMN_NAMES = ['s3uri', 'uri'];

/**
 * The mapping file's columns from its header and first row. The key column is the one named by
 * `chosenKey`, else the one header among FaceId, ImageId and ExternalImageId. The URI column is the
 * one headed S3Uri or Uri; failing that, the one column whose first value is an s3:// URI.
 */
export function mappingColumns(header: string[], firstRow: string[] | undefined, chosenKey?: FaceKey): MappingColumns {
  const names = header.map((name) => name.trim().toLowerCase());
  const columnOf = (name: string) => names.indexOf(name.toLowerCase());
  const keys = chosenKey ? [chosenKey] : FACE_KEYS.filter((key) => columnOf(key) >= 0);
  if (keys.length !== 1 || columnOf(keys[0] ?? '') < 0) {
    const found =
      keys.length > 1
        ? `it has ${keys.join(', ')}: choose one with --mapping-key`
        : `it has ${header.join(', ') || 'no header'}`;
    throw new PlacementError(
      chosenKey
        ? `the mapping file has no ${chosenKey} column (${found})`
        : `the mapping file needs one key column named FaceId, ImageId or ExternalImageId; ${found}`,
    );
  }
  const key = keys[0] as FaceKey;
  let uriColumn = names.findIndex((name) => URI_COLUMN_NAMES.includes(name));
  if (uriColumn < 0) {
    const uriColumns = (firstRow ?? []).flatMap((value, column) => (value.trim().startsWith('s3://') ? [column] : []));
    if (uriColumns.length !== 1) {
      throw new PlacementError(
        `the mapping file needs one column of s3:// URIs, headed S3Uri (${uriColumns.length === 0 ? 'none found' : `several found: ${uriColumns.map((column) => header[column]).join(', ')}`})`,
      );
    }
    uriColumn = uriColumns[0] as number;
  }
  const userIdColumn = columnOf('UserId');
  return { key, keyColumn: columnOf(key), uriColumn, userIdColumn: userIdColumn >= 0 ? userIdColumn : undefined };
}

/** One row of the mapping file; `line` names it in the error a bad row gets. */
export function mappingEntry(columns: MappingColumns, row: string[], line: number): MappingEntry {
  const key = row[columns.keyColumn]?.trim();
  if (!key) throw new PlacementError(`line ${line} of the mapping file has no ${columns.key}`);
  const uri = row[columns.uriColumn]?.trim() ?? '';
  const location = s3Location(uri);
  if (!location)
    throw new PlacementError(`line ${line} of the mapping file: "${uri}" is not an S3 URI of the form s3://bucket/key`);
  const userId = columns.userIdColumn === undefined ? undefined : row[columns.userIdColumn]?.trim() || undefined;
  return { key, location, userId };
}

/**
 * Adds `entry` to `entries`, which holds one entry a key. The same key again with the same image is
 * one entry; with another image it is refused, since a face is in one image. `file` names the
 * mapping file in the refusal.
 */
export function addMappingEntry(
  entries: Map<string, MappingEntry>,
  entry: MappingEntry,
  key: FaceKey,
  file = 'the mapping file',
): void {
  const earlier = entries.get(entry.key);
  if (earlier && (earlier.location.Bucket !== entry.location.Bucket || earlier.location.Key !== entry.location.Key))
    throw new PlacementError(
      `${file} gives ${key} ${entry.key} two images: s3://${earlier.location.Bucket}/${earlier.location.Key} and s3://${entry.location.Bucket}/${entry.location.Key}`,
    );
  entries.set(entry.key, entry);
}

export function placeByMapping(entry: MappingEntry | undefined, key: FaceKey, face: ListedFace): Placed {
  if (!face[key]) return missing(key);
  if (!entry)
    return {
      placed: false,
      cause: UnplacedCause.NotInMapping,
      detail: `no row of the mapping file has ${key} ${face[key] ?? ''}`,
    };
  return checked(entry.location);
}

// ---------------------------------------------------------------------------------------------
// Records

/** One image's record, as docs/records-file.md lays it out. */
export function recordOf(
  location: S3Location,
  faces: ListedFace[],
  targetCollectionId: string | undefined,
): Record<string, unknown> {
  return {
    Bucket: location.Bucket,
    Key: location.Key,
    ExternalImageId: faces[0]?.ExternalImageId,
    ...(targetCollectionId ? { CollectionId: targetCollectionId } : {}),
    Faces: faces.map((face) => ({
      FaceId: face.FaceId,
      ImageId: face.ImageId,
      UserId: face.UserId,
      BoundingBoxes: face.BoundingBox,
    })),
  };
}

/** FNV-1a: the same key always lands in the same one of `count` partitions. */
export function partitionOf(key: string, count: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i += 1) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}
