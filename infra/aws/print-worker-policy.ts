/**
 * Prints the worker's least-privilege IAM policy (worker-policy.ts) as JSON for the names given,
 * which default to the worker's own environment (REINDEX_BUCKET, the queue URLs, the table,
 * AWS_REGION), so with stack.env or a deployment's variables loaded only the collections and the
 * image locations are left to say:
 *
 *   npx tsx infra/aws/print-worker-policy.ts --collections 'faces-v7-*' --images photos/people/
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { workerPolicy } from './worker-policy';

/** An SQS queue ARN from its URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`), or the ARN itself. */
function queueArn(queue: string, partition: string, region: string): string {
  if (queue.startsWith('arn:')) return queue;
  const [account, name] = new URL(queue).pathname.split('/').filter(Boolean);
  if (!account || !name) throw new InvalidArgumentError(`${queue} is neither an SQS queue URL nor an ARN`);
  return `arn:${partition}:sqs:${region}:${account}:${name}`;
}

/** The account of an SQS queue ARN: its fifth field. */
function accountOf(arn: string): string {
  return arn.split(':')[4] ?? '';
}

const program = new Command('print-worker-policy')
  .description("print the worker's least-privilege IAM policy as JSON")
  .requiredOption('--collections <pattern...>', 'target collections runs migrate into (IAM wildcards allowed)')
  .requiredOption(
    '--images <location...>',
    "where the images are, as bucket or bucket/prefix/; IndexFaces reads them with the worker's permissions",
  )
  .option(
    '--source-collections <pattern...>',
    'collections runs migrate from (--source); only their face model is read',
    [],
  )
  .option(
    '--records <location...>',
    'where records files are, as bucket or bucket/prefix/ (default: <bucket>/records/, where the intake watches)',
  )
  .option('--bucket <name>', "the worker's bucket", process.env.REINDEX_BUCKET)
  .option('--results-queue <url-or-arn>', 'the results queue', process.env.REINDEX_RESULTS_QUEUE_URL)
  .option('--results-dlq <url-or-arn>', "the results queue's DLQ", process.env.REINDEX_RESULTS_DLQ_URL)
  .option('--review-dlq <url-or-arn>', 'the review DLQ', process.env.REINDEX_REVIEW_DLQ_URL)
  .option('--results-table <name-or-arn>', 'the results table', process.env.REINDEX_RESULTS_TABLE)
  .option('--region <region>', 'the region of queues, table and collections', process.env.AWS_REGION)
  .option('--account <id>', "the account of table and collections (default: the results queue's)")
  .option('--partition <partition>', 'aws, aws-cn or aws-us-gov', 'aws')
  .option('--data-key <arn>', 'the customer-managed KMS key bucket, queues and table are encrypted with, if any')
  .action(
    (options: {
      collections: string[];
      images: string[];
      sourceCollections: string[];
      records?: string[];
      bucket?: string;
      resultsQueue?: string;
      resultsDlq?: string;
      reviewDlq?: string;
      resultsTable?: string;
      region?: string;
      account?: string;
      partition: string;
      dataKey?: string;
    }) => {
      const missing = (['bucket', 'resultsQueue', 'resultsDlq', 'reviewDlq', 'resultsTable', 'region'] as const).filter(
        (name) => !options[name],
      );
      if (missing.length > 0)
        throw new InvalidArgumentError(
          `say ${missing.map((name) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} (or load the worker's environment)`,
        );
      const { partition, region = '', bucket = '', resultsTable = '' } = options;
      const resultsQueueArn = queueArn(options.resultsQueue ?? '', partition, region);
      const account = options.account ?? accountOf(resultsQueueArn);
      const policy = workerPolicy({
        partition,
        region,
        account,
        bucket,
        recordsLocations: options.records ?? [`${bucket}/records/`],
        imageLocations: options.images,
        resultsQueueArn,
        resultsDlqArn: queueArn(options.resultsDlq ?? '', partition, region),
        reviewDlqArn: queueArn(options.reviewDlq ?? '', partition, region),
        resultsTableArn: resultsTable.startsWith('arn:')
          ? resultsTable
          : `arn:${partition}:dynamodb:${region}:${account}:table/${resultsTable}`,
        targetCollections: options.collections,
        sourceCollections: options.sourceCollections,
        ...(options.dataKey === undefined
          ? {}
          : {
              dataKey: {
                arn: options.dataKey,
                urlSuffix: partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com',
              },
            }),
      });
      process.stdout.write(`${JSON.stringify(policy, null, 2)}\n`);
    },
  );

try {
  program.exitOverride().parse();
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  // Commander printed its own messages (a missing option, --help); this one is the action's.
  if (error instanceof InvalidArgumentError) process.stderr.write(`print-worker-policy: ${error.message}\n`);
  process.exit(error.exitCode === 0 ? 0 : 2);
}
