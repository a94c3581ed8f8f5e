/**
 * `reindex check`: before a run, prove that every configured resource and Rekognition answer, so a
 * wrong name or a missing permission shows up as one line here rather than hours into a run.
 */
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { ListCollectionsCommand } from '@aws-sdk/client-rekognition';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { Connection } from '@temporalio/client';
import { type ClientConnectConfig, loadClientConnectConfig } from '@temporalio/envconfig';
import type { Command } from 'commander';
import { type AwsClients, httpStatusOf } from '../aws/clients';
import { withAws } from './common';
import type { Config } from '../domain/config';
import { missingSearchAttributes } from '../search-attributes';
import { ROWS_BY_RUN_INDEX } from '../stores/results-table';

export interface CheckResult {
  resource: string;
  ok: boolean;
  detail: string;
}

/** HEAD requests carry no error body, so the SDK can only say "UnknownError"; the status says more. */
const HTTP_STATUS_MEANING: Record<number, string> = {
  403: 'access denied to these credentials',
  404: 'does not exist',
};

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const status = httpStatusOf(error);
  const message =
    error.message === 'UnknownError' && status ? (HTTP_STATUS_MEANING[status] ?? `HTTP ${status}`) : error.message;
  return `${error.name}: ${message}`;
}

async function probe(resource: string, attempt: () => Promise<string>): Promise<CheckResult> {
  try {
    return { resource, ok: true, detail: await attempt() };
  } catch (error) {
    return { resource, ok: false, detail: describeFailure(error) };
  }
}

async function checkTemporal({ connectionOptions, namespace = 'default' }: ClientConnectConfig): Promise<string> {
  const connection = await Connection.connect({ ...connectionOptions, connectTimeout: '5s' });
  try {
    await connection.workflowService.describeNamespace({ namespace });
    const missing = await missingSearchAttributes(connection, namespace);
    if (missing.length > 0) {
      throw new Error(
        `namespace ${namespace} lacks the search attributes ${missing.map(({ name }) => name).join(', ')}`,
      );
    }
    return `namespace ${namespace} at ${connectionOptions.address}`;
  } finally {
    await connection.close();
  }
}

export async function checkDeployment(
  config: Config,
  aws: AwsClients,
  temporal: ClientConnectConfig,
): Promise<CheckResult[]> {
  const queues = [
    ['results queue', config.resultsQueueUrl],
    ['review DLQ', config.reviewDlqUrl],
    ...(config.intakeQueueUrl ? [['intake queue', config.intakeQueueUrl]] : []),
  ] as const;
  return Promise.all([
    probe('Temporal', () => checkTemporal(temporal)),
    probe('S3 bucket', async () => {
      await aws.s3.send(new HeadBucketCommand({ Bucket: config.bucket }));
      return config.bucket;
    }),
    ...queues.map(([resource, url]) =>
      probe(resource, async () => {
        await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
        return url;
      }),
    ),
    probe('Rekognition', async () => {
      const { CollectionIds } = await aws.rekognition.send(new ListCollectionsCommand({ MaxResults: 1 }));
      return CollectionIds?.length ? 'answers ListCollections' : 'answers ListCollections (no collections yet)';
    }),
    probe('results table', async () => {
      const { Table } = await aws.dynamodb.send(new DescribeTableCommand({ TableName: config.resultsTable }));
      const key = Table?.KeySchema?.map((element) => element.AttributeName).join(',');
      if (key !== 'OldFaceId') throw new Error(`table ${config.resultsTable} is keyed on ${key}, not OldFaceId`);
      if (!Table?.GlobalSecondaryIndexes?.some((index) => index.IndexName === ROWS_BY_RUN_INDEX))
        throw new Error(
          `table ${config.resultsTable} has no ${ROWS_BY_RUN_INDEX} index, so a run ends only once the shared results queue is empty; deploy the stack again to add it`,
        );
      return config.resultsTable;
    }),
  ]);
}

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('check that Temporal, Rekognition and every configured bucket, queue and table answer')
    .option('--json', 'print the results as JSON')
    .action(async (options: { json?: boolean }) => {
      await withAws(async ({ config, aws }) => {
        const results = await checkDeployment(config, aws, loadClientConnectConfig());
        if (options.json) {
          console.log(JSON.stringify(results, null, 2));
        } else {
          for (const { resource, ok, detail } of results) console.log(`${ok ? 'ok  ' : 'FAIL'} ${resource}: ${detail}`);
        }
        process.exitCode = results.every((result) => result.ok) ? 0 : 1;
      });
    });
}
