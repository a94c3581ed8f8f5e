/**
 * The worker's AWS permissions as a least-privilege IAM policy: only the actions its activities
 * call, each on only the resources it calls them on. A plain policy document, so a CDK stack takes
 * it with `iam.PolicyDocument.fromJson(workerPolicy(...))` and the CLI beside it prints it.
 * test/security/worker-policy.test.ts runs a migration, records every call, and holds this policy
 * to exactly those calls.
 */
import { MIGRATION_TARGET_TAG, chunkKey, redriveRecordsKey, reportKey } from '../../src/shared';
import { ROWS_BY_RUN_INDEX } from '../../src/stores/results-table';

export interface WorkerPolicyInput {
  /** `aws`, or `aws-cn`, `aws-us-gov`. */
  partition: string;
  region: string;
  account: string;
  /** The worker's bucket (REINDEX_BUCKET): chunks, reports and the ledger. */
  bucket: string;
  /**
   * Where runs' records files are, as `bucket/prefix` or a whole `bucket`. The records files
   * `reindex dlq redrive` writes into the worker's bucket are always readable.
   */
  recordsLocations: string[];
  /**
   * Where the images are, as `bucket/prefix` or a whole `bucket`. IndexFaces reads an image with
   * the caller's permissions, so the worker itself must be allowed to read it.
   */
  imageLocations: string[];
  resultsQueueArn: string;
  /** The results queue's DLQ: a run counts its rows there, and leaves the queue as it was. */
  resultsDlqArn: string;
  reviewDlqArn: string;
  resultsTableArn: string;
  /** Names of the collections runs migrate into; IAM wildcards allowed (`faces-v7-*`). */
  targetCollections: string[];
  /** Names of the collections runs migrate from (`--source`): only their face model is read. */
  sourceCollections: string[];
  /**
   * The customer-managed KMS key bucket, queues and results table are encrypted with, and the domain
   * of the region's endpoints (`amazonaws.com`, `amazonaws.com.cn`). Without it they are encrypted
   * with keys of AWS's, which need no permission of the worker's own.
   */
  dataKey?: { arn: string; urlSuffix: string };
}

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** Where runs keep their files (src/shared.ts names the keys), as a pattern of listing prefixes. */
const RUNS_PREFIX_PATTERN = 'runs/*';

/** The Sid of the statement on the customer-managed key, which the stack grants only when the key exists. */
export const DATA_KEY_STATEMENT = 'DataKey';

export function workerPolicy(input: WorkerPolicyInput): PolicyDocument {
  const object = (bucket: string, key: string) => `arn:${input.partition}:s3:::${bucket}/${key}`;
  const location = (where: string) => {
    const [bucket = '', ...prefix] = where.split('/');
    return object(bucket, `${prefix.join('/')}*`);
  };
  const collection = (name: string) =>
    `arn:${input.partition}:rekognition:${input.region}:${input.account}:collection/${name}`;
  // Keys as src/shared.ts names them, with any run; the ledger's as src/stores/ledger.ts does, per target.
  const chunks = object(input.bucket, `${chunkKey('*')}*`);
  const reports = (['json', 'csv'] as const).map((format) => object(input.bucket, reportKey('*', format)));
  const redriveRecords = object(input.bucket, redriveRecordsKey('*'));
  const ledgers = input.targetCollections.map((name) => object(input.bucket, `ledger/${name}/*`));
  const targets = input.targetCollections.map(collection);
  const statements: PolicyStatement[] = [
    { Sid: 'ReadRunState', Effect: 'Allow', Action: ['s3:GetObject'], Resource: [chunks, ...ledgers] },
    // A sync writes the records file of the faces added to the old collection where a redrive's goes.
    {
      Sid: 'WriteRunState',
      Effect: 'Allow',
      Action: ['s3:PutObject'],
      Resource: [chunks, redriveRecords, ...reports, ...ledgers],
    },
    // A run tags what it wrote once it has ended: the bucket's lifecycle rule expires tagged objects only.
    {
      Sid: 'TagEndedRuns',
      Effect: 'Allow',
      Action: ['s3:PutObjectTagging'],
      Resource: [chunks, redriveRecords, ...reports],
    },
    {
      // Listings under the worker's own prefixes only: a run that has ended lists its folder,
      // runs/<run>/, for the objects to tag, and the ledger lists one key to tell an entry that is
      // not there from a read it may not make (without a listing of the whole bucket S3 may answer
      // a read of a missing object with 403, not 404).
      Sid: 'ListOwnPrefixes',
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [`arn:${input.partition}:s3:::${input.bucket}`],
      Condition: {
        StringLike: {
          's3:prefix': [RUNS_PREFIX_PATTERN, ...input.targetCollections.map((name) => `ledger/${name}/*`)],
        },
      },
    },
    {
      Sid: 'ReadRecordsFiles',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: [...input.recordsLocations.map(location), redriveRecords],
    },
    {
      Sid: 'ReadImagesForIndexFaces',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: input.imageLocations.map(location),
    },
    {
      Sid: 'ResultsQueue',
      Effect: 'Allow',
      Action: [
        'sqs:SendMessage',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
      ],
      Resource: [input.resultsQueueArn],
    },
    {
      Sid: 'ResultsDlq',
      Effect: 'Allow',
      Action: ['sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility'],
      Resource: [input.resultsDlqArn],
    },
    { Sid: 'ReviewDlq', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [input.reviewDlqArn] },
    {
      Sid: 'ResultsTable',
      Effect: 'Allow',
      Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Scan'],
      Resource: [input.resultsTableArn],
    },
    // A run counts its own rows in the table's index of rows by run.
    {
      Sid: 'ResultsTableRowsByRun',
      Effect: 'Allow',
      Action: ['dynamodb:Query'],
      Resource: [`${input.resultsTableArn}/index/${ROWS_BY_RUN_INDEX}`],
    },
    // A run reads any collection of the targets' names, but changes only one that carries the tag
    // the worker gives a collection it creates or claims empty: a collection of such a name that
    // another application uses is out of its reach.
    {
      Sid: 'ReadTargetCollections',
      Effect: 'Allow',
      Action: ['rekognition:DescribeCollection', 'rekognition:ListFaces'],
      Resource: targets,
    },
    {
      Sid: 'TagTargetCollections',
      Effect: 'Allow',
      // Tagging at creation takes TagResource too.
      Action: ['rekognition:CreateCollection', 'rekognition:TagResource'],
      Resource: targets,
      Condition: {
        StringEquals: { [`aws:RequestTag/${MIGRATION_TARGET_TAG.Key}`]: [MIGRATION_TARGET_TAG.Value] },
        'ForAllValues:StringEquals': { 'aws:TagKeys': [MIGRATION_TARGET_TAG.Key] },
      },
    },
    {
      // DeleteCollection removes only a collection the run has just created and then refused.
      Sid: 'ChangeTaggedTargetCollections',
      Effect: 'Allow',
      Action: [
        'rekognition:DeleteCollection',
        'rekognition:IndexFaces',
        'rekognition:DeleteFaces',
        'rekognition:CreateUser',
        'rekognition:AssociateFaces',
        // A re-run deletes faces an earlier run gave to users, and users it leaves empty.
        'rekognition:DisassociateFaces',
        'rekognition:DeleteUser',
      ],
      Resource: targets,
      Condition: { StringEquals: { [`aws:ResourceTag/${MIGRATION_TARGET_TAG.Key}`]: [MIGRATION_TARGET_TAG.Value] } },
    },
  ];
  // The worker reads the account's IndexFaces quota at start, to take half of it when REINDEX_TPS
  // is unset; Service Quotas grants its reads on no narrower resource.
  statements.push({
    Sid: 'ReadIndexFacesQuota',
    Effect: 'Allow',
    Action: ['servicequotas:ListServiceQuotas', 'servicequotas:ListAWSDefaultServiceQuotas'],
    Resource: ['*'],
  });
  if (input.sourceCollections.length > 0) {
    // ListFaces: each old face is checked against the source before its image is indexed.
    statements.push({
      Sid: 'SourceCollections',
      Effect: 'Allow',
      Action: ['rekognition:DescribeCollection', 'rekognition:ListFaces'],
      Resource: input.sourceCollections.map(collection),
    });
  }
  if (input.dataKey) {
    // S3 and SQS ask KMS for a data key to write an object or a message and to decrypt it to read it
    // back; DynamoDB decrypts the table's key for any call on an item. The worker never calls KMS
    // itself, so only those services in its region may use the key on its behalf.
    const { arn, urlSuffix } = input.dataKey;
    statements.push({
      Sid: DATA_KEY_STATEMENT,
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: [arn],
      Condition: {
        StringEquals: {
          'kms:ViaService': ['s3', 'sqs', 'dynamodb'].map((service) => `${service}.${input.region}.${urlSuffix}`),
        },
      },
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}
