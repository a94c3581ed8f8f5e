import { parse } from 'dotenv';
import {
  STACK_ENVIRONMENT,
  StackOutputsError,
  environmentFromOutputs,
  exportLines,
  outputKey,
} from '../../infra/aws/outputs';
import { loadConfig } from '../../src/domain/config';

/** Outputs as `aws cloudformation describe-stacks` lists them for a deployed stack. */
const DESCRIBED = [
  { OutputKey: 'AwsRegion', OutputValue: 'eu-west-1', Description: 'AWS_REGION' },
  { OutputKey: 'ReindexBucket', OutputValue: 'reindex-111122223333-eu-west-1', Description: 'REINDEX_BUCKET' },
  { OutputKey: 'ReindexBucketOwner', OutputValue: '111122223333' },
  {
    OutputKey: 'ReindexResultsQueueUrl',
    OutputValue: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-results',
  },
  {
    OutputKey: 'ReindexResultsDlqUrl',
    OutputValue: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-results-dlq',
  },
  {
    OutputKey: 'ReindexReviewDlqUrl',
    OutputValue: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-review-dlq',
  },
  {
    OutputKey: 'ReindexIntakeQueueUrl',
    OutputValue: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-intake',
  },
  { OutputKey: 'ReindexResultsTable', OutputValue: 'reindex-results' },
  { OutputKey: 'ReindexImageLocations', OutputValue: 's3://photos/people/' },
  {
    OutputKey: 'WorkerPolicyArn',
    OutputValue: 'arn:aws:iam::111122223333:policy/rekognition-reindex-WorkerPolicy462910EA-AbC',
  },
];

test('an output key is its variable in PascalCase', () => {
  expect(STACK_ENVIRONMENT.map(outputKey)).toEqual([
    'AwsRegion',
    'ReindexBucket',
    'ReindexBucketOwner',
    'ReindexResultsQueueUrl',
    'ReindexResultsDlqUrl',
    'ReindexReviewDlqUrl',
    'ReindexIntakeQueueUrl',
    'ReindexResultsTable',
    'ReindexImageLocations',
  ]);
});

test("a deployed stack's outputs become the variables worker and CLI read, and they accept them", () => {
  const { variables, workerPolicyArn } = environmentFromOutputs(DESCRIBED);

  expect(variables).toEqual({
    AWS_REGION: 'eu-west-1',
    REINDEX_BUCKET: 'reindex-111122223333-eu-west-1',
    REINDEX_BUCKET_OWNER: '111122223333',
    REINDEX_RESULTS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-results',
    REINDEX_RESULTS_DLQ_URL: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-results-dlq',
    REINDEX_REVIEW_DLQ_URL: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-review-dlq',
    REINDEX_INTAKE_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-intake',
    REINDEX_RESULTS_TABLE: 'reindex-results',
    REINDEX_IMAGE_LOCATIONS: 's3://photos/people/',
  });
  expect(workerPolicyArn).toBe('arn:aws:iam::111122223333:policy/rekognition-reindex-WorkerPolicy462910EA-AbC');
  expect(loadConfig(variables)).toMatchObject({
    aws: { region: 'eu-west-1' },
    bucket: 'reindex-111122223333-eu-west-1',
    bucketOwner: '111122223333',
    resultsQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-results',
    reviewDlqUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-review-dlq',
    intakeQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-intake',
    resultsTable: 'reindex-results',
    imageLocations: [{ Bucket: 'photos', Prefix: 'people/' }],
  });
});

test('outputs of another stack are refused, naming each one missing', () => {
  const withoutQueues = DESCRIBED.filter(({ OutputKey }) => !OutputKey.endsWith('QueueUrl'));

  expect(() => environmentFromOutputs(withoutQueues)).toThrow(StackOutputsError);
  expect(() => environmentFromOutputs(withoutQueues)).toThrow(
    'the stack has no output ReindexResultsQueueUrl (REINDEX_RESULTS_QUEUE_URL), ReindexIntakeQueueUrl (REINDEX_INTAKE_QUEUE_URL)',
  );
  expect(() => environmentFromOutputs([{ OutputKey: 'ReindexBucket' }, ...DESCRIBED.slice(2)])).toThrow(
    'ReindexBucket (REINDEX_BUCKET)',
  );
});

test('the export lines read back as the same variables, by a shell or dotenv, and say where the policy is', () => {
  const environment = environmentFromOutputs(DESCRIBED);

  const lines = exportLines(environment, 'rekognition-reindex');

  expect(lines[0]).toBe('# from CloudFormation stack rekognition-reindex');
  expect(lines).toContain("export REINDEX_BUCKET='reindex-111122223333-eu-west-1'");
  expect(lines.at(-1)).toBe(
    "# the worker's IAM policy, to attach to its role: arn:aws:iam::111122223333:policy/rekognition-reindex-WorkerPolicy462910EA-AbC",
  );
  expect(parse(lines.join('\n'))).toEqual(environment.variables);
});

test('a value a single-quoted export cannot carry is refused', () => {
  const environment = environmentFromOutputs(DESCRIBED);

  expect(() =>
    exportLines({ ...environment, variables: { ...environment.variables, REINDEX_BUCKET: "it's" } }, 'x'),
  ).toThrow('REINDEX_BUCKET holds a quote or newline');
});
