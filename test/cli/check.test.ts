import { randomUUID } from 'node:crypto';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { loadConfig } from '../../src/domain/config';
import { runCli } from '../../harness/cli';
import { createTableBeforeRowsByRun } from '../../harness/runs';
import { useLocalStack } from '../../harness/local-stack';

let env: NodeJS.ProcessEnv;

beforeAll(() => {
  env = { ...process.env, ...useLocalStack() };
});

test('on the provisioned local stack every resource checks out', async () => {
  const outcome = await runCli(['check', '--json'], env);

  expect(outcome.code).toBe(0);
  const results = JSON.parse(outcome.stdout) as { resource: string; ok: boolean }[];
  expect(results.map((result) => result.resource)).toEqual([
    'Temporal',
    'S3 bucket',
    'results queue',
    'review DLQ',
    'intake queue',
    'Rekognition',
    'results table',
  ]);
  expect(results.filter((result) => !result.ok)).toEqual([]);
});

test('a bucket that does not exist is named as the one failure, with exit code 1', async () => {
  const outcome = await runCli(['check'], { ...env, REINDEX_BUCKET: 'no-such-bucket' });

  expect(outcome.code).toBe(1);
  expect(outcome.stdout.split('\n').filter((line) => line.startsWith('FAIL'))).toEqual([
    'FAIL S3 bucket: NotFound: does not exist',
  ]);
});

test('a results table without the index of rows by run is named as the one failure, with what it costs', async () => {
  const aws = createAwsClients(loadConfig(env));
  const TableName = await createTableBeforeRowsByRun(aws, `results-unindexed-${randomUUID()}`);
  try {
    const outcome = await runCli(['check'], { ...env, REINDEX_RESULTS_TABLE: TableName });

    expect(outcome.code).toBe(1);
    expect(outcome.stdout.split('\n').filter((line) => line.startsWith('FAIL'))).toEqual([
      `FAIL results table: Error: table ${TableName} has no RowsByRun index, so a run ends only once the shared results queue is empty; deploy the stack again to add it`,
    ]);
  } finally {
    await aws.dynamodb.send(new DeleteTableCommand({ TableName }));
    destroyAwsClients(aws);
  }
});

test('a missing setting is one line on stderr and exit code 2', async () => {
  const outcome = await runCli(['check'], { ...env, REINDEX_RESULTS_TABLE: '' });

  expect(outcome.code).toBe(2);
  expect(outcome.stdout).toBe('');
  expect(outcome.stderr).toBe('reindex: invalid configuration: REINDEX_RESULTS_TABLE is not set\n');
});

test('an unknown command is one line on stderr and exit code 2', async () => {
  const outcome = await runCli(['chek'], env);

  expect(outcome.code).toBe(2);
  expect(outcome.stderr).toBe("reindex: error: unknown command 'chek' (Did you mean check?)\n");
});
