/**
 * DynamoDB: the results table, filled from the results queue. Writes are puts keyed by OldFaceId,
 * so a message delivered twice (a crash between write and delete) writes the same row twice and
 * changes nothing; a message is deleted only after its row is written.
 */
import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { heartbeat, log, sleep } from '@temporalio/activity';
import type { Config } from '../domain/config';
import type { ResultRow } from '../domain/outcomes';
import { withoutRequestDetails } from './aws-clients';
import { SQS_BATCH } from './queues';

const ATTEMPTS_PER_WRITE = 8;

export interface DrainProgress {
  written: number;
  /**
   * True when the queue holds no message at all, in flight or delayed included; false when
   * maxMessages ran out first or messages are still invisible (received by an attempt that failed).
   */
  queueEmpty: boolean;
}

function parseRow(message: Message): ResultRow | undefined {
  try {
    const row = JSON.parse(message.Body ?? '') as Partial<ResultRow>;
    return typeof row.OldFaceId === 'string' && typeof row.FaceId === 'string' ? (row as ResultRow) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * BatchWriteItem, sending again what DynamoDB left unprocessed, with backoff. A batch may not name
 * one key twice, and a redelivered message brings its row twice, so each key is written once.
 */
async function putRows(dynamodb: DynamoDBDocumentClient, table: string, rows: ResultRow[]): Promise<void> {
  const byKey = new Map(rows.map((row) => [row.OldFaceId, row]));
  let requests = [...byKey.values()].map((row) => ({ PutRequest: { Item: row } }));
  for (let attempt = 1; requests.length > 0; attempt += 1) {
    const { UnprocessedItems } = await dynamodb.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
    requests = (UnprocessedItems?.[table] ?? []) as typeof requests;
    if (requests.length === 0) return;
    if (attempt >= ATTEMPTS_PER_WRITE) throw new Error(`DynamoDB left ${requests.length} rows unprocessed after ${attempt} attempts`);
    await sleep(50 * 2 ** attempt);
  }
}

export function createResultsActivities({
  sqs,
  dynamodb,
  config,
}: {
  sqs: SQSClient;
  dynamodb: DynamoDBDocumentClient;
  config: Pick<Config, 'resultsQueueUrl' | 'resultsTable'>;
}) {
  /** An empty receive is not an empty queue: messages another receiver holds are invisible to it. */
  async function queueHoldsNothing(): Promise<boolean> {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: config.resultsQueueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      }),
    );
    return Object.values(Attributes).every((count) => Number(count) === 0);
  }

  /** Makes messages this attempt could not write visible again at once, rather than after the visibility timeout. */
  async function release(messages: Message[]): Promise<void> {
    await sqs
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: config.resultsQueueUrl,
          Entries: messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 })),
        }),
      )
      .catch((error: unknown) => {
        log.warn('Could not release results messages; they reappear after the visibility timeout', { error: withoutRequestDetails(error) });
      });
  }

  return {
    /**
     * Moves result rows from the results queue into the table until the queue is empty or
     * `maxMessages` were handled. A message that is no result row is left alone: after five
     * receives SQS moves it to the results queue's own DLQ.
     */
    drainResults: async (maxMessages: number): Promise<DrainProgress> => {
      let written = 0;
      while (written < maxMessages) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: config.resultsQueueUrl,
            MaxNumberOfMessages: Math.min(SQS_BATCH, maxMessages - written),
            WaitTimeSeconds: 1,
          }),
        );
        if (Messages.length === 0) return { written, queueEmpty: await queueHoldsNothing() };
        const readable = Messages.flatMap((message) => {
          const row = parseRow(message);
          if (!row) log.error('A results message is not a result row; leaving it for the results DLQ', { messageId: message.MessageId });
          return row ? [{ message, row }] : [];
        });
        try {
          await putRows(
            dynamodb,
            config.resultsTable,
            readable.map(({ row }) => row),
          );
        } catch (error) {
          await release(readable.map(({ message }) => message));
          throw error;
        }
        if (readable.length > 0) {
          await sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: config.resultsQueueUrl,
              Entries: readable.map(({ message }, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle })),
            }),
          );
        }
        written += readable.length;
        heartbeat({ written });
      }
      return { written, queueEmpty: false };
    },
  };
}
