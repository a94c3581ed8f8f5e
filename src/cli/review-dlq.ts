/**
 * Reading the review DLQ without consuming it (stores/held-queue.ts): every message received and
 * held, then made visible again, or deleted when a redrive took it.
 */
import { type Message, OverLimit, type SQSClient } from '@aws-sdk/client-sqs';
import { type HeldQueue, holdQueue } from '../stores/held-queue';
import type { ReviewItem } from '../domain/outcomes';
import { UsageError } from './common';

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
    return {
      messageId: message.MessageId ?? '',
      sentAt: new Date(Number.isFinite(sent) ? sent : 0).toISOString(),
      item,
    };
  } catch {
    return undefined;
  }
}

function matches(message: ReviewMessage, { runId, reasons }: ReviewFilter): boolean {
  return (
    (runId === undefined || message.item.runId === runId) &&
    (reasons === undefined || reasons.includes(message.item.reason))
  );
}

/**
 * Receives the whole review DLQ and holds its messages hidden. The caller must `release()` or
 * `deleteAndRelease()`; until then other readers, and SQS's own redrive, do not see them. Messages
 * that are no review item (a stray body) are held and released like the rest, never deleted.
 */
export async function holdReviewMessages(
  sqs: SQSClient,
  queueUrl: string,
  filter: ReviewFilter,
): Promise<HeldMessages> {
  let held: HeldQueue;
  try {
    held = await holdQueue(sqs, queueUrl);
  } catch (error) {
    if (error instanceof OverLimit) {
      throw new UsageError(
        'the review DLQ holds more messages than SQS lets one reader hold hidden at once (about 120,000): this command cannot read it whole',
      );
    }
    throw error;
  }
  const messages = held.messages.flatMap((message) => {
    const parsed = parse(message);
    return parsed && matches(parsed, filter) ? [parsed] : [];
  });
  return {
    messages,
    release: () => held.release(),
    deleteAndRelease: (messageIds) => held.deleteAndRelease(messageIds),
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
