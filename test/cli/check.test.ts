import { runCli } from '../../harness/cli';
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
