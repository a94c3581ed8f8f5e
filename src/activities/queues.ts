/**
 * SQS: the results queue (matched faces, on their way to DynamoDB and to anyone else who wants
 * the mapping) and the review DLQ (one message per face or record that could not be migrated).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Config } from '../domain/config';
import type { ResultRow, ReviewItem } from '../domain/outcomes';
import { ROW_SIGNATURE_ATTRIBUTE, signRowBody } from '../domain/result-rows';
import { sendMessages } from '../aws/sqs';
import { createLedger, runKeyCache } from '../stores/ledger';
import { countDlqMessages } from './metrics';

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
