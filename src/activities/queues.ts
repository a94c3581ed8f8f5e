/**
 * SQS: the results queue (matched faces, on their way to DynamoDB and to anyone else who wants
 * the mapping) and the review DLQ (one message per face or record that could not be migrated).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from '@aws-sdk/client-sqs';
import { log, sleep } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../domain/config';
import type { ResultRow, ReviewItem } from '../domain/outcomes';
import { groupWithin } from '../domain/payloads';
import { ReasonCode } from '../domain/reasons';
import { ROW_SIGNATURE_ATTRIBUTE, signRowBody } from '../domain/result-rows';
import { createLedger, runKeyCache } from './ledger';
import { countDlqMessages } from './metrics';

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
      log.warn('SQS failed some messages of a batch; sending them again', {
        queueUrl,
        failed: pending.length,
        attempt,
      });
      await sleep(100 * 2 ** attempt);
    }
  }
}

/** The review DLQ's sender, for activities that send to review and nothing else. */
export function createReviewSender({ sqs, config }: { sqs: SQSClient; config: Pick<Config, 'reviewDlqUrl'> }) {
  return {
    /** Reason and run travel as message attributes too, so a reviewer can filter without parsing. */
    sendToReview: async (items: ReviewItem[]): Promise<void> => {
      await sendMessages(
        sqs,
        config.reviewDlqUrl,
        items.map((item) => ({
          MessageBody: JSON.stringify(item),
          MessageAttributes: {
            reason: { DataType: 'String', StringValue: item.reason },
            runId: { DataType: 'String', StringValue: item.runId },
          },
        })),
      );
      countDlqMessages(items);
    },
  };
}

export function createQueueActivities({
  sqs,
  s3,
  config,
}: {
  sqs: SQSClient;
  s3: S3Client;
  config: Pick<Config, 'resultsQueueUrl' | 'reviewDlqUrl' | 'bucket'>;
}) {
  const ledger = createLedger(s3, config.bucket);
  const signingKey = runKeyCache((collectionId, runId) => ledger.ensureRunKey(collectionId, runId));
  return {
    ...createReviewSender({ sqs, config }),

    /** Each row is signed with its run's key: the drain writes no row it cannot check. */
    publishResults: async (rows: ResultRow[]): Promise<void> => {
      const entries = await Promise.all(
        rows.map(async (row) => {
          const key = await signingKey(row.CollectionId, row.RunId);
          if (!key) throw new Error(`no row-signing key for run ${row.RunId}`);
          const MessageBody = JSON.stringify(row);
          return {
            MessageBody,
            MessageAttributes: {
              [ROW_SIGNATURE_ATTRIBUTE]: { DataType: 'String', StringValue: signRowBody(MessageBody, key) },
            },
          };
        }),
      );
      await sendMessages(sqs, config.resultsQueueUrl, entries);
    },
  };
}
