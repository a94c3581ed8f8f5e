/**
 * Rekognition: prepare the target collection, IndexFaces one image into it and decide what became
 * of each of its faces, delete the new faces of rows refused as duplicates, and reconcile the
 * target with the ledger at the end of a run.
 *
 * reindexImage is idempotent per image: right after IndexFaces answers, the new faces are recorded
 * in the ledger, and a retried attempt that finds that record uses it instead of indexing the image
 * again. Only a crash between IndexFaces and that write can leave faces no result names; reconcile
 * deletes those.
 */
import {
  AccessDeniedException,
  CreateCollectionCommand,
  DeleteCollectionCommand,
  DescribeCollectionCommand,
  type DescribeCollectionCommandOutput,
  IndexFacesCommand,
  type IndexFacesCommandOutput,
  ListFacesCommand,
  RekognitionClient,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  TagResourceCommand,
} from '@aws-sdk/client-rekognition';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { activityInfo, Context, heartbeat, log, sleep } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Config } from '../domain/config';
import { isNewerFaceModel } from '../domain/face-models';
import { erasureOutcome, type SourceFaces } from '../domain/erasures';
import { imageRef } from '../domain/identifiers';
import { DIMENSION_BYTES, dimensionsVerdict } from '../domain/image-checks';
import {
  decideOutcome,
  type ImageOutcome,
  type ImageTally,
  type RowRetraction,
  type RunContext,
  settleFaces,
  tallyOf,
  withoutHeldFaces,
} from '../domain/outcomes';
import { ReasonCode } from '../domain/reasons';
import type { ImageRecord } from '../domain/records';
import { DEFAULT_RETRY_MINUTES, MIGRATION_TARGET_TAG, REINDEX_IMAGE_ATTEMPT_MS, type ReindexOptions } from '../shared';
import { cancelledWithActivity, httpStatusOf, REQUEST_LIMITS } from '../aws/clients';
import { createFaceDeleter, FACES_PER_PAGE, permanentReason } from '../aws/rekognition';
import { createLedger, eachInSlices, holdsFacesNotOurs, identityOf, type IndexingRecord } from '../stores/ledger';
import { createOrphanFinder, type ReconcileFinding } from '../stores/orphans';
import { whileAlive } from './liveness';
import { countMatchedFaces, type IndexFacesOutcome, recordIndexFacesLatency } from './metrics';
import type { DuplicateRow } from './results';

export interface ReindexImageInput {
  runId: string;
  recordIndex: number;
  record: ImageRecord;
  sourceCollectionId: string | undefined;
  targetCollectionId: string;
  options: ReindexOptions;
  /** False when the batch found no indexing of the record in the ledger (ChunkEntry.indexedBefore). */
  indexedBefore?: boolean;
  /** The record's old faces the source no longer holds (ChunkEntry.oldFacesGone): the image is not indexed. */
  oldFacesGone?: string[];
  /**
   * How long failures other than throttling are retried before the image gives up (DEFAULT_RETRY_MINUTES when absent).
   */
  retryForMs?: number;
  /**
   * The attempt sends the image's rows and review items to their queues itself and answers with
   * their tally: an image of 100 faces none of which matched has 100 review items of up to 100
   * boxes each, about 1 MB, and a batch's history would not hold them. Absent in histories from
   * before, whose batches publish the outcome they are given.
   */
  publish?: boolean;
}

/**
 * What an image's attempts met, carried from one attempt to the next in heartbeat details: since
 * when they have failed without a break. A throttled attempt leaves an empty history; an attempt
 * that left none at all ended without a word (its worker died, it timed out) and counts as a fault.
 */
interface AttemptHistory {
  faultSinceMs?: number;
}

export interface ReindexImageResult extends ImageOutcome {
  /** True when an earlier attempt had already indexed the image and its record was reused. */
  reusedEarlierIndexing: boolean;
  /** Present when an earlier indexing of the record, under other settings, held faces this one deleted. */
  retractions?: RowRetraction[];
}

/** Sends one image's rows, review items and retractions where they go. */
export type PublishOutcome = (outcome: ReindexImageResult) => Promise<void>;

/** Errors Rekognition sends when a call goes over the account's quota. */
const THROTTLING_ERRORS = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'LimitExceededException',
]);

/** Throttling by Rekognition, or by S3 and SQS on the way (SlowDown, RequestThrottled): the quota, not a fault. */
function isThrottling(error: unknown): boolean {
  return (
    error instanceof Error &&
    (THROTTLING_ERRORS.has(error.name) ||
      error.name === 'SlowDown' ||
      error.name === 'RequestThrottled' ||
      httpStatusOf(error) === 429)
  );
}

/** What a failed IndexFaces call comes to, for its latency's `outcome` label. */
function indexFacesOutcomeOf(error: unknown): IndexFacesOutcome {
  if (error instanceof ResourceNotFoundException || permanentReason(error) !== undefined) return 'refused';
  return error instanceof Error && THROTTLING_ERRORS.has(error.name) ? 'throttled' : 'error';
}

export interface PrepareTargetInput {
  runId: string;
  targetCollectionId: string;
  sourceCollectionId: string | undefined;
  /** The source's region, when it is not the worker's: the source is described there. */
  sourceRegion?: string;
  /** Migrate even when the target's face model is not newer than the source's. */
  force: boolean;
}

export interface PreparedTarget {
  targetFaceModelVersion: string;
  sourceFaceModelVersion: string | undefined;
  /** True when this run created the target collection. */
  created: boolean;
}

export interface ReconcileProgress {
  facesChecked: number;
  orphansDeleted: number;
  /** Faces no record keeps that nothing proves this tool indexed: never deleted. */
  unattributedKept: number;
}

const boxOf = (box: { Width?: number; Height?: number; Left?: number; Top?: number }) => ({
  Width: box.Width ?? 0,
  Height: box.Height ?? 0,
  Left: box.Left ?? 0,
  Top: box.Top ?? 0,
});

/** One Rekognition client per region asked for, made on first use. */
export function clientPerRegion(): (region: string) => RekognitionClient {
  const clients = new Map<string, RekognitionClient>();
  return (region) => {
    let client = clients.get(region);
    if (!client) {
      client = cancelledWithActivity(new RekognitionClient({ region, requestHandler: REQUEST_LIMITS }));
      clients.set(region, client);
    }
    return client;
  };
}

/** The ledger's name for a record that holds no indexing: its image was not indexed. */
const NO_INDEXING = '';
/** The old collection, and its region when it is not the worker's. */
export interface SourceCollection {
  collectionId: string;
  region?: string;
}

/**
 * A source that is gone, or that these credentials may not list, stays so: no retry helps, and no face may be checked.
 */
function sourceRefusal(error: unknown, collectionId: string): unknown {
  if (error instanceof ResourceNotFoundException) {
    return ApplicationFailure.create({
      type: ReasonCode.SourceCollectionNotFound,
      message: `the source collection ${collectionId} no longer exists, so no old face can be checked against it`,
      nonRetryable: true,
    });
  }
  if (error instanceof AccessDeniedException) {
    return ApplicationFailure.create({
      type: ReasonCode.AccessDenied,
      message: `these credentials may not list the faces of source collection ${collectionId} (rekognition:ListFaces), which a run checks each old face against before indexing its image: ${error.message}`,
      nonRetryable: true,
    });
  }
  return error;
}

/**
 * Asks the source collection which of these old faces it still holds, and the user of each: a
 * ListFaces filtered by FaceIds, 4096 at a time, so a batch of a thousand records costs a call or two.
 */
export function createSourceFaceFinder(rekognition: RekognitionClient, rekognitionIn = clientPerRegion()) {
  return async ({ collectionId, region }: SourceCollection, faceIds: readonly string[]): Promise<SourceFaces> => {
    const client = region === undefined ? rekognition : rekognitionIn(region);
    const found = new Map<string, string | undefined>();
    const unique = [...new Set(faceIds)];
    for (let start = 0; start < unique.length; start += FACES_PER_PAGE) {
      let NextToken: string | undefined;
      do {
        const page = await client
          .send(
            new ListFacesCommand({
              CollectionId: collectionId,
              FaceIds: unique.slice(start, start + FACES_PER_PAGE),
              MaxResults: FACES_PER_PAGE,
              NextToken,
            }),
          )
          .catch((error: unknown) => {
            throw sourceRefusal(error, collectionId);
          });
        for (const face of page.Faces ?? []) if (face.FaceId) found.set(face.FaceId, face.UserId);
        NextToken = page.NextToken;
      } while (NextToken);
    }
    return found;
  };
}

/** Heartbeats while reconcile waits out its grace: well inside its heartbeat timeout. */
const HEARTBEAT_EVERY_MS = 10_000;

export function createRekognitionActivities({
  rekognition,
  indexFacesClient,
  s3,
  config,
  orphanGraceMs = REINDEX_IMAGE_ATTEMPT_MS + 30_000,
  rekognitionIn = clientPerRegion(),
  publishOutcome,
}: {
  rekognition: RekognitionClient;
  /** IndexFaces goes through a client of its own that does not retry (AwsClients.indexFaces). */
  indexFacesClient: RekognitionClient;
  s3: S3Client;
  config: Pick<Config, 'bucket'>;
  /**
   * How long reconcile waits before deleting a face the ledger does not know: another run indexing
   * into the same target records its faces within one reindexImage attempt.
   */
  orphanGraceMs?: number;
  /** A client for a source collection in another region. */
  rekognitionIn?: (region: string) => RekognitionClient;
  /** Where an image asked to publish its own outcome sends it. */
  publishOutcome?: PublishOutcome;
}) {
  const ledger = createLedger(s3, config.bucket);
  const deleteFaces = createFaceDeleter(rekognition);

  async function describeCollection(
    CollectionId: string,
    client = rekognition,
  ): Promise<DescribeCollectionCommandOutput | undefined> {
    try {
      return await client.send(new DescribeCollectionCommand({ CollectionId }));
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return undefined;
      throw deniedForGood(error, CollectionId);
    }
  }

  async function faceModelVersion(CollectionId: string, client = rekognition): Promise<string | undefined> {
    const described = await describeCollection(CollectionId, client);
    return described && (described.FaceModelVersion ?? '');
  }

  /**
   * Tags a collection the run has taken as this tool's,
   * which the worker's IAM policy asks of every target it writes to.
   */
  async function tagAsMigrationTarget(CollectionId: string): Promise<void> {
    const arn = (await describeCollection(CollectionId))?.CollectionARN;
    // Just created or claimed: a collection not described yet is a moment of eventual consistency.
    if (!arn) throw new Error(`the collection ${CollectionId} is not described yet, so it cannot be tagged`);
    const ResourceArn = arn.startsWith('arn:') ? arn : `arn:${arn}`;
    await rekognition
      .send(new TagResourceCommand({ ResourceArn, Tags: { [MIGRATION_TARGET_TAG.Key]: MIGRATION_TARGET_TAG.Value } }))
      .catch((error: unknown) => {
        throw deniedForGood(error, CollectionId);
      });
  }

  /** Missing permissions do not come back on a retry: the run fails at once, saying which. */
  function deniedForGood(error: unknown, CollectionId: string): unknown {
    if (!(error instanceof AccessDeniedException)) return error;
    return ApplicationFailure.create({
      type: ReasonCode.AccessDenied,
      message: `these credentials may not use collection ${CollectionId}: ${error.message}`,
      nonRetryable: true,
    });
  }

  async function createCollection(CollectionId: string): Promise<boolean> {
    try {
      await rekognition.send(
        new CreateCollectionCommand({ CollectionId, Tags: { [MIGRATION_TARGET_TAG.Key]: MIGRATION_TARGET_TAG.Value } }),
      );
      return true;
    } catch (error) {
      // A retried attempt, or a concurrent run, created it first.
      if (error instanceof ResourceAlreadyExistsException) return false;
      throw deniedForGood(error, CollectionId);
    }
  }

  /** A run may only write into a collection this tool created, or one holdsFacesNotOurs lets it take. */
  async function claimTarget(runId: string, CollectionId: string, created: boolean): Promise<void> {
    if (!created && (await holdsFacesNotOurs(rekognition, ledger, CollectionId))) {
      throw ApplicationFailure.create({
        type: ReasonCode.TargetNotOwned,
        message: `the target collection ${CollectionId} holds faces this tool did not index, which the run's reconcile phase would delete; migrate into a new collection`,
        nonRetryable: true,
      });
    }
    await ledger.claimCollection(CollectionId, runId);
  }

  /**
   * IndexFaces calls an empty object an invalid format; the operator has to know it is empty. An
   * object S3 will not describe is not called empty: the verdict stands.
   */
  async function isEmptyObject({ Bucket, Key }: ImageRecord): Promise<boolean> {
    try {
      const { ContentLength } = await s3.send(new HeadObjectCommand({ Bucket, Key }));
      return ContentLength === 0;
    } catch (error) {
      const status = httpStatusOf(error);
      if (status !== undefined && status < 500) return false;
      throw error;
    }
  }

  /** One IndexFaces call, its latency recorded whatever it answers. */
  async function sendIndexFaces(command: IndexFacesCommand): Promise<IndexFacesCommandOutput> {
    const started = performance.now();
    try {
      const response = await indexFacesClient.send(command);
      recordIndexFacesLatency(performance.now() - started, 'ok');
      return response;
    } catch (error) {
      recordIndexFacesLatency(performance.now() - started, indexFacesOutcomeOf(error));
      throw error;
    }
  }

  /** Tells the record that keeps a face that the face is gone, so its indexing is not reused. */
  async function noteGone(collectionId: string, faceId: string): Promise<void> {
    const claim = await ledger.claim(collectionId, faceId);
    const current = claim && (await ledger.current(collectionId, claim.identity));
    if (!claim || !current || current.gone?.includes(faceId)) return;
    await ledger.setCurrent(collectionId, claim.identity, {
      ...current,
      kept: current.kept.filter((id) => id !== faceId),
      gone: [...(current.gone ?? []), faceId],
    });
  }

  /**
   * IndexFaces refuses an image under 80 pixels a side with the same InvalidParameterException as a
   * bad parameter; the image's own first bytes tell which. An image S3 will not give is not small.
   */
  async function isTooSmall({ Bucket, Key }: ImageRecord): Promise<string | undefined> {
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=0-${DIMENSION_BYTES - 1}` }));
      const verdict = dimensionsVerdict((await object.Body?.transformToByteArray()) ?? new Uint8Array());
      return verdict.ok ? undefined : verdict.detail;
    } catch (error) {
      const status = httpStatusOf(error);
      if (status !== undefined && status < 500) return undefined;
      throw error;
    }
  }

  async function indexFaces(input: ReindexImageInput): Promise<IndexingRecord> {
    const { record, options } = input;
    try {
      const response = await sendIndexFaces(
        new IndexFacesCommand({
          CollectionId: input.targetCollectionId,
          Image: { S3Object: { Bucket: record.Bucket, Name: record.Key } },
          ExternalImageId: record.ExternalImageId,
          QualityFilter: options.qualityFilter,
          MaxFaces: options.maxFaces,
          DetectionAttributes: ['DEFAULT'],
        }),
      );
      const faces = (response.FaceRecords ?? []).flatMap(({ Face }) =>
        Face?.FaceId && Face.ImageId && Face.BoundingBox
          ? [{ FaceId: Face.FaceId, ImageId: Face.ImageId, BoundingBox: boxOf(Face.BoundingBox) }]
          : [],
      );
      const filtered = (response.UnindexedFaces ?? []).flatMap(({ FaceDetail, Reasons }) =>
        FaceDetail?.BoundingBox ? [{ BoundingBox: boxOf(FaceDetail.BoundingBox), reasons: Reasons ?? [] }] : [],
      );
      return { faceModelVersion: response.FaceModelVersion ?? '', faces, filtered };
    } catch (error) {
      if (error instanceof ResourceNotFoundException) {
        throw ApplicationFailure.create({
          type: ReasonCode.TargetCollectionNotFound,
          message: `the target collection ${input.targetCollectionId} does not exist`,
          nonRetryable: true,
        });
      }
      let reason = permanentReason(error);
      if (reason === undefined) throw error;
      let why = '';
      if (reason === ReasonCode.InvalidImageFormat && (await isEmptyObject(record))) {
        reason = ReasonCode.ImageEmpty;
        why = '; the object is empty (0 bytes)';
      } else if (reason === ReasonCode.InvalidRecord) {
        const small = await isTooSmall(record);
        if (small !== undefined) {
          reason = ReasonCode.ImageTooSmall;
          why = `; the image is ${small}`;
        }
      }
      throw ApplicationFailure.create({
        type: reason,
        message:
          reason === ReasonCode.TargetCollectionFull
            ? `the target collection ${input.targetCollectionId} is full: ${(error as Error).message}`
            : `IndexFaces refused ${imageRef(record.Bucket, record.Key)}: ${(error as Error).message}${why}`,
        nonRetryable: true,
      });
    }
  }

  /**
   * The indexing of this image under this run's settings: the one an earlier attempt or run
   * recorded, or a new one. When another attempt recorded its indexing while this one was indexing,
   * this one's faces are surplus.
   */
  async function indexOnce(input: ReindexImageInput): Promise<{ indexing: IndexingRecord; reused: boolean }> {
    const target = input.targetCollectionId;
    // A first attempt whose batch found no indexing calls IndexFaces straight away; the conditional
    // write below still catches an indexing recorded since.
    const mayBeIndexed = input.indexedBefore !== false || activityInfo().attempt > 1;
    const earlier = mayBeIndexed ? await ledger.findIndexing(target, input.record, input.options) : undefined;
    if (earlier) return { indexing: earlier, reused: true };
    const indexing = await indexFaces(input);
    if (await ledger.recordIndexing(target, input.record, input.options, indexing)) return { indexing, reused: false };
    const winner = await ledger.findIndexing(target, input.record, input.options);
    if (!winner)
      throw new Error(
        `the indexing of ${imageRef(input.record.Bucket, input.record.Key)} was recorded but cannot be read`,
      );
    // Faces the winner does not name are surplus. The service may have answered both attempts with
    // the same FaceIds, and the record may be this attempt's own (the SDK retried a write whose
    // answer was lost): then nothing is.
    const recorded = new Set(winner.faces.map((face) => face.FaceId));
    await deleteFaces(
      target,
      indexing.faces.map((face) => face.FaceId).filter((faceId) => !recorded.has(faceId)),
    );
    return { indexing: winner, reused: true };
  }

  /**
   * An image holding old faces the source no longer holds is not indexed: its faces go to review,
   * and whatever an earlier run indexed of it leaves the target, with the rows that named it. The
   * ledger keeps no face for the record from then on.
   */
  async function forgetImage(input: ReindexImageInput, gone: string[]): Promise<ReindexImageResult> {
    const target = input.targetCollectionId;
    const identity = identityOf(input.record, input.options.indexingScope);
    const outcome = erasureOutcome(input.record, gone, input.runId, input.recordIndex);
    const previous = await ledger.current(target, identity);
    const earlierFaces = previous?.faces ?? [];
    if (earlierFaces.length === 0) return { ...outcome, reusedEarlierIndexing: false };
    // Every attempt takes back every row an earlier run wrote for these faces:
    // one that crashed after the ledger write still did not.
    const retractions: RowRetraction[] = input.record.Faces.map((face) => ({
      OldFaceId: face.FaceId,
      CollectionId: target,
      FaceIds: earlierFaces,
    }));
    await ledger.setCurrent(target, identity, {
      indexing: NO_INDEXING,
      kept: [],
      faces: earlierFaces,
      runId: input.runId,
    });
    await deleteFaces(target, earlierFaces);
    return { ...outcome, reusedEarlierIndexing: false, retractions };
  }

  /**
   * Indexes the image once across attempts, decides what became of each face, and leaves the
   * target holding exactly the faces this record keeps: its other faces, from this indexing or an
   * earlier one under other settings, are deleted. The ledger says which faces the record keeps
   * before any is deleted, so a crash in between is finished by the retry or by reconcile.
   */
  async function reindexImageOnce(input: ReindexImageInput): Promise<ReindexImageResult> {
    if (input.oldFacesGone?.length) return forgetImage(input, input.oldFacesGone);
    const target = input.targetCollectionId;
    const identity = identityOf(input.record, input.options.indexingScope);
    let { indexing, reused } = await indexOnce(input);
    const previous = await ledger.current(target, identity);
    const gone = new Set(previous?.gone ?? []);
    if (reused && indexing.faces.some((face) => gone.has(face.FaceId))) {
      // A face of the recorded indexing was deleted since: its row would name a face the target lacks.
      indexing = await indexFaces(input);
      await ledger.replaceIndexing(target, input.record, input.options, indexing);
      reused = false;
    }
    // The image entries let reconcile attribute crash leftovers to this tool; written on every
    // attempt because a crash may have come between the indexing record and them.
    for (const imageId of new Set(indexing.faces.map((face) => face.ImageId))) {
      await ledger.recordImage(target, imageId, { runId: input.runId, recordIndex: input.recordIndex });
    }
    const context: RunContext = {
      runId: input.runId,
      iouThreshold: input.options.iouThreshold,
      sourceCollectionId: input.sourceCollectionId,
      targetCollectionId: target,
      faceModelVersion: indexing.faceModelVersion,
      migratedAt: new Date().toISOString(),
      recordIndex: input.recordIndex,
      ...(input.options.rowsExpireDays === undefined ? {} : { rowsExpireDays: input.options.rowsExpireDays }),
    };
    const decided = decideOutcome(input.record, indexing.faces, context, indexing.filtered);
    const held = await ledger.claimFaces(
      target,
      indexing.faces.map((face) => face.FaceId),
      { identity, runId: input.runId },
    );
    const outcome = withoutHeldFaces(decided, held, input.record, context);
    const indexingKey = ledger.indexingKey(input.record, input.options);
    const { kept, faces, doomed, retractions } = settleFaces(
      outcome,
      {
        indexing: indexingKey,
        indexed: indexing.faces,
        held,
        unmatched: input.options.unmatched,
        targetCollectionId: target,
      },
      previous,
    );
    await ledger.setCurrent(target, identity, { indexing: indexingKey, kept, faces, runId: input.runId });
    await deleteFaces(target, doomed);
    countMatchedFaces(outcome.results.length);
    return { ...outcome, reusedEarlierIndexing: reused, ...(retractions.length > 0 ? { retractions } : {}) };
  }

  return {
    /**
     * Makes sure the target collection exists, creating it on the service's newest face model, and
     * refuses a target whose model is not newer than the source's unless forced.
     */
    prepareTarget: async (input: PrepareTargetInput): Promise<PreparedTarget> => {
      const { targetCollectionId, sourceCollectionId } = input;
      let sourceFaceModelVersion: string | undefined;
      if (sourceCollectionId !== undefined) {
        const client = input.sourceRegion === undefined ? rekognition : rekognitionIn(input.sourceRegion);
        sourceFaceModelVersion = await faceModelVersion(sourceCollectionId, client);
        if (sourceFaceModelVersion === undefined) {
          throw ApplicationFailure.create({
            type: ReasonCode.SourceCollectionNotFound,
            message: `the source collection ${sourceCollectionId} does not exist${input.sourceRegion === undefined ? '' : ` in ${input.sourceRegion}`}`,
            nonRetryable: true,
          });
        }
        // Every batch lists the source's faces before indexing:
        // a worker that may not fails the run now, not every batch.
        await client
          .send(new ListFacesCommand({ CollectionId: sourceCollectionId, MaxResults: 1 }))
          .catch((error: unknown) => {
            throw sourceRefusal(error, sourceCollectionId);
          });
      }
      let targetFaceModelVersion = await faceModelVersion(targetCollectionId);
      const created = targetFaceModelVersion === undefined && (await createCollection(targetCollectionId));
      targetFaceModelVersion ??= (await faceModelVersion(targetCollectionId)) ?? '';
      if (
        sourceFaceModelVersion !== undefined &&
        !input.force &&
        !isNewerFaceModel(targetFaceModelVersion, sourceFaceModelVersion)
      ) {
        // A collection this run made only to refuse it would be litter.
        if (created) await rekognition.send(new DeleteCollectionCommand({ CollectionId: targetCollectionId }));
        throw ApplicationFailure.create({
          type: ReasonCode.TargetModelNotNewer,
          message: `the target collection ${targetCollectionId} uses face model ${targetFaceModelVersion}, not newer than ${sourceFaceModelVersion} of ${sourceCollectionId}; pass force to migrate anyway`,
          nonRetryable: true,
        });
      }
      await claimTarget(input.runId, targetCollectionId, created);
      // Created with the tag; a collection claimed empty, or taken before targets were tagged, gets it now.
      if (!created) await tagAsMigrationTarget(targetCollectionId);
      return { targetFaceModelVersion, sourceFaceModelVersion, created };
    },

    /**
     * reindexImageOnce, with an end to retries: throttling is waited out however long it lasts, but
     * other failures (a 5xx that never clears, a ledger object that cannot be read, a dying worker)
     * end after `retryForMs` as RETRIES_EXHAUSTED, with the last error, for the batch to review.
     */
    reindexImage: async (input: ReindexImageInput): Promise<ReindexImageResult | ImageTally> => {
      const { attempt } = activityInfo();
      const carried = activityInfo().heartbeatDetails as AttemptHistory | undefined;
      const history: AttemptHistory =
        attempt > 1 && carried === undefined ? { faultSinceMs: Date.now() } : { ...carried };
      // The first attempt has no history to keep; a retry records its own at once, in case it dies too.
      if (attempt > 1) heartbeat(history);
      try {
        return await whileAlive(async () => {
          const outcome = await reindexImageOnce(input);
          if (!input.publish) return outcome;
          if (!publishOutcome)
            throw new Error('reindexImage was asked to publish its outcome but has nowhere to send it');
          await publishOutcome(outcome);
          return tallyOf(outcome);
        }, history);
      } catch (error) {
        const cancelled = error instanceof CancelledFailure || Context.current().cancellationSignal.aborted;
        if ((error instanceof ApplicationFailure && error.nonRetryable) || cancelled) throw error;
        if (isThrottling(error)) {
          heartbeat({});
          throw error;
        }
        const faultSinceMs = history.faultSinceMs ?? Date.now();
        const retryForMs = input.retryForMs ?? DEFAULT_RETRY_MINUTES * 60_000;
        if (Date.now() - faultSinceMs >= retryForMs) {
          const failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
          throw ApplicationFailure.create({
            type: ReasonCode.RetriesExhausted,
            message: `gave up on ${imageRef(input.record.Bucket, input.record.Key)} after ${attempt} attempts over ${Math.round((Date.now() - faultSinceMs) / 60_000)} min; the last failed with ${failure}`,
            nonRetryable: true,
          });
        }
        heartbeat({ faultSinceMs });
        throw error;
      }
    },

    /**
     * Deletes every face of the target that no record keeps and the ledger proves is this tool's:
     * faces indexed by an attempt that crashed before recording them, and faces of records indexed
     * again since. A face another run indexing into the same target right now has not recorded yet
     * looks the same, so such faces are looked at again after the grace and only those still not
     * kept go. A face nothing attributes to this tool stays, and is counted. Pages are keyed by
     * FaceId, so deleting while paging skips nothing; the page token is heartbeated so a retry resumes.
     */
    reconcile: async (targetCollectionId: string): Promise<ReconcileProgress> => {
      const resumed = activityInfo().heartbeatDetails as (ReconcileProgress & { nextToken?: string }) | undefined;
      const progress: ReconcileProgress = {
        facesChecked: resumed?.facesChecked ?? 0,
        orphansDeleted: resumed?.orphansDeleted ?? 0,
        unattributedKept: resumed?.unattributedKept ?? 0,
      };
      const finder = createOrphanFinder(ledger, targetCollectionId);
      let nextToken = resumed?.nextToken;
      do {
        const page = await rekognition.send(
          new ListFacesCommand({ CollectionId: targetCollectionId, MaxResults: FACES_PER_PAGE, NextToken: nextToken }),
        );
        const faces = page.Faces ?? [];
        let finding: ReconcileFinding = await finder.classify(faces);
        if (finding.leftovers.length > 0) {
          for (let waited = 0; waited < orphanGraceMs; waited += HEARTBEAT_EVERY_MS) {
            heartbeat({ ...progress, nextToken });
            await sleep(Math.min(HEARTBEAT_EVERY_MS, orphanGraceMs - waited));
          }
          const again = new Set(finding.leftovers.map((face) => face.FaceId));
          finding = {
            ...(await finder.classify(faces.filter((face) => again.has(face.FaceId ?? '')))),
            unattributed: finding.unattributed,
          };
        }
        const orphans = finding.leftovers.map((face) => face.FaceId);
        if (orphans.length > 0) {
          log.warn('Deleting faces of the target that no record keeps', {
            targetCollectionId,
            orphans: orphans.length,
          });
          await deleteFaces(targetCollectionId, orphans);
        }
        if (finding.unattributed.length > 0) {
          log.warn('Keeping faces of the target that nothing attributes to this tool', {
            targetCollectionId,
            faces: finding.unattributed.length,
          });
        }
        progress.facesChecked += faces.length;
        progress.orphansDeleted += orphans.length;
        progress.unattributedKept += finding.unattributed.length;
        nextToken = page.NextToken;
        heartbeat({ ...progress, nextToken });
      } while (nextToken);
      return progress;
    },

    /**
     * Deletes the new faces of rows the results table refused as duplicates (see drainResults), so
     * the target holds only faces a row names. A collection that is gone holds no face to delete.
     */
    deleteDuplicateFaces: async (duplicates: DuplicateRow[]): Promise<void> => {
      const byCollection = new Map<string, string[]>();
      for (const { row, surplusFaceId } of duplicates) {
        if (surplusFaceId !== undefined)
          byCollection.set(row.CollectionId, [...(byCollection.get(row.CollectionId) ?? []), surplusFaceId]);
      }
      for (const [collectionId, faceIds] of byCollection) {
        // Noted before deleting: an indexing reused later must not name a face that is gone.
        await eachInSlices(faceIds, (faceId) => noteGone(collectionId, faceId));
        try {
          await deleteFaces(collectionId, faceIds);
        } catch (error) {
          if (!(error instanceof ResourceNotFoundException)) throw error;
        }
      }
    },
  };
}
