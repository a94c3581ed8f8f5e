/**
 * `reindex watch` on the local stack: a bucket that notifies an intake queue of every records file
 * uploaded under records/, as the original's "drop a file into records/" did. Each file starts one
 * run; the same notification delivered again starts nothing.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { runCli } from '../../harness/cli';
import {
  createRunResources,
  eventually,
  facesIn,
  resultRows,
  type RunResources,
  writeRecords,
} from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';

let resources: RunResources;
let worker: RunningWorker;
let intakeQueueUrl: string;
let bucket: string;

const watchEnv = () => ({ ...worker.cliEnv, REINDEX_INTAKE_QUEUE_URL: intakeQueueUrl });
const reindex = (...args: string[]) => runCli(args, watchEnv());
const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, string>);

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  const suffix = randomUUID().slice(0, 8);
  intakeQueueUrl =
    (await resources.aws.sqs.send(new CreateQueueCommand({ QueueName: `intake-${suffix}` }))).QueueUrl ?? '';
  const { Attributes } = await resources.aws.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: intakeQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  bucket = `intake-${suffix}`;
  await resources.aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await resources.aws.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            QueueArn: Attributes?.QueueArn,
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'records/' }] } },
          },
        ],
      },
    }),
  );
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  if (intakeQueueUrl) await resources.aws.sqs.send(new DeleteQueueCommand({ QueueUrl: intakeQueueUrl }));
  await resources?.release();
});

/** Copies a records file into the watched bucket, as an operator's upload. */
async function upload(Key: string): Promise<void> {
  const { manifest } = await writeRecords(resources, [
    { faces: [{ person: 'ana', box: [0.2, 0.2, 0.4, 0.4] }] },
    { faces: [{ person: 'bo', box: [0.1, 0.3, 0.3, 0.3] }] },
  ]);
  const { Body } = await resources.aws.s3.send(new GetObjectCommand(manifest));
  await resources.aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: await Body?.transformToString() }));
}

test('each uploaded records file starts one run, and a notification delivered twice starts nothing more', async () => {
  const target = resources.ownCollection(`watch-${randomUUID()}`);
  await upload('records/first.jsonl');
  await upload('records/second batch.jsonl');
  await upload('elsewhere/ignored.jsonl');
  // What S3 delivered for the first file, kept to deliver it once more.
  const { Messages = [] } = await resources.aws.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: intakeQueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
  );
  const firstNotification = Messages.find((message) => message.Body?.includes('first.jsonl'))?.Body;
  expect(firstNotification).toBeDefined();

  const first = await reindex('watch', '--target', target, '--once', '--json', '--quality-filter', 'NONE');
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  const started = jsonLines(first.stdout);
  expect(started.map((event) => event.file).sort()).toEqual([
    `s3://${bucket}/records/first.jsonl`,
    `s3://${bucket}/records/second batch.jsonl`,
  ]);
  const runIds = started.map((event) => event.started ?? '');
  expect(runIds.every((id) => id.startsWith('intake-'))).toBe(true);

  const faceIds: string[] = [];
  for (const id of runIds) {
    const followed = await reindex('status', id, '--follow', '--json', '--interval', '0.5');
    expect(followed.code).toBe(0);
    const rows = await resultRows(resources, id);
    expect(rows).toHaveLength(2);
    faceIds.push(...rows.map((row) => row.FaceId));
  }
  // Two runs into one target at once: neither's reconcile took the other's faces.
  expect(await facesIn(resources, target)).toEqual(faceIds.sort());

  await resources.aws.sqs.send(new SendMessageCommand({ QueueUrl: intakeQueueUrl, MessageBody: firstNotification }));
  await resources.aws.sqs.send(new SendMessageCommand({ QueueUrl: intakeQueueUrl, MessageBody: 'not an S3 event' }));
  const again = await reindex('watch', '--target', target, '--once', '--json');
  expect(again.code).toBe(0);
  const firstRun = started.find((event) => event.file?.endsWith('first.jsonl'))?.started;
  expect(jsonLines(again.stdout)).toEqual([{ file: `s3://${bucket}/records/first.jsonl`, exists: firstRun }]);
  expect(again.stderr).toMatch(/^reindex: intake message \S+ dropped: the body is not JSON\n$/);
  // Every message was handled: the queue is empty.
  await eventually(async () => {
    const { Attributes } = await resources.aws.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: intakeQueueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return Attributes?.ApproximateNumberOfMessages === '0' && Attributes.ApproximateNumberOfMessagesNotVisible === '0';
  });
}, 180_000);

test('a notification of a file that is gone starts nothing and says why; no intake queue is exit code 2', async () => {
  const target = resources.ownCollection(`watch-${randomUUID()}`);
  await resources.aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'records/soon-gone.jsonl', Body: '' }));
  await resources.aws.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'records/soon-gone.jsonl' }));
  const outcome = await reindex('watch', '--target', target, '--once');
  expect(outcome.code).toBe(0);
  expect(outcome.stdout).toContain(
    `s3://${bucket}/records/soon-gone.jsonl not started: the records file s3://${bucket}/records/soon-gone.jsonl does not exist`,
  );

  const unset = await runCli(['watch', '--target', target, '--once'], {
    ...worker.cliEnv,
    REINDEX_INTAKE_QUEUE_URL: '',
  });
  expect(unset).toMatchObject({
    code: 2,
    stderr: 'reindex: REINDEX_INTAKE_QUEUE_URL is not set: watch needs the intake queue\n',
  });
}, 60_000);
