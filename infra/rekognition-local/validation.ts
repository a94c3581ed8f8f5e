/**
 * Request shapes with the real API's constraints (lengths, patterns, ranges, enums). A request that
 * breaks them gets a ValidationException worded as AWS words it:
 * "1 validation error detected: Value 'a b' at 'externalImageId' failed to satisfy constraint: ...".
 */
import { z } from 'zod';
import { RekognitionError } from './errors';

const MAX_BYTES = 5 * 1024 * 1024;

const patterned = (pattern: string, min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .regex(new RegExp(`^(?:${pattern})$`), { message: `Member must satisfy regular expression pattern: ${pattern}` });

export const collectionId = patterned('[a-zA-Z0-9_.\\-]+', 1, 255);
export const externalImageId = patterned('[a-zA-Z0-9_.\\-:]+', 1, 255);
export const faceId = patterned('[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', 0, 36);
export const userId = patterned('[a-zA-Z0-9_.\\-:]+', 1, 128);
const clientRequestToken = patterned('[a-zA-Z0-9-_]+', 1, 64);
const nextToken = z.string().max(255);
const threshold = z.number().min(0).max(100);
/** Keys AWS reserves start with `aws:`; letters, spaces and numbers of any script, and `_.:/=+-@`. */
const tagKey = z
  .string()
  .min(1)
  .max(128)
  .regex(/^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, {
    message: 'Member must satisfy regular expression pattern: ^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*$',
  });
const tagValue = z
  .string()
  .max(256)
  .regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, {
    message: 'Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$',
  });
const tags = z
  .record(tagKey, tagValue)
  .refine((map) => Object.keys(map).length <= 200, { message: 'Member must have length less than or equal to 200' });
const resourceArn = z.string().min(20).max(2048);

export const image = z.object({
  Bytes: z
    .string()
    .transform((base64) => Buffer.from(base64, 'base64'))
    .refine((bytes) => bytes.length >= 1, { message: 'Member must have length greater than or equal to 1' })
    .refine((bytes) => bytes.length <= MAX_BYTES, {
      message: `Member must have length less than or equal to ${MAX_BYTES}`,
    })
    .optional(),
  S3Object: z
    .object({
      Bucket: patterned('[0-9A-Za-z\\.\\-_]*', 3, 255).optional(),
      Name: z.string().min(1).max(1024).optional(),
      Version: z.string().min(1).max(1024).optional(),
    })
    .optional(),
});

export const schemas = {
  CreateCollection: z.object({ CollectionId: collectionId, Tags: tags.optional() }),
  TagResource: z.object({ ResourceArn: resourceArn, Tags: tags }),
  UntagResource: z.object({ ResourceArn: resourceArn, TagKeys: z.array(tagKey).max(200) }),
  ListTagsForResource: z.object({ ResourceArn: resourceArn }),
  DescribeCollection: z.object({ CollectionId: collectionId }),
  DeleteCollection: z.object({ CollectionId: collectionId }),
  ListCollections: z.object({
    NextToken: nextToken.optional(),
    MaxResults: z.number().int().min(0).max(4096).optional(),
  }),
  IndexFaces: z.object({
    CollectionId: collectionId,
    Image: image,
    ExternalImageId: externalImageId.optional(),
    DetectionAttributes: z
      .array(
        z.enum([
          'DEFAULT',
          'ALL',
          'AGE_RANGE',
          'BEARD',
          'EMOTIONS',
          'EYE_DIRECTION',
          'EYEGLASSES',
          'EYES_OPEN',
          'GENDER',
          'MOUTH_OPEN',
          'MUSTACHE',
          'FACE_OCCLUDED',
          'SMILE',
          'SUNGLASSES',
        ]),
      )
      .optional(),
    MaxFaces: z.number().int().min(1).optional(),
    QualityFilter: z.enum(['NONE', 'AUTO', 'LOW', 'MEDIUM', 'HIGH']).optional(),
  }),
  ListFaces: z.object({
    CollectionId: collectionId,
    NextToken: nextToken.optional(),
    MaxResults: z.number().int().min(0).max(4096).optional(),
    UserId: userId.optional(),
    FaceIds: z.array(faceId).min(1).max(4096).optional(),
  }),
  DeleteFaces: z.object({ CollectionId: collectionId, FaceIds: z.array(faceId).min(1).max(4096) }),
  DetectFaces: z.object({ Image: image, Attributes: z.array(z.string()).optional() }),
  SearchFaces: z.object({
    CollectionId: collectionId,
    FaceId: faceId,
    MaxFaces: z.number().int().min(1).max(4096).optional(),
    FaceMatchThreshold: threshold.optional(),
  }),
  SearchFacesByImage: z.object({
    CollectionId: collectionId,
    Image: image,
    MaxFaces: z.number().int().min(1).max(4096).optional(),
    FaceMatchThreshold: threshold.optional(),
    QualityFilter: z.enum(['NONE', 'AUTO', 'LOW', 'MEDIUM', 'HIGH']).optional(),
  }),
  CreateUser: z.object({
    CollectionId: collectionId,
    UserId: userId,
    ClientRequestToken: clientRequestToken.optional(),
  }),
  DeleteUser: z.object({
    CollectionId: collectionId,
    UserId: userId,
    ClientRequestToken: clientRequestToken.optional(),
  }),
  ListUsers: z.object({
    CollectionId: collectionId,
    MaxResults: z.number().int().min(1).max(500).optional(),
    NextToken: nextToken.optional(),
  }),
  AssociateFaces: z.object({
    CollectionId: collectionId,
    UserId: userId,
    FaceIds: z.array(faceId).min(1).max(100),
    UserMatchThreshold: threshold.optional(),
    ClientRequestToken: clientRequestToken.optional(),
  }),
  DisassociateFaces: z.object({
    CollectionId: collectionId,
    UserId: userId,
    FaceIds: z.array(faceId).min(1).max(100),
    ClientRequestToken: clientRequestToken.optional(),
  }),
  SearchUsers: z.object({
    CollectionId: collectionId,
    UserId: userId.optional(),
    FaceId: faceId.optional(),
    UserMatchThreshold: threshold.optional(),
    MaxUsers: z.number().int().min(1).max(500).optional(),
  }),
} as const;

export type Operation = keyof typeof schemas;
export type Input<O extends Operation> = z.output<(typeof schemas)[O]>;

/** AWS names members in camelCase in its messages: Image.S3Object.Name is 'image.s3Object.name'. */
function memberPath(path: PropertyKey[]): string {
  return path
    .filter((part): part is string => typeof part === 'string')
    .map((part) => part.charAt(0).toLowerCase() + part.slice(1))
    .join('.');
}

/** Patterns and image sizes carry their AWS wording as their message; the rest is derived here. */
function constraintOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small':
      return issue.origin === 'number'
        ? `Member must have value greater than or equal to ${String(issue.minimum)}`
        : `Member must have length greater than or equal to ${String(issue.minimum)}`;
    case 'too_big':
      return issue.origin === 'number'
        ? `Member must have value less than or equal to ${String(issue.maximum)}`
        : `Member must have length less than or equal to ${String(issue.maximum)}`;
    case 'invalid_value':
      return `Member must satisfy enum value set: [${issue.values.map(String).join(', ')}]`;
    case 'invalid_type':
      return issue.input === undefined ? 'Member must not be null' : `Member must be of type ${issue.expected}`;
    default:
      return issue.message;
  }
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  return path.reduce<unknown>((value, key) => (value as Record<PropertyKey, unknown> | undefined)?.[key], input);
}

export function validate<O extends Operation>(operation: O, input: unknown): Input<O> {
  const parsed = schemas[operation].safeParse(input ?? {});
  if (parsed.success) return parsed.data as Input<O>;
  const errors = parsed.error.issues.map((issue) => {
    const value = valueAt(input, issue.path);
    const shown =
      typeof value === 'string' && value.length > 256 ? `${value.slice(0, 20)}...` : (JSON.stringify(value) ?? 'null');
    return `Value '${shown.replace(/^"|"$/g, '')}' at '${memberPath(issue.path)}' failed to satisfy constraint: ${constraintOf(issue)}`;
  });
  const count = `${errors.length} validation error${errors.length === 1 ? '' : 's'} detected`;
  throw new RekognitionError('ValidationException', `${count}: ${errors.join('; ')}`);
}
