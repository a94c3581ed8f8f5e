/**
 * Reading the review DLQ without consuming it. SQS has no "browse": a message is seen by
 * receiving it, which hides it from everyone else. So a reader receives every message, holding each
 * one hidden until it has read the whole queue (else the same messages would keep coming back), and
 * then makes them visible again, or deletes the ones a redrive took.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  OverLimit,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { ReviewItem } from '../domain/outcomes';
import { SQS_BATCH } from '../activities/queues';
import { UsageError } from './common';

/** Long enough to read a large queue, short enough that a crashed reader does not hide it for long. */
const HOLD_SECONDS = 15 * 60;

export interface ReviewMessage {
  messageId: string;
  /** When the run sent it, ISO 8601. */
  sentAt: string;
  item: ReviewItem;
}

export interface ReviewFilter {
  runId?: string;
  reasons?: string[];
}

/** Messages received and hidden until released or deleted. */
export interface HeldMessages {
  /** Every message of the queue that passed the filter, in the order received. */
  messages: ReviewMessage[];
  /** Makes every held message visible again. */
  release(): Promise<void>;
  /** Deletes these messages from the queue and makes the rest visible again. */
  deleteAndRelease(messageIds: Iterable<string>): Promise<{ deleted: number; failed: number }>;
}

function parse(message: Message): ReviewMessage | undefined {
  try {
    const item = JSON.parse(message.Body ?? '') as ReviewItem;
    if (typeof item !== 'object' || item === null || typeof item.reason !== 'string') return undefined;
    const sent = Number(message.Attributes?.SentTimestamp);
    return { messageId: message.MessageId ?? '', sentAt: new Date(Number.isFinite(sent) ? sent : 0).toISOString(), item };
  } catch {
    return undefined;
  }
}

function matches(message: ReviewMessage, { runId, reasons }: ReviewFilter): boolean {
  return (runId === undefined || message.item.runId === runId) && (reasons === undefined || reasons.includes(message.item.reason));
}

async function inBatches<T>(entries: T[], send: (batch: T[]) => Promise<{ failed: number }>): Promise<number> {
  let failed = 0;
  for (let start = 0; start < entries.length; start += SQS_BATCH) failed += (await send(entries.slice(start, start + SQS_BATCH))).failed;
  return failed;
}

/**
 * Receives the whole queue and holds the messages hidden. The caller must `release()` or
 * `deleteAndRelease()`; until then other readers, and SQS's own redrive, do not see them. Messages
 * that are no review item (a stray body) are held and released like the rest, never deleted.
 */
export async function holdReviewMessages(sqs: SQSClient, queueUrl: string, filter: ReviewFilter): Promise<HeldMessages> {
  const receipts = new Map<string, string>();
  const messages: ReviewMessage[] = [];
  const release = (handles: string[]) =>
    inBatches(handles, async (batch) => {
      const { Failed = [] } = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle, VisibilityTimeout: 0 })),
        }),
      );
      return { failed: Failed.length };
    });

  try {
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: SQS_BATCH,
          VisibilityTimeout: HOLD_SECONDS,
          // A long poll asks every SQS server, so an empty answer means the queue has nothing visible.
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['SentTimestamp'],
        }),
      );
      if (Messages.length === 0) break;
      for (const message of Messages) {
        if (!message.MessageId || !message.ReceiptHandle) continue;
        const seen = receipts.has(message.MessageId);
        // A message seen again (held past HOLD_SECONDS) answers only to its newest receipt handle.
        receipts.set(message.MessageId, message.ReceiptHandle);
        const parsed = seen ? undefined : parse(message);
        if (parsed && matches(parsed, filter)) messages.push(parsed);
      }
    }
  } catch (error) {
    await release([...receipts.values()]).catch(() => undefined);
    if (error instanceof OverLimit) {
      throw new UsageError(`the review DLQ holds more messages than SQS lets one reader hold hidden at once (about 120,000; ${receipts.size} read): this command cannot read it whole`);
    }
    throw error;
  }

  return {
    messages,
    async release() {
      await release([...receipts.values()]);
      receipts.clear();
    },
    async deleteAndRelease(messageIds) {
      const chosen = new Set(messageIds);
      const toDelete = [...receipts].filter(([id]) => chosen.has(id)).map(([, handle]) => handle);
      const failed = await inBatches(toDelete, async (batch) => {
        const { Failed = [] } = await sqs.send(
          new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })) }),
        );
        return { failed: Failed.length };
      });
      await release([...receipts].filter(([id]) => !chosen.has(id)).map(([, handle]) => handle));
      receipts.clear();
      return { deleted: toDelete.length - failed, failed };
    },
  };
}

/** Visits every review message that passes the filter, leaving the queue as it was. Returns how many it visited. */
export async function forEachReviewMessage(
  sqs: SQSClient,
  queueUrl: string,
  filter: ReviewFilter,
  visit: (message: ReviewMessage) => void | Promise<void>,
): Promise<number> {
  const held = await holdReviewMessages(sqs, queueUrl, filter);
  try {
    for (const message of held.messages) await visit(message);
    return held.messages.length;
  } finally {
    await held.release();
  }
}
