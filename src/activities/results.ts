/**
 * DynamoDB: the results table, filled from the results queue. A message is deleted only after its
 * row is written, so a crash between the two brings the row again; the copy finds its row in the
 * table and is not written again.
 *
 * Each row is a put keyed by OldFaceId, on one condition: no row of the same run holds that old
 * face. A row of an earlier run (a re-run, a redrive, another target) is overwritten. A row the
 * condition refuses with another new face comes from a second record of the file naming the same old face: drainResults
 * hands it back with its message still in the queue, the run deletes its new face and sends it to
 * the review DLQ, and settleDuplicates then deletes the message and marks the holding row, so a
 * copy of that message arriving later is known as settled instead of refused a second time.
 */
import { type AttributeValue, ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { S3Client } from '@aws-sdk/client-s3';
import { activityInfo, heartbeat, log } from '@temporalio/activity';
import type { Config } from '../domain/config';
import type { ResultRow, ReviewItem, RowRetraction } from '../domain/outcomes';
import { ReasonCode } from '../domain/reasons';
import { ROW_SIGNATURE_ATTRIBUTE } from '../domain/result-rows';
import { withoutRequestDetails } from '../aws/clients';
import { createLedger } from '../stores/ledger';
import { createRowReader } from '../stores/signed-rows';
import { ROWS_BY_RUN_INDEX, SETTLED_DUPLICATES } from '../stores/results-table';
import { SQS_BATCH } from '../aws/sqs';

/** DynamoDB's IN takes at most 100 values. */
const MOST_CONDITION_VALUES = 100;

function sliced<T>(items: readonly T[], size: number): T[][] {
  const slices: T[][] = [];
  for (let start = 0; start < items.length; start += size) slices.push(items.slice(start, start + size));
  return slices;
}

/**
 * Duplicates one drain hands back at most, plus those of its last receive: they travel through the workflow's history.
 */
const MAX_DUPLICATES_PER_DRAIN = 50;
/**
 * A refused row's message stays invisible this long, so no other drain takes it while the run
 * settles it (seconds, normally); after a crash it comes back for the next drain this soon.
 */
const DUPLICATE_HOLD_SECONDS = 60;
/**
 * The attribute naming the drain attempt that wrote a row. A run counts the rows its completed
 * drains wrote; a copy of a row that an earlier attempt of the same drain wrote is counted, because
 * that attempt failed and its count with it.
 */
const DRAINED_BY = 'DrainedBy';

/** A row the table refused: another row of the same run holds its old face. */
export interface DuplicateRow {
  row: ResultRow;
  /** The holding row as it was: settleDuplicates marks it only while it is still that row. */
  heldBy: { FaceId: string; MigratedAt: string };
  /**
   * The row's new face, to delete from the target. Absent when both records are one image indexed
   * once (the ledger reuses an indexing for an identical record): then the face is the holder's too.
   */
  surplusFaceId: string | undefined;
  /** The review-DLQ message, naming the record that holds the old face. */
  review: ReviewItem;
  /** Every copy of the row's message this drain received. */
  receiptHandles: string[];
}

export interface DrainProgress {
  written: number;
  /**
   * True when the queue holds no message at all, in flight or delayed included; false when
   * maxMessages ran out first, duplicates wait to be settled, or messages are still invisible
   * (received by an attempt that failed).
   */
  queueEmpty: boolean;
  /** Absent from drains that ran before duplicates were told apart, in the histories of older runs. */
  duplicates?: DuplicateRow[];
}

/** What one receive of a pass took: rows written, the age of its oldest message, and whether it came back full. */
export interface DrainReceive {
  written: number;
  oldestAgeMs: number;
  /** Fewer messages than asked for means no backlog of visible messages was left behind them. */
  full: boolean;
}

/** How a pass reports each receive, and how it is told to stop before maxMessages. */
export interface DrainPassHooks {
  onReceive: (receive: DrainReceive) => void;
  stopped: () => boolean;
}

/** One pass of a drain: what DrainProgress says, how many messages it handled, and the age of the oldest. */
export interface DrainPass extends Required<DrainProgress> {
  handled: number;
  /** How long the oldest message received had waited in the queue. */
  oldestAgeMs: number;
}

/** A message of the results queue that holds a result row. */
interface Received {
  receiptHandle: string;
  row: ResultRow;
}

/**
 * What became of one message's row. A copy of a row already in the table is `recovered` when a
 * failed attempt of this drain wrote it, so this attempt counts it, and `present` otherwise.
 */
type Written =
  | { kind: 'written' }
  | { kind: 'recovered' }
  | { kind: 'present' }
  | { kind: 'settled' }
  | { kind: 'stale' }
  | { kind: 'refused'; holder: Record<string, AttributeValue> };

/**
 * Tells the rows of one old face apart. The rows of one record are one row, however many times its
 * image's attempts decided and sent it. A second record of the same image may carry the same new
 * face, from another position in the file. Rows of versions that did not name their record are
 * told apart by when they were decided.
 */
function rowIdentity(row: Pick<ResultRow, 'FaceId' | 'MigratedAt' | 'RecordIndex'>): string {
  return row.RecordIndex === undefined ? `${row.FaceId}@${row.MigratedAt}` : `${row.FaceId}#${row.RecordIndex}`;
}

/** The fields that identify the row the table holds, from DynamoDB's answer. */
function heldIdentity(
  holder: Record<string, AttributeValue>,
): Pick<ResultRow, 'FaceId' | 'MigratedAt' | 'RecordIndex'> {
  const index = holder.RecordIndex?.N;
  return {
    FaceId: holder.FaceId?.S ?? '',
    MigratedAt: holder.MigratedAt?.S ?? '',
    ...(index === undefined ? {} : { RecordIndex: Number(index) }),
  };
}

/**
 * The answer to a query of an index the table does not have: DynamoDB's ValidationException ("The
 * table does not have the specified index: …"), or moto's ResourceNotFoundException ("Invalid index: …").
 */
function isMissingIndex(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'ValidationException') return error.message.includes('does not have the specified index');
  return error.name === 'ResourceNotFoundException' && error.message.includes(`index: ${ROWS_BY_RUN_INDEX}`);
}

function duplicateOf(row: ResultRow, holder: Record<string, AttributeValue>, receiptHandle: string): DuplicateRow {
  const held = (attribute: keyof ResultRow) => holder[attribute]?.S;
  const heldFaceId = held('FaceId') ?? '';
  // One indexing reused for two identical records gives both the same face; a face is never shared otherwise.
  const sameIndexing = heldFaceId === row.FaceId;
  const heldImage = `s3://${held('Bucket')}/${held('Key')}${held('ExternalImageId') ? ` (ExternalImageId ${held('ExternalImageId')})` : ''}`;
  return {
    row,
    heldBy: { FaceId: heldFaceId, MigratedAt: held('MigratedAt') ?? '' },
    surplusFaceId: sameIndexing ? undefined : row.FaceId,
    review: {
      reason: ReasonCode.DuplicateFaceId,
      detail:
        `old face ${row.OldFaceId} is migrated already in this run, as new face ${heldFaceId}, by the record of ${heldImage}; ` +
        (sameIndexing
          ? 'that record is this image, indexed once, so no face was deleted'
          : `this record's new face ${row.FaceId} was deleted from the target`),
      runId: row.RunId,
      Bucket: row.Bucket,
      Key: row.Key,
      ExternalImageId: row.ExternalImageId,
      face: { FaceId: row.OldFaceId, ImageId: row.OldImageId, UserId: row.UserId, BoundingBoxes: row.OldBoundingBox },
    },
    receiptHandles: [receiptHandle],
  };
}

/** A run's rows in the table, and the duplicates settled against them. */
export interface RunRowsAccount {
  rows: number;
  settledDuplicates: number;
}

/** Which rows of a run to count: those decided since its first execution began, not an earlier run's of the same id. */
export interface RunRowsQuery {
  runId: string;
  /** ISO time the run began. */
  since: string;
}

export function createResultsActivities({
  sqs,
  dynamodb,
  s3,
  config,
  runInFlight,
}: {
  sqs: SQSClient;
  dynamodb: DynamoDBDocumentClient;
  s3: S3Client;
  config: Pick<Config, 'resultsQueueUrl' | 'resultsTable' | 'bucket'>;
  /** Whether the run of this workflow id runs now: the rows of a run in flight need no ledger check. */
  runInFlight: (runId: string) => Promise<boolean>;
}) {
  const ledger = createLedger(s3, config.bucket);
  const readRow = createRowReader(s3, config.bucket);

  /**
   * A row of another run is written only while its record keeps its face: a run that failed before
   * its drain leaves rows in the queue, and the record may have been indexed again since, its face
   * deleted. The draining run's own rows are fresh by construction, and so are a run's in flight.
   */
  async function stillKept(row: ResultRow, inFlight: (runId: string) => Promise<boolean>): Promise<boolean> {
    if (row.RunId === activityInfo().workflowExecution?.workflowId) return true;
    // A run in flight drains its rows itself, unchecked: its record's face is as fresh as our own.
    if (await inFlight(row.RunId)) return true;
    // Only a record that holds an indexing now, without this face, says it is gone.
    const [keeping] = await ledger.keepingOf(row.CollectionId, [row.FaceId]);
    return keeping !== 'dropped';
  }

  /** An empty receive is not an empty queue: messages another receiver holds are invisible to it. */
  async function queueHoldsNothing(): Promise<boolean> {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: config.resultsQueueUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    return Object.values(Attributes).every((count) => Number(count) === 0);
  }

  async function setVisibility(receiptHandles: string[], VisibilityTimeout: number): Promise<void> {
    for (let start = 0; start < receiptHandles.length; start += SQS_BATCH) {
      await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: config.resultsQueueUrl,
          Entries: receiptHandles
            .slice(start, start + SQS_BATCH)
            .map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle, VisibilityTimeout })),
        }),
      );
    }
  }

  /** Makes messages this attempt could not write visible again at once, rather than after the visibility timeout. */
  async function release(receiptHandles: string[]): Promise<void> {
    await setVisibility(receiptHandles, 0).catch((error: unknown) => {
      log.warn('Could not release results messages; they reappear after the visibility timeout', {
        error: withoutRequestDetails(error),
      });
    });
  }

  /** A message not deleted comes back, and its row is written again or found settled: no harm but the work. */
  async function deleteMessages(receiptHandles: string[]): Promise<void> {
    for (let start = 0; start < receiptHandles.length; start += SQS_BATCH) {
      const { Failed = [] } = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: config.resultsQueueUrl,
          Entries: receiptHandles
            .slice(start, start + SQS_BATCH)
            .map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })),
        }),
      );
      if (Failed.length > 0)
        log.warn('SQS did not delete some results messages; they come back and are handled again', {
          failed: Failed.length,
        });
    }
  }

  /** This attempt's name in DRAINED_BY: `<workflow run>/<activity id>#<attempt>`. */
  function drainAttempt(): { name: string; earlierAttemptOf: (writer: string | undefined) => boolean } {
    const { workflowExecution, activityId, attempt } = activityInfo();
    const drain = `${workflowExecution?.runId ?? ''}/${activityId}#`;
    return {
      name: `${drain}${attempt}`,
      earlierAttemptOf: (writer) =>
        writer !== undefined && writer.startsWith(drain) && Number(writer.slice(drain.length)) < attempt,
    };
  }

  async function writeRow(
    row: ResultRow,
    drain: ReturnType<typeof drainAttempt>,
    inFlight: (runId: string) => Promise<boolean>,
  ): Promise<Written> {
    if (!(await stillKept(row, inFlight))) return { kind: 'stale' };
    try {
      await dynamodb.send(
        new PutCommand({
          TableName: config.resultsTable,
          Item: { ...row, [DRAINED_BY]: drain.name },
          // An earlier run's row gives way to a later decision, never to an older one drained late.
          ConditionExpression: 'attribute_not_exists(OldFaceId) OR (RunId <> :run AND MigratedAt < :at)',
          ExpressionAttributeValues: { ':run': row.RunId, ':at': row.MigratedAt },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { kind: 'written' };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const holder = error.Item;
      if (!holder)
        throw new Error(
          `DynamoDB refused the row of old face ${row.OldFaceId} without returning the row that holds it`,
          { cause: error },
        );
      if (holder.RunId?.S !== row.RunId) return { kind: 'stale' };
      const held = heldIdentity(holder);
      const counted: Written = drain.earlierAttemptOf(holder[DRAINED_BY]?.S)
        ? { kind: 'recovered' }
        : { kind: 'present' };
      if (rowIdentity(held) === rowIdentity(row)) return counted;
      if (row.RecordIndex !== undefined && held.RecordIndex === row.RecordIndex) {
        // The same record decided again with another face, its earlier one gone: the later decision holds.
        if (row.MigratedAt <= held.MigratedAt) return { kind: 'stale' };
        return (await replaceRow(row, holder, drain)) ? counted : writeRow(row, drain, inFlight);
      }
      return holder[SETTLED_DUPLICATES]?.SS?.includes(rowIdentity(row))
        ? { kind: 'settled' }
        : { kind: 'refused', holder };
    }
  }

  /** Puts `row` in place of `holder` unless the row changed since it was read; false when it did. */
  async function replaceRow(
    row: ResultRow,
    holder: Record<string, AttributeValue>,
    drain: ReturnType<typeof drainAttempt>,
  ): Promise<boolean> {
    const settled = holder[SETTLED_DUPLICATES]?.SS;
    try {
      await dynamodb.send(
        new PutCommand({
          TableName: config.resultsTable,
          Item: { ...row, [DRAINED_BY]: drain.name, ...(settled ? { [SETTLED_DUPLICATES]: new Set(settled) } : {}) },
          ConditionExpression: 'RunId = :run AND FaceId = :face AND MigratedAt = :at',
          ExpressionAttributeValues: { ':run': row.RunId, ':face': holder.FaceId?.S, ':at': holder.MigratedAt?.S },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Writes the rows of one receive, adding those refused to `duplicates`. Rows of one old face go one
   * after the other, so the first holds it and the next are refused; rows of different old faces at once.
   */
  async function writeReceived(
    received: Received[],
    duplicates: Map<string, DuplicateRow>,
    drain: ReturnType<typeof drainAttempt>,
    recovered: Set<string>,
  ): Promise<{ written: number; done: string[]; held: string[] }> {
    const byOldFace = new Map<string, Received[]>();
    for (const entry of received)
      byOldFace.set(entry.row.OldFaceId, [...(byOldFace.get(entry.row.OldFaceId) ?? []), entry]);
    const outcome = { written: 0, done: [] as string[], held: [] as string[] };
    // Asked once a receive for each run of its rows: a run may end between receives.
    const asked = new Map<string, Promise<boolean>>();
    const inFlight = (runId: string) => {
      const answer = asked.get(runId) ?? runInFlight(runId);
      asked.set(runId, answer);
      return answer;
    };
    await Promise.all(
      [...byOldFace.values()].map(async (entries) => {
        for (const { receiptHandle, row } of entries) {
          const written = await writeRow(row, drain, inFlight);
          if (written.kind === 'refused') {
            // Copies of one refused row are one duplicate.
            const key = `${row.OldFaceId} ${rowIdentity(row)}`;
            const known = duplicates.get(key);
            if (known) known.receiptHandles.push(receiptHandle);
            else duplicates.set(key, duplicateOf(row, written.holder, receiptHandle));
            outcome.held.push(receiptHandle);
          } else {
            if (written.kind === 'written') outcome.written += 1;
            // A row a failed attempt wrote may come several times; it counts once.
            if (written.kind === 'recovered' && !recovered.has(row.OldFaceId)) {
              recovered.add(row.OldFaceId);
              outcome.written += 1;
            }
            outcome.done.push(receiptHandle);
          }
        }
      }),
    );
    return outcome;
  }

  /**
   * Moves result rows from the results queue into the table until the queue is empty,
   * `maxMessages` were handled, or enough duplicates wait to be settled. A message that is no
   * result row is left alone: after five receives SQS moves it to the results queue's own DLQ.
   * `recovered` carries over the passes of one attempt; `hooks.onReceive` hears each receive, and
   * the pass ends after the receive in hand once `hooks.stopped()`.
   */
  async function drainPass(maxMessages: number, recovered: Set<string>, hooks: DrainPassHooks): Promise<DrainPass> {
    let handled = 0;
    let written = 0;
    let oldestAgeMs = 0;
    const duplicates = new Map<string, DuplicateRow>();
    const drain = drainAttempt();
    const finished = (queueEmpty: boolean): DrainPass => ({
      written,
      queueEmpty,
      duplicates: [...duplicates.values()],
      handled,
      oldestAgeMs,
    });
    while (handled < maxMessages && duplicates.size < MAX_DUPLICATES_PER_DRAIN && !hooks.stopped()) {
      const asked = Math.min(SQS_BATCH, maxMessages - handled);
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: config.resultsQueueUrl,
          MaxNumberOfMessages: asked,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['SentTimestamp'],
          MessageAttributeNames: [ROW_SIGNATURE_ATTRIBUTE],
        }),
      );
      if (Messages.length === 0) {
        hooks.onReceive({ written: 0, oldestAgeMs: 0, full: false });
        return finished(duplicates.size === 0 && (await queueHoldsNothing()));
      }
      const receivedAt = Date.now();
      let receiveAgeMs = 0;
      for (const message of Messages) {
        const sent = Number(message.Attributes?.SentTimestamp);
        if (Number.isFinite(sent)) receiveAgeMs = Math.max(receiveAgeMs, receivedAt - sent);
      }
      oldestAgeMs = Math.max(oldestAgeMs, receiveAgeMs);
      const read = await Promise.all(Messages.map(readRow));
      const readable = Messages.flatMap((message, i): Received[] => {
        const answer = read[i];
        if (answer && 'row' in answer) return [{ receiptHandle: message.ReceiptHandle ?? '', row: answer.row }];
        log.error('A results message is not a row this tool signed; leaving it for the results DLQ', {
          messageId: message.MessageId,
          refusal: answer?.refusal,
        });
        return [];
      });
      let outcome: Awaited<ReturnType<typeof writeReceived>>;
      try {
        outcome = await writeReceived(readable, duplicates, drain, recovered);
      } catch (error) {
        const unsettled = [...duplicates.values()].flatMap((duplicate) => duplicate.receiptHandles);
        await release([...new Set([...readable.map(({ receiptHandle }) => receiptHandle), ...unsettled])]);
        throw error;
      }
      await setVisibility(outcome.held, DUPLICATE_HOLD_SECONDS);
      await deleteMessages(outcome.done);
      written += outcome.written;
      handled += readable.length;
      hooks.onReceive({ written: outcome.written, oldestAgeMs: receiveAgeMs, full: Messages.length === asked });
    }
    return finished(false);
  }

  /**
   * Counts a run's rows and the duplicates settled against them from the table's index of rows by
   * run; undefined when the table has no such index (one created before it), so the caller falls
   * back on other evidence. `onPage` hears each page, for a long count to heartbeat.
   */
  async function accountRunRows(
    { runId, since }: RunRowsQuery,
    onPage: () => void = () => undefined,
  ): Promise<RunRowsAccount | undefined> {
    const account: RunRowsAccount = { rows: 0, settledDuplicates: 0 };
    let startKey: Record<string, unknown> | undefined;
    try {
      do {
        const page = await dynamodb.send(
          new QueryCommand({
            TableName: config.resultsTable,
            IndexName: ROWS_BY_RUN_INDEX,
            KeyConditionExpression: 'RunId = :run AND MigratedAt >= :since',
            ExpressionAttributeValues: { ':run': runId, ':since': since },
            // A key too, so a row with no duplicate is not an empty item.
            ProjectionExpression: 'MigratedAt, #settled',
            ExpressionAttributeNames: { '#settled': SETTLED_DUPLICATES },
            ExclusiveStartKey: startKey,
          }),
        );
        for (const item of page.Items ?? []) {
          account.rows += 1;
          account.settledDuplicates += (item[SETTLED_DUPLICATES] as Set<string> | undefined)?.size ?? 0;
        }
        startKey = page.LastEvaluatedKey;
        onPage();
      } while (startKey);
    } catch (error) {
      if (!isMissingIndex(error)) throw error;
      log.warn(`The results table has no ${ROWS_BY_RUN_INDEX} index; a run ends only once the results queue is empty`, {
        table: config.resultsTable,
      });
      return undefined;
    }
    return account;
  }

  return {
    drainPass,
    accountRunRows,

    /** One drain pass as an activity of its own, as runs recorded before continuous draining call it. */
    drainResults: async (maxMessages: number): Promise<DrainProgress> => {
      let sofar = 0;
      const hooks: DrainPassHooks = {
        onReceive: (receive) => {
          sofar += receive.written;
          heartbeat({ written: sofar });
        },
        stopped: () => false,
      };
      const { written, queueEmpty, duplicates } = await drainPass(maxMessages, new Set(), hooks);
      return { written, queueEmpty, duplicates };
    },

    /**
     * Deletes the rows earlier runs wrote for old faces this run sends to review, each only while it
     * still names a face this run deleted from the target: a later row stays.
     */
    retractRows: async (retractions: RowRetraction[]): Promise<void> => {
      await Promise.all(
        retractions.flatMap(({ OldFaceId, CollectionId, FaceIds }) =>
          sliced(FaceIds, MOST_CONDITION_VALUES).map(async (faceIds) => {
            const values = Object.fromEntries(faceIds.map((faceId, i) => [`:face${i}`, faceId]));
            try {
              await dynamodb.send(
                new DeleteCommand({
                  TableName: config.resultsTable,
                  Key: { OldFaceId },
                  ConditionExpression: `CollectionId = :collection AND FaceId IN (${Object.keys(values).join(', ')})`,
                  ExpressionAttributeValues: { ':collection': CollectionId, ...values },
                }),
              );
            } catch (error) {
              if (!(error instanceof ConditionalCheckFailedException)) throw error;
            }
          }),
        ),
      );
    },

    /**
     * After the run deleted their new faces and sent them to the review DLQ: marks each holding row
     * with the duplicate it refused, then deletes the duplicates' messages.
     */
    settleDuplicates: async (duplicates: DuplicateRow[]): Promise<void> => {
      await Promise.all(
        duplicates.map(async ({ row, heldBy }) => {
          try {
            await dynamodb.send(
              new UpdateCommand({
                TableName: config.resultsTable,
                Key: { OldFaceId: row.OldFaceId },
                UpdateExpression: 'ADD #settled :row',
                ConditionExpression: 'RunId = :run AND FaceId = :face AND MigratedAt = :at',
                ExpressionAttributeNames: { '#settled': SETTLED_DUPLICATES },
                ExpressionAttributeValues: {
                  ':row': new Set([rowIdentity(row)]),
                  ':run': row.RunId,
                  ':face': heldBy.FaceId,
                  ':at': heldBy.MigratedAt,
                },
              }),
            );
          } catch (error) {
            // A later run's row took the old face since: its run answers for it now.
            if (!(error instanceof ConditionalCheckFailedException)) throw error;
          }
        }),
      );
      await deleteMessages(duplicates.flatMap((duplicate) => duplicate.receiptHandles));
    },
  };
}
