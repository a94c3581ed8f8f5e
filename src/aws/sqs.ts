/**
 * Sending to SQS in the batches it accepts, for the worker's queues and the CLI's redrive alike.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from '@aws-sdk/client-sqs';
import { ApplicationFailure } from '@temporalio/common';
import { groupWithin } from '../domain/payloads';
import { ReasonCode } from '../domain/reasons';
import { currentActivity } from './clients';

/** SendMessageBatch takes at most ten messages. */
export const SQS_BATCH = 10;
/** SendMessageBatch takes at most 256 KiB in all; attributes count, so some room is kept for them. */
const BATCH_BYTES = 256 * 1024 - 4 * 1024;
const ATTEMPTS_PER_BATCH = 5;

type Entry = Omit<SendMessageBatchRequestEntry, 'Id'>;

/** Groups entries into batches SQS accepts: at most ten, and at most 256 KiB together. */
export function sqsBatches(entries: Entry[]): Entry[][] {
  return groupWithin(entries, (entry) => Buffer.byteLength(entry.MessageBody ?? ''), BATCH_BYTES, SQS_BATCH);
}

/**
 * Sends every entry in batches SQS accepts, resending the entries SQS reports as failed on its side. An
 * entry refused as the sender's fault (too large, malformed) cannot succeed on a retry: that fails
 * the activity with the reason SQS gave.
 */
export async function sendMessages(sqs: SQSClient, queueUrl: string, entries: Entry[]): Promise<void> {
  for (const batch of sqsBatches(entries)) {
    let pending = batch.map((entry, i) => ({ ...entry, Id: String(i) }));
    for (let attempt = 1; pending.length > 0; attempt += 1) {
      const { Failed = [] } = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending }));
      const senderFault = Failed.find((failure) => failure.SenderFault);
      if (senderFault) {
        throw ApplicationFailure.create({
          type: ReasonCode.MessageRefused,
          message: `SQS refused a message to ${queueUrl}: ${senderFault.Code}: ${senderFault.Message}`,
          nonRetryable: true,
        });
      }
      const failedIds = new Set(Failed.map((failure) => failure.Id));
      pending = pending.filter((entry) => failedIds.has(entry.Id));
      if (pending.length === 0) break;
      if (attempt >= ATTEMPTS_PER_BATCH) throw new Error(`SQS kept failing ${pending.length} messages to ${queueUrl}`);
      const resend = { queueUrl, failed: pending.length, attempt };
      // In an activity, through its logger and its cancellable sleep; in the CLI, on stderr.
      const activity = currentActivity();
      if (activity) {
        activity.log.warn('SQS failed some messages of a batch; sending them again', resend);
        await activity.sleep(100 * 2 ** attempt);
      } else {
        console.error(`reindex: SQS failed some messages of a batch; sending them again (${JSON.stringify(resend)})`);
        await delay(100 * 2 ** attempt);
      }
    }
  }
}
