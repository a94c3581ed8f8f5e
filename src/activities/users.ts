/**
 * Rekognition users, rebuilt from the results table: for every migrated face whose old face had a
 * UserId, the user is created in the target (CreateUser) and the new face associated with it
 * (AssociateFaces). Both calls carry a ClientRequestToken derived from the run, so a retried
 * attempt repeats nothing. The table is scanned page by page with the scan position heartbeated,
 * so memory does not grow with the table and a retry resumes where the last attempt was.
 */
import {
  AssociateFacesCommand,
  ConflictException,
  CreateUserCommand,
  type RekognitionClient,
  ServiceQuotaExceededException,
} from '@aws-sdk/client-rekognition';
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { activityInfo, heartbeat } from '@temporalio/activity';
import type { Config } from '../domain/config';
import type { ResultRow, ReviewItem } from '../domain/outcomes';
import { addReasonCounts, ReasonCode, type ReasonCounts } from '../domain/reasons';
import { requestToken } from '../aws/rekognition';
import { createReviewSender } from './queues';
import { SETTLED_DUPLICATES } from '../stores/results-table';

export interface MigrateUsersInput {
  runId: string;
  targetCollectionId: string;
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
const ROWS_PER_SCAN_PAGE = 1000;

const PROJECTED = ['OldFaceId', 'FaceId', 'UserId', 'Bucket', 'Key', 'ExternalImageId', SETTLED_DUPLICATES] as const;

type UserRow = Pick<ResultRow, 'OldFaceId' | 'FaceId' | 'UserId' | 'Bucket' | 'Key' | 'ExternalImageId'> & {
  UserId: string;
};

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
      let startKey = resumed?.startKey;
      // A user whose faces span pages is created once; a replayed token would answer "created" again.
      const ensured = new Set<string>();
      do {
        const page = await dynamodb.send(
          new ScanCommand({
            TableName: config.resultsTable,
            // Every row of the run, users or not: the scan reads the whole table either way, and the
            // rows without a user are counted.
            FilterExpression: 'RunId = :run AND CollectionId = :target AND attribute_not_exists(DeletedAt)',
            ExpressionAttributeValues: { ':run': input.runId, ':target': input.targetCollectionId },
            // Bucket and Key are DynamoDB reserved words, so every attribute goes by a placeholder.
            ProjectionExpression: PROJECTED.map((_, i) => `#a${i}`).join(', '),
            ExpressionAttributeNames: Object.fromEntries(PROJECTED.map((attribute, i) => [`#a${i}`, attribute])),
            Limit: ROWS_PER_SCAN_PAGE,
            ExclusiveStartKey: startKey,
          }),
        );
        const byUser = new Map<string, UserRow[]>();
        const rows = (page.Items ?? []) as (Omit<UserRow, 'UserId'> & {
          UserId?: string;
          [SETTLED_DUPLICATES]?: Set<string>;
        })[];
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
        startKey = page.LastEvaluatedKey;
        heartbeat({ ...totals, refusedByReason: { ...totals.refusedByReason }, startKey });
      } while (startKey);
      return totals;
    },
  };
}
