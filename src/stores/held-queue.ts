/**
 * Reading an SQS queue whole without consuming it. SQS has no "browse": a message is seen by
 * receiving it, which hides it from everyone else. So a reader receives every message, holding each
 * one hidden until it has read the whole queue (else the same messages would keep coming back), and
 * then makes them visible again, or deletes the ones it took.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { SQS_BATCH } from '../aws/sqs';

/** Long enough to read a large queue, short enough that a crashed reader does not hide it for long. */
const HOLD_SECONDS = 15 * 60;

/** Every message of a queue, received once each and hidden until released or deleted. */
export interface HeldQueue {
  /** In the order received; each carries its SentTimestamp attribute. */
  messages: Message[];
  /** Makes every held message visible again. */
  release(): Promise<void>;
  /** Deletes these messages from the queue and makes the rest visible again. */
  deleteAndRelease(messageIds: Iterable<string>): Promise<{ deleted: number; failed: number }>;
}

async function inBatches<T>(entries: T[], send: (batch: T[]) => Promise<{ failed: number }>): Promise<number> {
  let failed = 0;
  for (let start = 0; start < entries.length; start += SQS_BATCH)
    failed += (await send(entries.slice(start, start + SQS_BATCH))).failed;
  return failed;
}

/**
 * Receives the whole queue and holds the messages hidden. The caller must `release()` or
 * `deleteAndRelease()`; until then other readers, and SQS's own redrive, do not see them. A queue
 * larger than SQS lets one reader hold (about 120,000 messages) fails with SQS's OverLimit.
 */
export async function holdQueue(sqs: SQSClient, queueUrl: string): Promise<HeldQueue> {
  const receipts = new Map<string, string>();
  const messages: Message[] = [];
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
          // A result row's signature travels as one; a review message's reason and run too.
          MessageAttributeNames: ['All'],
        }),
      );
      if (Messages.length === 0) break;
      for (const message of Messages) {
        if (!message.MessageId || !message.ReceiptHandle) continue;
        const seen = receipts.has(message.MessageId);
        // A message seen again (held past HOLD_SECONDS) answers only to its newest receipt handle.
        receipts.set(message.MessageId, message.ReceiptHandle);
        if (!seen) messages.push(message);
      }
    }
  } catch (error) {
    await release([...receipts.values()]).catch(() => undefined);
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
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: batch.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })),
          }),
        );
        return { failed: Failed.length };
      });
      await release([...receipts].filter(([id]) => !chosen.has(id)).map(([, handle]) => handle));
      receipts.clear();
      return { deleted: toDelete.length - failed, failed };
    },
  };
}

/** The dead-letter queue SQS moves a queue's messages to (its RedrivePolicy), or undefined when it has none. */
export async function deadLetterQueueOf(sqs: SQSClient, queueUrl: string): Promise<string | undefined> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }),
  );
  if (!Attributes.RedrivePolicy) return undefined;
  const { deadLetterTargetArn } = JSON.parse(Attributes.RedrivePolicy) as { deadLetterTargetArn?: string };
  // arn:aws:sqs:<region>:<account>:<name>
  const [, , , , account, name] = deadLetterTargetArn?.split(':') ?? [];
  if (!name) return undefined;
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
  return QueueUrl;
}
