/**
 * A sync's pass over an old collection and its migrated target: it reads the target's rows, lists
 * the old collection, and brings the target in step. Deletions first: a face gone from the old
 * collection loses its new face (and its place in its user), and its row is marked deleted, kept
 * for audit with nothing of the person but the two FaceIds. Then user changes are replayed, and
 * the faces added to the old collection become a records file for a run of their own.
 *
 * Every step finds what is left to do, so a retried attempt does only that: a face deleted before
 * its row was marked is deleted again (Rekognition answers "not found") and its row marked.
 */
import {
  AssociateFacesCommand,
  ConflictException,
  CreateUserCommand,
  DeleteUserCommand,
  DisassociateFacesCommand,
  ListFacesCommand,
  type RekognitionClient,
  ResourceNotFoundException,
  ServiceQuotaExceededException,
} from '@aws-sdk/client-rekognition';
import type { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../domain/config';
import {
  addMappingEntry,
  type ListedFace,
  listedFace,
  type MappingEntry,
  parseKeyTemplate,
  type Placed,
  PlacementError,
  placeByExternalImageId,
  placeByMapping,
  placeByTemplate,
  recordOf,
  type S3Location,
} from '../domain/image-locations';
import type { ReviewItem } from '../domain/outcomes';
import { ReasonCode } from '../domain/reasons';
import { checkRecord } from '../domain/records';
import { type SyncDeletion, SyncPlanner, type SyncRow, type SyncUserChange } from '../domain/sync';
import { createFaceDeleter, facePages, requestToken } from '../aws/rekognition';
import { createLedger } from '../stores/ledger';
import { forEachRowsPage } from '../stores/rows-scan';
import { readMapping } from '../records/mapping';
import { httpStatusOf } from '../aws/clients';
import { redriveRecordsKey, syncAdditionsRunId, type SyncPass, type SyncPlacement } from '../shared';

export interface SyncPassInput {
  /** The sync's workflow id: it names the run of the additions and its records file. */
  syncId: string;
  sourceCollectionId: string;
  sourceRegion?: string;
  targetCollectionId: string;
  placement: SyncPlacement;
  /** False while other runs migrate into the target: their records may name old faces without rows yet. */
  withAdditions: boolean;
}

/** AssociateFaces and DisassociateFaces take at most 100 faces a call. */
const FACES_PER_USER_CALL = 100;
/** Attributes a deleted face's row keeps: which face was migrated to which, and when it went. */
const PERSONAL_ATTRIBUTES = ['UserId', 'ExternalImageId', 'Bucket', 'Key', 'BoundingBox', 'OldBoundingBox', 'ImageId'];

function groupBy<T>(items: T[], keyOf: (item: T) => string | undefined): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    if (key !== undefined) groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  return groups;
}

export function createSyncActivities({
  rekognition,
  rekognitionIn,
  dynamodb,
  s3,
  config,
  sendToReview,
}: {
  rekognition: RekognitionClient;
  rekognitionIn: (region: string) => RekognitionClient;
  dynamodb: DynamoDBDocumentClient;
  s3: S3Client;
  config: Pick<Config, 'resultsTable' | 'bucket'>;
  sendToReview: (items: ReviewItem[]) => Promise<void>;
}) {
  const ledger = createLedger(s3, config.bucket);
  const deleteFaces = createFaceDeleter(rekognition);

  /** Hands the planner every row of the target, those marked deleted too; counts the others. */
  async function readRows(planner: SyncPlanner, targetCollectionId: string): Promise<number> {
    let rows = 0;
    await forEachRowsPage<SyncRow>(
      dynamodb,
      {
        table: config.resultsTable,
        only: { attribute: 'CollectionId', value: targetCollectionId },
        withDeleted: true,
        attributes: ['OldFaceId', 'FaceId', 'UserId', 'DeletedAt'],
      },
      (page) => {
        for (const row of page.rows) {
          planner.addRow(row);
          if (row.DeletedAt === undefined) rows += 1;
        }
        heartbeat();
      },
    );
    return rows;
  }

  /** Marks the row deleted, only while it still names the face deleted, and drops what it said of the person. */
  async function markDeleted(deletion: SyncDeletion, at: string): Promise<void> {
    try {
      await dynamodb.send(
        new UpdateCommand({
          TableName: config.resultsTable,
          Key: { OldFaceId: deletion.OldFaceId },
          UpdateExpression: `SET DeletedAt = :at REMOVE ${PERSONAL_ATTRIBUTES.map((_, i) => `#p${i}`).join(', ')}`,
          ConditionExpression: 'FaceId = :face AND attribute_not_exists(DeletedAt)',
          ExpressionAttributeNames: Object.fromEntries(PERSONAL_ATTRIBUTES.map((name, i) => [`#p${i}`, name])),
          ExpressionAttributeValues: { ':at': at, ':face': deletion.FaceId },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async function setRowUser(change: SyncUserChange): Promise<void> {
    try {
      await dynamodb.send(
        new UpdateCommand({
          TableName: config.resultsTable,
          Key: { OldFaceId: change.OldFaceId },
          UpdateExpression: change.to === undefined ? 'REMOVE UserId' : 'SET UserId = :user',
          ConditionExpression: 'FaceId = :face AND attribute_not_exists(DeletedAt)',
          ExpressionAttributeValues: {
            ':face': change.FaceId,
            ...(change.to === undefined ? {} : { ':user': change.to }),
          },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async function ensureUser(CollectionId: string, UserId: string): Promise<void> {
    try {
      await rekognition.send(
        new CreateUserCommand({ CollectionId, UserId, ClientRequestToken: requestToken('sync-create', UserId) }),
      );
    } catch (error) {
      if (!(error instanceof ConflictException)) throw error;
    }
  }

  /** Deletes a user the changes left with no face: the migration creates users only for faces. */
  async function deleteIfEmpty(CollectionId: string, UserId: string): Promise<boolean> {
    try {
      const { Faces = [] } = await rekognition.send(new ListFacesCommand({ CollectionId, UserId, MaxResults: 1 }));
      if (Faces.length > 0) return false;
      await rekognition.send(
        new DeleteUserCommand({ CollectionId, UserId, ClientRequestToken: requestToken('sync-delete-user', UserId) }),
      );
      return true;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return false;
      throw error;
    }
  }

  /** Takes each face out of its old user and into its new one; returns the faces Rekognition refused. */
  async function replayUserChanges(CollectionId: string, changes: SyncUserChange[]): Promise<number> {
    for (const [UserId, leaving] of groupBy(changes, (change) => change.from)) {
      for (let start = 0; start < leaving.length; start += FACES_PER_USER_CALL) {
        const FaceIds = leaving.slice(start, start + FACES_PER_USER_CALL).map((change) => change.FaceId);
        try {
          await rekognition.send(
            new DisassociateFacesCommand({
              CollectionId,
              UserId,
              FaceIds,
              ClientRequestToken: requestToken('sync-leave', UserId, ...FaceIds),
            }),
          );
        } catch (error) {
          // No such user in the target yet: a run in flight has not reached its users phase.
          if (!(error instanceof ResourceNotFoundException)) throw error;
        }
        heartbeat();
      }
    }
    let refused = 0;
    for (const [UserId, joining] of groupBy(changes, (change) => change.to)) {
      await ensureUser(CollectionId, UserId);
      for (let start = 0; start < joining.length; start += FACES_PER_USER_CALL) {
        const FaceIds = joining.slice(start, start + FACES_PER_USER_CALL).map((change) => change.FaceId);
        try {
          const { UnsuccessfulFaceAssociations = [] } = await rekognition.send(
            new AssociateFacesCommand({
              CollectionId,
              UserId,
              FaceIds,
              // The old collection's owner put the face in the user: replayed as decided, not judged again.
              UserMatchThreshold: 0,
              ClientRequestToken: requestToken('sync-join', UserId, ...FaceIds),
            }),
          );
          refused += UnsuccessfulFaceAssociations.length;
        } catch (error) {
          // The user holds the 100 faces it may already.
          if (!(error instanceof ServiceQuotaExceededException)) throw error;
          refused += FaceIds.length;
        }
        heartbeat();
      }
    }
    return refused;
  }

  /** The mapping file's rows for these faces only: a sync's additions are few, the file may be large. */
  async function mappingPlacer(
    placement: Extract<SyncPlacement, { mode: 'mapping' }>,
    faces: ListedFace[],
  ): Promise<(face: ListedFace) => Placed> {
    const name = `s3://${placement.file.Bucket}/${placement.file.Key}`;
    const refused = (message: string) =>
      ApplicationFailure.create({ type: ReasonCode.InvalidRecord, message, nonRetryable: true });
    try {
      const { Body } = await s3.send(new GetObjectCommand(placement.file));
      const mapping = await readMapping(Body as Readable, placement.key, {
        name,
        unreadable: (error) => (error instanceof Error ? error : new Error(String(error))),
      });
      const wanted = new Set(faces.flatMap((face) => face[mapping.key] ?? []));
      const entries = new Map<string, MappingEntry>();
      for await (const entry of mapping.entries)
        if (wanted.has(entry.key)) addMappingEntry(entries, entry, mapping.key, `the mapping file ${name}`);
      return (face) => placeByMapping(entries.get(face[mapping.key] ?? ''), mapping.key, face);
    } catch (error) {
      if (error instanceof PlacementError) throw refused(error.message);
      if (httpStatusOf(error) === 404) throw refused(`the mapping file ${name} does not exist`);
      throw error;
    }
  }

  async function placerFor(placement: SyncPlacement, faces: ListedFace[]): Promise<(face: ListedFace) => Placed> {
    if (placement.mode === 'external-image-id') return (face) => placeByExternalImageId(placement, face);
    if (placement.mode === 'mapping') return mappingPlacer(placement, faces);
    const template = parseKeyTemplate(placement.template);
    return (face) => placeByTemplate(template, face);
  }

  /** The additions as records, one per image; a face no record can hold goes to review. */
  async function additionsRecords(input: SyncPassInput, additions: ListedFace[]) {
    if (additions.length === 0) return { images: 0, unplaced: 0, records: undefined };
    const place = await placerFor(input.placement, additions);
    const runId = syncAdditionsRunId(input.syncId);
    const images = new Map<string, { location: S3Location; faces: ListedFace[] }>();
    const unplaced: ReviewItem[] = [];
    const refuse = (face: ListedFace, detail: string) =>
      unplaced.push({
        reason: ReasonCode.InvalidRecord,
        detail,
        runId,
        Bucket: undefined,
        Key: undefined,
        ExternalImageId: face.ExternalImageId,
        face: undefined,
        faceIds: [face.FaceId],
      });
    for (const face of additions) {
      const placed = face.ImageId ? place(face) : undefined;
      if (placed === undefined)
        refuse(face, 'a face added to the old collection has no ImageId: its image cannot be told');
      else if (!placed.placed)
        refuse(face, `a face added to the old collection cannot be placed (${placed.cause}): ${placed.detail}`);
      else {
        const image = `${face.ImageId ?? ''}\n${placed.location.Bucket}\n${placed.location.Key}`;
        const group = images.get(image) ?? { location: placed.location, faces: [] };
        group.faces.push(face);
        images.set(image, group);
      }
    }
    const lines: string[] = [];
    for (const { location, faces } of images.values()) {
      const record = recordOf(location, faces, undefined);
      const check = checkRecord(record);
      if (check.ok) lines.push(JSON.stringify(record));
      else for (const face of faces) refuse(face, `its record would be refused: ${check.problems.join('; ')}`);
    }
    await sendToReview(unplaced);
    if (lines.length === 0) return { images: 0, unplaced: unplaced.length, records: undefined };
    const records = { Bucket: config.bucket, Key: redriveRecordsKey(runId) };
    await s3.send(
      new PutObjectCommand({ ...records, Body: `${lines.join('\n')}\n`, ContentType: 'application/x-ndjson' }),
    );
    return { images: lines.length, unplaced: unplaced.length, records };
  }

  return {
    /** One pass: deletions first, then user changes, then the additions' records file. */
    syncPass: async (input: SyncPassInput): Promise<SyncPass> => {
      const target = input.targetCollectionId;
      const previous = await ledger.lastSync(target);
      const planner = new SyncPlanner(input.withAdditions);
      const rows = await readRows(planner, target);
      const listedAt = new Date().toISOString();
      const source = input.sourceRegion === undefined ? rekognition : rekognitionIn(input.sourceRegion);
      let oldFaces = 0;
      for await (const page of facePages(source, input.sourceCollectionId)) {
        for (const face of page) planner.addOldFace(listedFace(face));
        oldFaces += page.length;
        heartbeat();
      }
      const { deletions, userChanges, additions, additionsFound } = planner.changes();

      await deleteFaces(
        target,
        deletions.map((deletion) => deletion.FaceId),
      );
      const deletedAt = new Date().toISOString();
      for (const deletion of deletions) await markDeleted(deletion, deletedAt);

      const userChangesRefused = await replayUserChanges(target, userChanges);
      for (const change of userChanges) await setRowUser(change);
      let usersDeleted = 0;
      const leftUsers = new Set(
        [...deletions.map((deletion) => deletion.UserId), ...userChanges.map((change) => change.from)].flatMap(
          (userId) => (userId === undefined ? [] : [userId]),
        ),
      );
      for (const userId of leftUsers) if (await deleteIfEmpty(target, userId)) usersDeleted += 1;

      const added = input.withAdditions
        ? await additionsRecords(input, additions)
        : { images: 0, unplaced: 0, records: undefined };
      await ledger.recordSync(target, { listedAt });
      return {
        listedAt,
        oldFaces,
        rows,
        deleted: deletions.length,
        ...(previous === undefined ? {} : { deletionLagMs: Date.parse(deletedAt) - Date.parse(previous.listedAt) }),
        userChanges: userChanges.length,
        userChangesRefused,
        usersDeleted,
        additions: {
          faces: input.withAdditions ? additions.length - added.unplaced : 0,
          images: added.images,
          unplaced: added.unplaced,
        },
        additionsDeferred: input.withAdditions ? 0 : additionsFound,
        ...(added.records === undefined ? {} : { records: added.records }),
      };
    },
  };
}
