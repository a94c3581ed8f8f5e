import { randomUUID } from 'node:crypto';
import { GetBucketNotificationConfigurationCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../src/aws/clients';
import { type Config, loadConfig } from '../../src/domain/config';
import { SEARCH_ATTRIBUTES } from '../../src/shared';
import { useLocalStack } from '../../harness/local-stack';

let stackEnv: Record<string, string>;
let config: Config;
let aws: AwsClients;

beforeAll(() => {
  stackEnv = useLocalStack();
  config = loadConfig();
  aws = createAwsClients(config);
});

afterAll(() => {
  destroyAwsClients(aws);
});

test('S3: an object written to the records bucket reads back byte for byte, path-style', async () => {
  const key = `records/${randomUUID()}.jsonl`;
  const body = '{"Bucket":"photos","Key":"people/ana.jpg","Faces":[]}\n';
  await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key: key, Body: body }));

  const object = await aws.s3.send(new GetObjectCommand({ Bucket: config.bucket, Key: key }));

  expect(await object.Body?.transformToString()).toBe(body);
  expect(config.aws.s3ForcePathStyle).toBe(true);
  expect(aws.s3.config.forcePathStyle).toBe(true);
});

test('SQS: a result sent to the results queue is received once and deleted', async () => {
  const body = JSON.stringify({ OldFaceId: randomUUID(), FaceId: randomUUID() });
  await aws.sqs.send(new SendMessageCommand({ QueueUrl: config.resultsQueueUrl, MessageBody: body }));

  const received = await aws.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: config.resultsQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
  );
  const ours = received.Messages?.filter((message) => message.Body === body) ?? [];
  expect(ours).toHaveLength(1);
  await aws.sqs.send(
    new DeleteMessageCommand({ QueueUrl: config.resultsQueueUrl, ReceiptHandle: ours[0]?.ReceiptHandle }),
  );
});

test('SQS: the results queue redrives to its own DLQ after five receives; DLQs keep messages 14 days', async () => {
  const results = await aws.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: config.resultsQueueUrl, AttributeNames: ['RedrivePolicy'] }),
  );
  const resultsDlq = await aws.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: stackEnv.REINDEX_RESULTS_DLQ_URL,
      AttributeNames: ['QueueArn', 'MessageRetentionPeriod'],
    }),
  );
  const reviewDlq = await aws.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: config.reviewDlqUrl, AttributeNames: ['MessageRetentionPeriod'] }),
  );

  const redrive = JSON.parse(results.Attributes?.RedrivePolicy ?? '{}') as Record<string, unknown>;
  expect(redrive).toEqual({ deadLetterTargetArn: resultsDlq.Attributes?.QueueArn, maxReceiveCount: 5 });
  expect(resultsDlq.Attributes?.MessageRetentionPeriod).toBe('1209600');
  expect(reviewDlq.Attributes?.MessageRetentionPeriod).toBe('1209600');
  expect(config.intakeQueueUrl).toMatch(/\/reindex-intake$/);
  const intake = await aws.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: config.intakeQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const { QueueConfigurations } = await aws.s3.send(
    new GetBucketNotificationConfigurationCommand({ Bucket: config.bucket }),
  );
  expect(QueueConfigurations).toMatchObject([
    {
      QueueArn: intake.Attributes?.QueueArn,
      Events: ['s3:ObjectCreated:*'],
      Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'records/' }] } },
    },
  ]);
});

test('DynamoDB: a result row written under its OldFaceId reads back whole', async () => {
  const row = {
    OldFaceId: randomUUID(),
    FaceId: randomUUID(),
    ExternalImageId: 'ana',
    BoundingBox: { Width: 0.2, Height: 0.3, Left: 0.4, Top: 0.1 },
    IoU: 0.87,
  };
  await aws.dynamodb.send(new PutCommand({ TableName: config.resultsTable, Item: row }));

  const read = await aws.dynamodb.send(
    new GetCommand({ TableName: config.resultsTable, Key: { OldFaceId: row.OldFaceId } }),
  );
  const table = await aws.dynamodb.send(new DescribeTableCommand({ TableName: config.resultsTable }));

  expect(read.Item).toEqual(row);
  expect(table.Table?.KeySchema).toEqual([{ AttributeName: 'OldFaceId', KeyType: 'HASH' }]);
  expect(table.Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
});

test('Temporal: reachable through envconfig, with the project search attributes registered', async () => {
  const { connectionOptions, namespace } = loadClientConnectConfig();
  const connection = await Connection.connect(connectionOptions);
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const registered = Object.keys(customAttributes ?? {});
    expect(connectionOptions.address).toBe(stackEnv.TEMPORAL_ADDRESS);
    expect(registered).toEqual(expect.arrayContaining(Object.values(SEARCH_ATTRIBUTES).map((key) => key.name)));
  } finally {
    await connection.close();
  }
});
