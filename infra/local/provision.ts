/**
 * Creates the bucket, queues and results table on the local stack. Every call is idempotent:
 * running it against resources that already exist changes nothing.
 */
import {
  CreateTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  BucketAlreadyOwnedByYou,
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { resultsTableDefinition } from '../../src/stores/results-table';
import { RESOURCE_NAMES } from './settings';

/** The AWS limit, so failures wait for a person for as long as SQS allows. */
const FOURTEEN_DAYS_IN_SECONDS = String(14 * 24 * 60 * 60);
/** A results message that fails this often moves to the results queue's own DLQ. */
const RESULTS_MAX_RECEIVE_COUNT = 5;

export interface ProvisionedResources {
  REINDEX_BUCKET: string;
  REINDEX_RESULTS_QUEUE_URL: string;
  REINDEX_RESULTS_DLQ_URL: string;
  REINDEX_REVIEW_DLQ_URL: string;
  REINDEX_INTAKE_QUEUE_URL: string;
  REINDEX_RESULTS_TABLE: string;
}

interface Clients {
  s3: S3Client;
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
}

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if (!(error instanceof BucketAlreadyOwnedByYou)) throw error;
  }
}

async function ensureQueue(sqs: SQSClient, name: string, attributes: Record<string, string> = {}): Promise<string> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!QueueUrl) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  return QueueUrl;
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`GetQueueAttributes ${queueUrl} returned no QueueArn`);
  return arn;
}

async function ensureResultsTable(dynamodb: DynamoDBClient, table: string): Promise<void> {
  try {
    await dynamodb.send(new CreateTableCommand(resultsTableDefinition(table)));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 60 }, { TableName: table });
}

export async function provision({ s3, sqs, dynamodb }: Clients): Promise<ProvisionedResources> {
  const names = RESOURCE_NAMES;
  await ensureBucket(s3, names.bucket);
  const retention = { MessageRetentionPeriod: FOURTEEN_DAYS_IN_SECONDS };
  const resultsDlqUrl = await ensureQueue(sqs, names.resultsDlq, retention);
  const redrivePolicy = JSON.stringify({
    deadLetterTargetArn: await queueArn(sqs, resultsDlqUrl),
    maxReceiveCount: RESULTS_MAX_RECEIVE_COUNT,
  });
  const [resultsQueueUrl, reviewDlqUrl, intakeQueueUrl] = await Promise.all([
    ensureQueue(sqs, names.resultsQueue, { RedrivePolicy: redrivePolicy }),
    ensureQueue(sqs, names.reviewDlq, retention),
    ensureQueue(sqs, names.intakeQueue),
  ]);
  // The original's drop-a-file start: a records file uploaded under records/ notifies the intake queue.
  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: names.bucket,
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            QueueArn: await queueArn(sqs, intakeQueueUrl),
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'records/' }] } },
          },
        ],
      },
    }),
  );
  await ensureResultsTable(dynamodb, names.resultsTable);
  return {
    REINDEX_BUCKET: names.bucket,
    REINDEX_RESULTS_QUEUE_URL: resultsQueueUrl,
    REINDEX_RESULTS_DLQ_URL: resultsDlqUrl,
    REINDEX_REVIEW_DLQ_URL: reviewDlqUrl,
    REINDEX_INTAKE_QUEUE_URL: intakeQueueUrl,
    REINDEX_RESULTS_TABLE: names.resultsTable,
  };
}
