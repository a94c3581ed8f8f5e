import { ConfigError, loadConfig } from '../../src/domain/config';

const complete = {
  AWS_REGION: 'eu-west-1',
  REINDEX_BUCKET: 'records',
  REINDEX_RESULTS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/reindex-results',
  REINDEX_REVIEW_DLQ_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/reindex-review-dlq',
  REINDEX_RESULTS_TABLE: 'reindex-results',
};

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

test('a complete environment on AWS gives a typed config with virtual-hosted S3', () => {
  expect(loadConfig(complete)).toEqual({
    aws: { region: 'eu-west-1', s3ForcePathStyle: false, sqsEndpointConfigured: false },
    bucket: 'records',
    bucketOwner: undefined,
    resultsQueueUrl: complete.REINDEX_RESULTS_QUEUE_URL,
    reviewDlqUrl: complete.REINDEX_REVIEW_DLQ_URL,
    intakeQueueUrl: undefined,
    resultsTable: 'reindex-results',
    indexFacesTps: undefined,
    taskQueue: 'reindex',
    imageLocations: [],
  });
});

test('the image locations come from REINDEX_IMAGE_LOCATIONS, S3 locations comma-separated, each a bucket and a prefix', () => {
  expect(
    loadConfig({ ...complete, REINDEX_IMAGE_LOCATIONS: 's3://photos/people/,s3://archive' }).imageLocations,
  ).toEqual([
    { Bucket: 'photos', Prefix: 'people/' },
    { Bucket: 'archive', Prefix: '' },
  ]);
  expect(problemsOf({ ...complete, REINDEX_IMAGE_LOCATIONS: 'photos/people/' })).toEqual([
    'REINDEX_IMAGE_LOCATIONS must be S3 locations, comma-separated: s3://bucket/ or s3://bucket/prefix/',
  ]);
});

test('the account that must own every bucket comes from REINDEX_BUCKET_OWNER, an account id', () => {
  expect(loadConfig({ ...complete, REINDEX_BUCKET_OWNER: '111122223333' }).bucketOwner).toBe('111122223333');
  expect(problemsOf({ ...complete, REINDEX_BUCKET_OWNER: 'acme' })).toEqual([
    'REINDEX_BUCKET_OWNER must be an AWS account id, 12 digits',
  ]);
});

test('the task queue comes from REINDEX_TASK_QUEUE and must be a name Temporal takes', () => {
  expect(loadConfig({ ...complete, REINDEX_TASK_QUEUE: 'reindex-eu' }).taskQueue).toBe('reindex-eu');
  expect(problemsOf({ ...complete, REINDEX_TASK_QUEUE: 'two words' })).toEqual([
    'REINDEX_TASK_QUEUE must be letters, digits and . _ - (at most 200)',
  ]);
});

test('the IndexFaces rate comes from REINDEX_TPS, when set, and must be a positive number', () => {
  expect(loadConfig({ ...complete, REINDEX_TPS: '5' }).indexFacesTps).toBe(5);
  expect(problemsOf({ ...complete, REINDEX_TPS: 'fast' })).toEqual(['REINDEX_TPS must be a number']);
  expect(problemsOf({ ...complete, REINDEX_TPS: '0' })).toEqual(['REINDEX_TPS must be more than 0']);
});

test.each([['AWS_ENDPOINT_URL'], ['AWS_ENDPOINT_URL_S3']])(
  'an S3 endpoint from %s turns on path-style addressing',
  (variable) => {
    expect(loadConfig({ ...complete, [variable]: 'http://127.0.0.1:4566' }).aws.s3ForcePathStyle).toBe(true);
  },
);

test.each([['AWS_ENDPOINT_URL'], ['AWS_ENDPOINT_URL_SQS']])(
  'an SQS endpoint from %s is used for every queue, whatever host its URL names',
  (variable) => {
    expect(loadConfig({ ...complete, [variable]: 'http://127.0.0.1:4566' }).aws.sqsEndpointConfigured).toBe(true);
  },
);

test('every missing setting is named at once, and an empty one counts as missing', () => {
  expect(problemsOf({ AWS_REGION: 'eu-west-1', REINDEX_BUCKET: '' })).toEqual([
    'REINDEX_BUCKET is not set',
    'REINDEX_RESULTS_QUEUE_URL is not set',
    'REINDEX_REVIEW_DLQ_URL is not set',
    'REINDEX_RESULTS_TABLE is not set',
  ]);
});

test('a malformed setting is reported with its variable and what it must be', () => {
  const problems = problemsOf({ ...complete, REINDEX_REVIEW_DLQ_URL: 'reindex-review-dlq', REINDEX_BUCKET: '   ' });
  expect(problems).toEqual([
    'REINDEX_BUCKET must not be empty',
    'REINDEX_REVIEW_DLQ_URL must be an SQS queue URL (http or https)',
  ]);
});

test('the error message carries every problem on one line', () => {
  expect(() => loadConfig({})).toThrow(/^invalid configuration: AWS_REGION is not set; REINDEX_BUCKET is not set; /);
});
