/**
 * The Rekognition operations over the store: collections, faces, users and search, with the
 * responses and errors the real service documents. Every input has passed validation.ts.
 */
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { v5 as nameBasedUuid } from 'uuid';
import { iou } from '../../src/domain/matching';
import { type DetectedFace, type Detector, similarity } from './detection';
import { invalidParameter, notFound, RekognitionError } from './errors';
import { type ImageInput, type LoadedImage, loadImage } from './images';
import type { BoundingBox, Store, StoredCollection, StoredFace, StoredUser } from './store';
import type { Input, Operation } from './validation';

export const FACE_MODEL_VERSIONS = ['6.0', '7.0'] as const;
const ACCOUNT = '123456789012';
const MOST_FACES_PER_IMAGE = 100;
const MOST_FACES_PER_USER = 100;
/** AWS's limit of tags a user may put on one resource. */
const MOST_TAGS_PER_RESOURCE = 50;
/** Faces narrower or shorter than this share of the image are too small to index unless QualityFilter is NONE. */
const SMALLEST_FACE_SIDE = 0.02;
const QUALITY_BAR = { NONE: 0, LOW: 20, AUTO: 35, MEDIUM: 50, HIGH: 75 } as const;
/** A collection's default face limit on AWS. */
export const DEFAULT_MAX_FACES_PER_COLLECTION = 20_000_000;
/** ImageIds are name-based UUIDs of the image's bytes, as the real service's are: same bytes, same ImageId. */
const IMAGE_ID_NAMESPACE = '9d1f3a4e-5b6c-4d7e-8f90-a1b2c3d4e5f6';
/** Boxes of one face detected twice in the same bytes by the same model are this alike, or more. */
const SAME_FACE_IOU = 0.9;

/**
 * What IndexFaces answers for a face detected again in an image indexed before into the collection
 * under the same ExternalImageId: `reuse` returns the FaceId held already and stores nothing new,
 * as the real service does; `fresh` indexes it as a new face with a new FaceId.
 */
export const FACE_ID_BEHAVIOURS = ['reuse', 'fresh'] as const;
export type FaceIdBehaviour = (typeof FACE_ID_BEHAVIOURS)[number];

export interface ServiceSettings {
  region: string;
  /** The face model version a new collection is created with. */
  currentFaceModelVersion: string;
  faceIds: FaceIdBehaviour;
  /** Faces a collection may hold; IndexFaces past it is ServiceQuotaExceededException. */
  maxFacesPerCollection: number;
}

type Response = Record<string, unknown>;

function faceView(face: StoredFace): Response {
  const { descriptor, ...visible } = face;
  return visible;
}

function faceDetail(face: DetectedFace): Response {
  return {
    BoundingBox: face.BoundingBox,
    Confidence: face.Confidence,
    Quality: { Brightness: face.quality, Sharpness: face.quality },
  };
}

const area = (box: BoundingBox) => box.Width * box.Height;

function userStatus(collection: StoredCollection, userId: string): string {
  return (collection.users[userId]?.faceIds.length ?? 0) > 0 ? 'ACTIVE' : 'CREATED';
}

/** Opaque page tokens: the last key a page returned. */
const encodeToken = (key: string) => Buffer.from(key).toString('base64url');
function decodeToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  const key = Buffer.from(token, 'base64url').toString();
  if (key === '' || encodeToken(key) !== token) {
    throw new RekognitionError('InvalidPaginationTokenException', 'Invalid pagination token.');
  }
  return key;
}

function page<T>(sortedKeys: string[], token: string | undefined, maxResults: number, item: (key: string) => T) {
  const after = decodeToken(token);
  const start = after === undefined ? 0 : sortedKeys.findIndex((key) => key > after);
  const keys = start < 0 ? [] : sortedKeys.slice(start, start + maxResults);
  const more = start >= 0 && start + maxResults < sortedKeys.length;
  return { items: keys.map(item), NextToken: more ? encodeToken(keys[keys.length - 1] ?? '') : undefined };
}

export class RekognitionService {
  constructor(
    private readonly store: Store,
    private readonly s3: S3Client,
    private readonly detector: Detector,
    readonly settings: ServiceSettings,
  ) {}

  private collection(collectionId: string): StoredCollection {
    const collection = this.store.collection(collectionId);
    if (!collection) throw notFound(`The collection id: ${collectionId} does not exist`);
    return collection;
  }

  private user(collection: StoredCollection, userId: string): StoredUser {
    const user = collection.users[userId];
    if (!user) throw notFound(`The user with ID ${userId} does not exist`);
    return user;
  }

  private async detect(image: ImageInput, modelVersion: string): Promise<DetectedFace[]> {
    return this.detectLoaded(await loadImage(this.s3, image), modelVersion);
  }

  private async detectLoaded(loaded: LoadedImage, modelVersion: string): Promise<DetectedFace[]> {
    const faces = await this.detector.detect(loaded, modelVersion);
    return faces.sort((a, b) => area(b.BoundingBox) - area(a.BoundingBox));
  }

  /** Runs a user operation at most once per ClientRequestToken, as the real service does. */
  private idempotent<T extends Response>(
    operation: Operation,
    input: { CollectionId: string; ClientRequestToken?: string },
    perform: () => T,
  ): T {
    const { ClientRequestToken: token, ...request } = input;
    if (token === undefined) return perform();
    const key = `${operation}|${input.CollectionId}|${token}`;
    const canonical = JSON.stringify(request);
    const previous = this.store.token(key);
    if (previous) {
      if (previous.request !== canonical) {
        throw new RekognitionError(
          'IdempotentParameterMismatchException',
          'A ClientRequestToken input parameter was reused with an operation, but at least one of the other input parameters is different from the previous call to the operation.',
        );
      }
      return previous.response as T;
    }
    const response = perform();
    this.store.commit({ kind: 'putToken', key, token: { request: canonical, response } });
    return response;
  }

  /**
   * The collection an ARN names. The ARN takes the `arn:` form IAM uses, not the `aws:rekognition:…`
   * form CreateCollection answers with.
   */
  private collectionOfArn(arn: string): StoredCollection {
    const match = /^arn:aws[a-z-]*:rekognition:([a-z0-9-]+):(\d{12}):collection\/([a-zA-Z0-9_.-]+)$/.exec(arn);
    if (!match) throw invalidParameter(`Invalid resource ARN: ${arn}`);
    const [, region, account, collectionId = ''] = match;
    const collection = this.store.collection(collectionId);
    if (region !== this.settings.region || account !== ACCOUNT || !collection)
      throw notFound(`The resource ${arn} does not exist`);
    return collection;
  }

  CreateCollection({ CollectionId, Tags }: Input<'CreateCollection'>): Response {
    if (this.store.collection(CollectionId)) {
      throw new RekognitionError('ResourceAlreadyExistsException', `The collection id: ${CollectionId} already exists`);
    }
    if (Object.keys(Tags ?? {}).length > MOST_TAGS_PER_RESOURCE) {
      throw new RekognitionError(
        'ServiceQuotaExceededException',
        `A resource can have at most ${MOST_TAGS_PER_RESOURCE} tags`,
      );
    }
    const collection = {
      CollectionId,
      CollectionArn: `aws:rekognition:${this.settings.region}:${ACCOUNT}:collection/${CollectionId}`,
      FaceModelVersion: this.settings.currentFaceModelVersion,
      CreationTimestamp: Date.now(),
      Tags: Tags ?? {},
    };
    this.store.commit({ kind: 'createCollection', collection });
    return { StatusCode: 200, CollectionArn: collection.CollectionArn, FaceModelVersion: collection.FaceModelVersion };
  }

  DescribeCollection({ CollectionId }: Input<'DescribeCollection'>): Response {
    const collection = this.collection(CollectionId);
    return {
      FaceCount: Object.keys(collection.faces).length,
      UserCount: Object.keys(collection.users).length,
      FaceModelVersion: collection.FaceModelVersion,
      CollectionARN: collection.CollectionArn,
      CreationTimestamp: collection.CreationTimestamp / 1000,
    };
  }

  ListCollections({ NextToken, MaxResults = 4096 }: Input<'ListCollections'>): Response {
    const ids = this.store
      .collections()
      .map((collection) => collection.CollectionId)
      .sort();
    const { items, NextToken: next } = page(ids, NextToken, MaxResults, (id) => this.collection(id));
    return {
      CollectionIds: items.map((collection) => collection.CollectionId),
      FaceModelVersions: items.map((collection) => collection.FaceModelVersion),
      NextToken: next,
    };
  }

  DeleteCollection({ CollectionId }: Input<'DeleteCollection'>): Response {
    this.collection(CollectionId);
    this.store.commit({ kind: 'deleteCollection', collectionId: CollectionId });
    return { StatusCode: 200 };
  }

  TagResource({ ResourceArn, Tags }: Input<'TagResource'>): Response {
    const { CollectionId, Tags: present } = this.collectionOfArn(ResourceArn);
    if (Object.keys({ ...present, ...Tags }).length > MOST_TAGS_PER_RESOURCE) {
      throw new RekognitionError(
        'ServiceQuotaExceededException',
        `A resource can have at most ${MOST_TAGS_PER_RESOURCE} tags`,
      );
    }
    this.store.commit({ kind: 'tagCollection', collectionId: CollectionId, tags: Tags });
    return {};
  }

  UntagResource({ ResourceArn, TagKeys }: Input<'UntagResource'>): Response {
    const { CollectionId } = this.collectionOfArn(ResourceArn);
    this.store.commit({ kind: 'untagCollection', collectionId: CollectionId, keys: TagKeys });
    return {};
  }

  ListTagsForResource({ ResourceArn }: Input<'ListTagsForResource'>): Response {
    return { Tags: this.collectionOfArn(ResourceArn).Tags ?? {} };
  }

  async IndexFaces(input: Input<'IndexFaces'>): Promise<Response> {
    const loaded = await loadImage(this.s3, input.Image);
    const detected = await this.detectLoaded(loaded, this.collection(input.CollectionId).FaceModelVersion);
    // Looked up again after the wait: the collection may have been deleted (or the service reset)
    // meanwhile, and a change to a collection that is gone must never reach the journal.
    const collection = this.collection(input.CollectionId);
    const bar = QUALITY_BAR[input.QualityFilter ?? 'AUTO'];
    const unindexed: Response[] = [];
    const passing: DetectedFace[] = [];
    for (const face of detected) {
      const reasons = [
        ...(face.quality < bar ? ['LOW_FACE_QUALITY', 'LOW_SHARPNESS'] : []),
        ...(bar > 0 && Math.min(face.BoundingBox.Width, face.BoundingBox.Height) < SMALLEST_FACE_SIDE
          ? ['SMALL_BOUNDING_BOX']
          : []),
      ];
      if (reasons.length > 0) unindexed.push({ Reasons: reasons, FaceDetail: faceDetail(face) });
      else passing.push(face);
    }
    const limit = Math.min(input.MaxFaces ?? MOST_FACES_PER_IMAGE, MOST_FACES_PER_IMAGE);
    for (const face of passing.slice(limit))
      unindexed.push({ Reasons: ['EXCEEDS_MAX_FACES'], FaceDetail: faceDetail(face) });
    const imageId = nameBasedUuid(loaded.bytes, IMAGE_ID_NAMESPACE);
    const held = this.heldFaces(collection, imageId, input.ExternalImageId);
    const indexed = passing.slice(0, limit).map((detectedFace) => {
      const again = held.find((face) => iou(face.BoundingBox, detectedFace.BoundingBox) >= SAME_FACE_IOU);
      if (again) held.splice(held.indexOf(again), 1);
      const face: StoredFace = again ?? {
        FaceId: randomUUID(),
        ImageId: imageId,
        ...(input.ExternalImageId === undefined ? {} : { ExternalImageId: input.ExternalImageId }),
        BoundingBox: detectedFace.BoundingBox,
        Confidence: detectedFace.Confidence,
        IndexFacesModelVersion: collection.FaceModelVersion,
        descriptor: detectedFace.descriptor,
      };
      return { face, detectedFace, isNew: again === undefined };
    });
    const added = indexed.filter(({ isNew }) => isNew).map(({ face }) => face);
    const count = this.store.faceCount(collection.CollectionId);
    if (count + added.length > this.settings.maxFacesPerCollection) {
      throw new RekognitionError(
        'ServiceQuotaExceededException',
        `The collection ${collection.CollectionId} holds ${count} faces; it may hold at most ${this.settings.maxFacesPerCollection}.`,
      );
    }
    if (added.length > 0) this.store.commit({ kind: 'putFaces', collectionId: collection.CollectionId, faces: added });
    return {
      FaceRecords: indexed.map(({ face, detectedFace }) => ({
        Face: faceView(face),
        FaceDetail: faceDetail(detectedFace),
      })),
      UnindexedFaces: unindexed,
      FaceModelVersion: collection.FaceModelVersion,
    };
  }

  /** The faces `reuse` may answer with: those of these bytes indexed before under this ExternalImageId. */
  private heldFaces(collection: StoredCollection, imageId: string, externalImageId: string | undefined): StoredFace[] {
    if (this.settings.faceIds !== 'reuse' || externalImageId === undefined) return [];
    return this.store
      .facesOfImage(collection.CollectionId, imageId)
      .filter((face) => face.ExternalImageId === externalImageId);
  }

  ListFaces({ CollectionId, NextToken, MaxResults = 1000, UserId, FaceIds }: Input<'ListFaces'>): Response {
    const collection = this.collection(CollectionId);
    if (UserId !== undefined) this.user(collection, UserId);
    const wanted = FaceIds === undefined ? undefined : new Set(FaceIds);
    const ids = Object.values(collection.faces)
      .filter(
        (face) => (UserId === undefined || face.UserId === UserId) && (wanted === undefined || wanted.has(face.FaceId)),
      )
      .map((face) => face.FaceId)
      .sort();
    const { items, NextToken: next } = page(ids, NextToken, MaxResults, (id) => faceView(collection.faces[id]!));
    return { Faces: items, NextToken: next, FaceModelVersion: collection.FaceModelVersion };
  }

  DeleteFaces({ CollectionId, FaceIds }: Input<'DeleteFaces'>): Response {
    const collection = this.collection(CollectionId);
    const deleted: string[] = [];
    const unsuccessful: Response[] = [];
    for (const faceId of new Set(FaceIds)) {
      const face = collection.faces[faceId];
      if (!face) unsuccessful.push({ FaceId: faceId, Reasons: ['FACE_NOT_FOUND'] });
      else if (face.UserId !== undefined) {
        unsuccessful.push({ FaceId: faceId, UserId: face.UserId, Reasons: ['ASSOCIATED_TO_AN_EXISTING_USER'] });
      } else deleted.push(faceId);
    }
    if (deleted.length > 0) this.store.commit({ kind: 'deleteFaces', collectionId: CollectionId, faceIds: deleted });
    return { DeletedFaces: deleted, UnsuccessfulFaceDeletions: unsuccessful };
  }

  async DetectFaces({ Image }: Input<'DetectFaces'>): Promise<Response> {
    const faces = await this.detect(Image, this.settings.currentFaceModelVersion);
    return { FaceDetails: faces.map(faceDetail) };
  }

  private matches(
    collection: StoredCollection,
    descriptor: number[],
    threshold: number,
    maxFaces: number,
    except?: string,
  ) {
    return Object.values(collection.faces)
      .filter((face) => face.FaceId !== except)
      .map((face) => ({ Similarity: similarity(descriptor, face.descriptor), Face: faceView(face) }))
      .filter((match) => match.Similarity >= threshold)
      .sort((a, b) => b.Similarity - a.Similarity)
      .slice(0, maxFaces);
  }

  SearchFaces({ CollectionId, FaceId, MaxFaces = 80, FaceMatchThreshold = 80 }: Input<'SearchFaces'>): Response {
    const collection = this.collection(CollectionId);
    const face = collection.faces[FaceId];
    if (!face) throw invalidParameter('faceId was not found in the collection.');
    return {
      SearchedFaceId: FaceId,
      FaceMatches: this.matches(collection, face.descriptor, FaceMatchThreshold, MaxFaces, FaceId),
      FaceModelVersion: collection.FaceModelVersion,
    };
  }

  async SearchFacesByImage(input: Input<'SearchFacesByImage'>): Promise<Response> {
    const collection = this.collection(input.CollectionId);
    const [largest] = await this.detect(input.Image, collection.FaceModelVersion);
    if (!largest) throw invalidParameter('There are no faces in the image. Should be at least 1.');
    return {
      SearchedFaceBoundingBox: largest.BoundingBox,
      SearchedFaceConfidence: largest.Confidence,
      FaceMatches: this.matches(collection, largest.descriptor, input.FaceMatchThreshold ?? 80, input.MaxFaces ?? 80),
      FaceModelVersion: collection.FaceModelVersion,
    };
  }

  CreateUser(input: Input<'CreateUser'>): Response {
    const collection = this.collection(input.CollectionId);
    return this.idempotent('CreateUser', input, () => {
      if (collection.users[input.UserId]) {
        throw new RekognitionError(
          'ConflictException',
          'A User with the same Id already exists within the collection, or the update or deletion of the User caused an inconsistent state.',
        );
      }
      this.store.commit({ kind: 'putUser', collectionId: input.CollectionId, userId: input.UserId });
      return {};
    });
  }

  DeleteUser(input: Input<'DeleteUser'>): Response {
    const collection = this.collection(input.CollectionId);
    return this.idempotent('DeleteUser', input, () => {
      this.user(collection, input.UserId);
      this.store.commit({ kind: 'deleteUser', collectionId: input.CollectionId, userId: input.UserId });
      return {};
    });
  }

  ListUsers({ CollectionId, MaxResults = 500, NextToken }: Input<'ListUsers'>): Response {
    const collection = this.collection(CollectionId);
    const ids = Object.keys(collection.users).sort();
    const { items, NextToken: next } = page(ids, NextToken, MaxResults, (id) => ({
      UserId: id,
      UserStatus: userStatus(collection, id),
    }));
    return { Users: items, NextToken: next };
  }

  AssociateFaces(input: Input<'AssociateFaces'>): Response {
    const collection = this.collection(input.CollectionId);
    return this.idempotent('AssociateFaces', input, () => {
      const user = this.user(collection, input.UserId);
      const threshold = input.UserMatchThreshold ?? 75;
      const associated: string[] = [];
      const unsuccessful: Response[] = [];
      for (const faceId of new Set(input.FaceIds)) {
        const face = collection.faces[faceId];
        if (!face) {
          unsuccessful.push({ FaceId: faceId, Reasons: ['FACE_NOT_FOUND'] });
          continue;
        }
        if (face.UserId !== undefined && face.UserId !== input.UserId) {
          unsuccessful.push({ FaceId: faceId, UserId: face.UserId, Reasons: ['ASSOCIATED_TO_A_DIFFERENT_USER'] });
          continue;
        }
        const userFaces = user.faceIds
          .map((id) => collection.faces[id])
          .filter((f): f is StoredFace => f !== undefined);
        const confidence =
          userFaces.length === 0 ? 100 : Math.max(...userFaces.map((f) => similarity(face.descriptor, f.descriptor)));
        if (confidence < threshold) {
          unsuccessful.push({ FaceId: faceId, Confidence: confidence, Reasons: ['LOW_MATCH_CONFIDENCE'] });
          continue;
        }
        associated.push(faceId);
      }
      const newFaces = associated.filter((id) => !user.faceIds.includes(id));
      if (user.faceIds.length + newFaces.length > MOST_FACES_PER_USER) {
        throw new RekognitionError(
          'ServiceQuotaExceededException',
          `A user can have at most ${MOST_FACES_PER_USER} faces associated; ${input.UserId} has ${user.faceIds.length}.`,
        );
      }
      if (newFaces.length > 0) {
        this.store.commit({
          kind: 'associate',
          collectionId: input.CollectionId,
          userId: input.UserId,
          faceIds: newFaces,
        });
      }
      return {
        AssociatedFaces: associated.map((FaceId) => ({ FaceId })),
        UnsuccessfulFaceAssociations: unsuccessful,
        UserStatus: userStatus(collection, input.UserId),
      };
    });
  }

  DisassociateFaces(input: Input<'DisassociateFaces'>): Response {
    const collection = this.collection(input.CollectionId);
    return this.idempotent('DisassociateFaces', input, () => {
      this.user(collection, input.UserId);
      const disassociated: string[] = [];
      const unsuccessful: Response[] = [];
      for (const faceId of new Set(input.FaceIds)) {
        const face = collection.faces[faceId];
        if (!face) unsuccessful.push({ FaceId: faceId, Reasons: ['FACE_NOT_FOUND'] });
        else if (face.UserId !== input.UserId) {
          unsuccessful.push({ FaceId: faceId, UserId: face.UserId, Reasons: ['ASSOCIATED_TO_A_DIFFERENT_USER'] });
        } else disassociated.push(faceId);
      }
      if (disassociated.length > 0) {
        this.store.commit({
          kind: 'disassociate',
          collectionId: input.CollectionId,
          userId: input.UserId,
          faceIds: disassociated,
        });
      }
      return {
        DisassociatedFaces: disassociated.map((FaceId) => ({ FaceId })),
        UnsuccessfulFaceDisassociations: unsuccessful,
        UserStatus: userStatus(collection, input.UserId),
      };
    });
  }

  SearchUsers({
    CollectionId,
    UserId,
    FaceId,
    UserMatchThreshold = 80,
    MaxUsers = 500,
  }: Input<'SearchUsers'>): Response {
    const collection = this.collection(CollectionId);
    if ((UserId === undefined) === (FaceId === undefined)) {
      throw invalidParameter('Exactly one of UserId and FaceId must be given.');
    }
    let descriptors: number[][];
    if (UserId !== undefined) {
      const user = this.user(collection, UserId);
      descriptors = user.faceIds.map((id) => collection.faces[id]?.descriptor ?? []);
    } else {
      const face = collection.faces[FaceId!];
      if (!face) throw invalidParameter('faceId was not found in the collection.');
      descriptors = [face.descriptor];
    }
    const userMatches = Object.values(collection.users)
      .filter((user) => user.UserId !== UserId && user.faceIds.length > 0)
      .map((user) => ({
        Similarity: Math.max(
          ...user.faceIds.flatMap((id) =>
            descriptors.map((d) => similarity(d, collection.faces[id]?.descriptor ?? [])),
          ),
        ),
        User: { UserId: user.UserId, UserStatus: userStatus(collection, user.UserId) },
      }))
      .filter((match) => match.Similarity >= UserMatchThreshold)
      .sort((a, b) => b.Similarity - a.Similarity)
      .slice(0, MaxUsers);
    return {
      UserMatches: userMatches,
      FaceModelVersion: collection.FaceModelVersion,
      ...(UserId !== undefined ? { SearchedUser: { UserId } } : { SearchedFace: { FaceId } }),
    };
  }
}
