/**
 * Rekognition users, rebuilt from the results table: for every migrated face whose old face had a
 * UserId, the user is created in the target (CreateUser) and the new face associated with it
 * (AssociateFaces). Both calls carry a ClientRequestToken derived from the run, so a retried
 * attempt repeats nothing. The run's rows are read page by page with the position heartbeated, so
 * memory does not grow with the run and a retry resumes where the last attempt was.
 *
 * The rows are found through the index of rows by run when the run's drain saw all of them there:
 * then the phase reads the run's rows only, however many other runs share the table. Otherwise (a
 * table without the index, a run that could not count its rows) it scans the whole table.
 */
import {
  AssociateFacesCommand,
  ConflictException,
  CreateUserCommand,
  type RekognitionClient,
  ServiceQuotaExceededException,
} from '@aws-sdk/client-rekognition';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchGetCommand, type DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { activityInfo, heartbeat } from '@temporalio/activity';
import type { Config } from '../domain/config';
import type { ResultRow, ReviewItem } from '../domain/outcomes';
import { addReasonCounts, ReasonCode, type ReasonCounts } from '../domain/reasons';
import { requestToken } from '../aws/rekognition';
import { createReviewSender } from './queues';
import { ROWS_BY_RUN_INDEX, SETTLED_DUPLICATES } from '../stores/results-table';

export interface MigrateUsersInput {
  runId: string;
  targetCollectionId: string;
  /** The run's drain found every row the run sent in the index of rows by run. */
  rowsIndexed?: boolean;
}

export interface UsersMigrated {
  usersCreated: number;
  facesAssociated: number;
  /** Faces Rekognition would not associate, by reason; each went to the review DLQ. */
  refusedByReason: ReasonCounts;
  /**
   * The run's rows in the table, counted as the phase reads them: unlike the drains' own counts, no
   * worker killed between a write and its heartbeat loses any. Absent from runs before the count.
   */
  rowsOfRun?: number;
  /**
   * Duplicates settled against the run's rows, whichever run's drain settled them; absent from runs
   * before the count, as rowsOfRun.
   */
  duplicatesOfRun?: number;
}

/** AssociateFaces takes at most 100 faces a call, and a user holds at most 100 faces. */
const FACES_PER_USER = 100;
const ROWS_PER_PAGE = 1000;
/** BatchGetItem reads at most 100 keys a call. */
const KEYS_PER_BATCH_GET = 100;

const PROJECTED = ['OldFaceId', 'FaceId', 'UserId', 'Bucket', 'Key', 'ExternalImageId', SETTLED_DUPLICATES] as const;
/** Read with each row found through the index, to leave out what the scan's filter leaves out. */
const CHECKED = ['RunId', 'CollectionId', 'DeletedAt'] as const;

type UserRow = Pick<ResultRow, 'OldFaceId' | 'FaceId' | 'UserId' | 'Bucket' | 'Key' | 'ExternalImageId'> & {
  UserId: string;
};
type RowOfRun = Omit<UserRow, 'UserId'> & { UserId?: string; [SETTLED_DUPLICATES]?: Set<string> };
type StartKey = Record<string, unknown> | undefined;

/** Bucket and Key are DynamoDB reserved words, so every attribute goes by a placeholder. */
function projection(attributes: readonly string[]) {
  return {
    ProjectionExpression: attributes.map((_, i) => `#a${i}`).join(', '),
    ExpressionAttributeNames: Object.fromEntries(attributes.map((attribute, i) => [`#a${i}`, attribute])),
  };
}

export function createUserActivities({
  rekognition,
  dynamodb,
  sqs,
  config,
}: {
  rekognition: RekognitionClient;
  dynamodb: DynamoDBDocumentClient;
  sqs: SQSClient;
  config: Pick<Config, 'resultsTable' | 'resultsQueueUrl' | 'reviewDlqUrl'>;
}) {
  const { sendToReview } = createReviewSender({ sqs, config });

  /** Every row of the run in the target, users or not, from the whole table: the rows without a user are counted. */
  async function scanPage(input: MigrateUsersInput, startKey: StartKey) {
    const page = await dynamodb.send(
      new ScanCommand({
        TableName: config.resultsTable,
        FilterExpression: 'RunId = :run AND CollectionId = :target AND attribute_not_exists(DeletedAt)',
        ExpressionAttributeValues: { ':run': input.runId, ':target': input.targetCollectionId },
        ...projection(PROJECTED),
        Limit: ROWS_PER_PAGE,
        ExclusiveStartKey: startKey,
      }),
    );
    return { rows: (page.Items ?? []) as RowOfRun[], nextKey: page.LastEvaluatedKey };
  }

  /** The rows of the table with these keys, read consistently; none left unread. */
  async function rowsWithKeys(keys: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    let unread = keys;
    for (let attempt = 1; unread.length > 0; attempt += 1) {
      if (attempt > 1) await sleep(Math.min(50 * 2 ** attempt, 5_000));
      const { Responses, UnprocessedKeys } = await dynamodb.send(
        new BatchGetCommand({
          RequestItems: {
            [config.resultsTable]: { Keys: unread, ConsistentRead: true, ...projection([...PROJECTED, ...CHECKED]) },
          },
        }),
      );
      rows.push(...(Responses?.[config.resultsTable] ?? []));
      unread = UnprocessedKeys?.[config.resultsTable]?.Keys ?? [];
    }
    return rows;
  }

  /** The same rows as scanPage's, found through the index of rows by run and read from the table. */
  async function indexedPage(input: MigrateUsersInput, startKey: StartKey) {
    const page = await dynamodb.send(
      new QueryCommand({
        TableName: config.resultsTable,
        IndexName: ROWS_BY_RUN_INDEX,
        KeyConditionExpression: 'RunId = :run',
        ExpressionAttributeValues: { ':run': input.runId },
        ProjectionExpression: 'OldFaceId',
        Limit: ROWS_PER_PAGE,
        ExclusiveStartKey: startKey,
      }),
    );
    const keys = page.Items ?? [];
    const batches = Array.from({ length: Math.ceil(keys.length / KEYS_PER_BATCH_GET) }, (_, i) =>
      keys.slice(i * KEYS_PER_BATCH_GET, (i + 1) * KEYS_PER_BATCH_GET),
    );
    const read = (await Promise.all(batches.map(rowsWithKeys))).flat();
    // The index may lag the table: a row another run took over, or deleted since, is left out.
    const rows = read.filter(
      (row) =>
        row.RunId === input.runId && row.CollectionId === input.targetCollectionId && row.DeletedAt === undefined,
    );
    return { rows: rows as RowOfRun[], nextKey: page.LastEvaluatedKey };
  }

  /** True when this call created the user; false when it was there already. */
  async function ensureUser(input: MigrateUsersInput, UserId: string): Promise<boolean> {
    try {
      await rekognition.send(
        new CreateUserCommand({
          CollectionId: input.targetCollectionId,
          UserId,
          ClientRequestToken: requestToken(input.runId, 'create', UserId),
        }),
      );
      return true;
    } catch (error) {
      // Created by another run or by hand: the user is there, which is what matters.
      if (error instanceof ConflictException) return false;
      throw error;
    }
  }

  function refusal(input: MigrateUsersInput, row: UserRow, reason: ReasonCode, detail: string): ReviewItem {
    return {
      reason,
      detail,
      runId: input.runId,
      Bucket: row.Bucket,
      Key: row.Key,
      ExternalImageId: row.ExternalImageId,
      face: undefined,
      record: { OldFaceId: row.OldFaceId, FaceId: row.FaceId, UserId: row.UserId },
    };
  }

  async function associate(
    input: MigrateUsersInput,
    UserId: string,
    rows: UserRow[],
  ): Promise<{ associated: number; refused: ReviewItem[] }> {
    const refused: ReviewItem[] = [];
    let associated = 0;
    for (let start = 0; start < rows.length; start += FACES_PER_USER) {
      const group = rows.slice(start, start + FACES_PER_USER);
      const FaceIds = group.map((row) => row.FaceId);
      try {
        const response = await rekognition.send(
          new AssociateFacesCommand({
            CollectionId: input.targetCollectionId,
            UserId,
            FaceIds,
            ClientRequestToken: requestToken(input.runId, 'associate', UserId, ...[...FaceIds].sort()),
          }),
        );
        associated += response.AssociatedFaces?.length ?? 0;
        for (const failure of response.UnsuccessfulFaceAssociations ?? []) {
          const row = group.find((candidate) => candidate.FaceId === failure.FaceId);
          if (row)
            refused.push(
              refusal(
                input,
                row,
                ReasonCode.UserAssociationRefused,
                `AssociateFaces refused: ${(failure.Reasons ?? []).join(', ')}`,
              ),
            );
        }
      } catch (error) {
        if (!(error instanceof ServiceQuotaExceededException)) throw error;
        refused.push(
          ...group.map((row) =>
            refusal(
              input,
              row,
              ReasonCode.UserFaceLimit,
              `user ${UserId} already holds the ${FACES_PER_USER} faces Rekognition allows`,
            ),
          ),
        );
      }
    }
    return { associated, refused };
  }

  return {
    migrateUsers: async (input: MigrateUsersInput): Promise<UsersMigrated> => {
      const resumed = activityInfo().heartbeatDetails as
        (UsersMigrated & { startKey?: Record<string, unknown> }) | undefined;
      const totals: UsersMigrated = {
        usersCreated: resumed?.usersCreated ?? 0,
        facesAssociated: resumed?.facesAssociated ?? 0,
        refusedByReason: { ...resumed?.refusedByReason },
        // An attempt resumed from one that did not count (code before the count) cannot count the pages it skips.
        rowsOfRun: resumed === undefined ? 0 : resumed.rowsOfRun,
        duplicatesOfRun: resumed === undefined ? 0 : resumed.duplicatesOfRun,
      };
      let startKey: StartKey = resumed?.startKey;
      // A user whose faces span pages is created once; a replayed token would answer "created" again.
      const ensured = new Set<string>();
      do {
        const page = input.rowsIndexed ? await indexedPage(input, startKey) : await scanPage(input, startKey);
        const byUser = new Map<string, UserRow[]>();
        const { rows } = page;
        for (const row of rows)
          if (row.UserId !== undefined) byUser.set(row.UserId, [...(byUser.get(row.UserId) ?? []), row as UserRow]);
        const refused: ReviewItem[] = [];
        // A page may take longer than the heartbeat timeout; its users are redone safely (tokens),
        // so the heartbeat keeps saying where the page began and what was done before it.
        const atPageStart = { ...totals, refusedByReason: { ...totals.refusedByReason }, startKey };
        for (const [userId, rows] of byUser) {
          heartbeat(atPageStart);
          if (!ensured.has(userId) && (await ensureUser(input, userId))) totals.usersCreated += 1;
          ensured.add(userId);
          const outcome = await associate(input, userId, rows);
          totals.facesAssociated += outcome.associated;
          refused.push(...outcome.refused);
        }
        await sendToReview(refused);
        for (const item of refused) addReasonCounts(totals.refusedByReason, item.reason);
        if (totals.rowsOfRun !== undefined) totals.rowsOfRun += rows.length;
        if (totals.duplicatesOfRun !== undefined)
          for (const row of rows) totals.duplicatesOfRun += row[SETTLED_DUPLICATES]?.size ?? 0;
        startKey = page.nextKey;
        heartbeat({ ...totals, refusedByReason: { ...totals.refusedByReason }, startKey });
      } while (startKey);
      return totals;
    },
  };
}
