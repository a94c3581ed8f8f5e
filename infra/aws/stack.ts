/**
 * The project's AWS resources as one CloudFormation stack: the bucket for records files and
 * reports, the results queue with its DLQ, the review DLQ, the intake queue the bucket notifies of
 * `records/` uploads, the DynamoDB results table and the worker's least-privilege managed policy.
 * Face data is biometric: what a run writes to the bucket expires, and so do result rows that say when;
 * with DataKey customer-managed, bucket, queues and table are encrypted with a KMS key of the stack's.
 * They mirror what infra/local/provision.ts makes on the local stack; the outputs are the variables
 * worker and CLI read (outputs.ts), so `npm run aws:env` turns a deployment into their environment.
 */
import {
  Aws,
  CfnCondition,
  CfnOutput,
  CfnParameter,
  type CfnResource,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  type StackProps,
  Token,
  aws_dynamodb as dynamodb,
  aws_iam as iam,
  aws_kms as kms,
  aws_s3 as s3,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { RUN_ENDED_TAG } from '../../src/shared';
import { ROWS_BY_RUN_INDEX, SETTLED_DUPLICATES } from '../../src/stores/results-table';
import { STACK_ENVIRONMENT, type StackVariable, WORKER_POLICY_OUTPUT, outputKey } from './outputs';
import { DATA_KEY_STATEMENT, workerPolicy } from './worker-policy';

/** The AWS limit, so failures wait for a person for as long as SQS allows (as on the local stack). */
const FOURTEEN_DAYS_IN_SECONDS = 14 * 24 * 60 * 60;
/** SQS's default retention, which the local stack's results and intake queues keep. */
const FOUR_DAYS_IN_SECONDS = 4 * 24 * 60 * 60;
/** A results message that fails this often moves to the results queue's own DLQ. */
const RESULTS_MAX_RECEIVE_COUNT = 5;
/** SQS's default, which the local stack keeps: the drain changes visibility itself where it needs to. */
const VISIBILITY_TIMEOUT = Duration.seconds(30);
/** Where an upload starts a run (`reindex watch`), as on the local stack. */
export const RECORDS_PREFIX = 'records/';
/** Where a run keeps its chunks, redrive records file and report (src/shared.ts names the keys). */
const RUNS_PREFIX = 'runs/';
/** How long a run's files are kept unless RetentionDays says otherwise. */
const DEFAULT_RETENTION_DAYS = 30;

/** Ids of the stack's parameters, which `cdk deploy --parameters` and the console name. */
export const PARAMETERS = {
  namePrefix: 'NamePrefix',
  resultsQueueRetention: 'ResultsQueueRetentionSeconds',
  intakeQueueRetention: 'IntakeQueueRetentionSeconds',
  deadLetterRetention: 'DeadLetterRetentionSeconds',
  imageBucket: 'ImageBucket',
  imagePrefix: 'ImagePrefix',
  recordsBucket: 'RecordsBucket',
  recordsPrefix: 'RecordsPrefix',
  targetCollections: 'TargetCollections',
  sourceCollections: 'SourceCollections',
  queueSenders: 'QueueSenders',
  retentionDays: 'RetentionDays',
  dataKey: 'DataKey',
} as const;

/** DataKey's values: keys of AWS's, or one key of the stack's that operators control and can revoke. */
const DATA_KEYS = { awsManaged: 'aws-managed', customerManaged: 'customer-managed' } as const;

function retentionParameter(scope: Construct, id: string, defaultSeconds: number, description: string): CfnParameter {
  return new CfnParameter(scope, id, {
    type: 'Number',
    default: defaultSeconds,
    minValue: 60,
    maxValue: FOURTEEN_DAYS_IN_SECONDS,
    description: `${description}, in seconds (60 to ${FOURTEEN_DAYS_IN_SECONDS})`,
  });
}

export class ReindexStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly resultsQueue: sqs.Queue;
  readonly resultsDlq: sqs.Queue;
  readonly reviewDlq: sqs.Queue;
  readonly intakeQueue: sqs.Queue;
  readonly resultsTable: dynamodb.Table;
  readonly workerPolicy: iam.ManagedPolicy;
  /** The customer-managed key: a deployment creates it only with DataKey customer-managed. */
  readonly dataKey: kms.Key;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);

    // ---------------------------------------------------------------------------------------
    // Parameters

    const namePrefix = new CfnParameter(this, PARAMETERS.namePrefix, {
      type: 'String',
      default: 'reindex',
      // Lower case, for the bucket; short enough for `<prefix>-<account>-<region>` to fit its 63 characters.
      allowedPattern: '^[a-z0-9][a-z0-9-]{0,29}$',
      constraintDescription: 'lower-case letters, digits and hyphens, at most 30, starting with a letter or digit',
      description:
        'Names every resource: queues <prefix>-results, -results-dlq, -review-dlq, -intake; table <prefix>-results; bucket <prefix>-<account>-<region>',
    }).valueAsString;
    const resultsQueueRetention = retentionParameter(
      this,
      PARAMETERS.resultsQueueRetention,
      FOUR_DAYS_IN_SECONDS,
      'How long the results queue keeps a message',
    );
    const intakeQueueRetention = retentionParameter(
      this,
      PARAMETERS.intakeQueueRetention,
      FOUR_DAYS_IN_SECONDS,
      'How long the intake queue keeps an upload notification',
    );
    const deadLetterRetention = retentionParameter(
      this,
      PARAMETERS.deadLetterRetention,
      FOURTEEN_DAYS_IN_SECONDS,
      'How long the review DLQ and the results DLQ keep a message',
    );
    const retentionDays = new CfnParameter(this, PARAMETERS.retentionDays, {
      type: 'Number',
      default: DEFAULT_RETENTION_DAYS,
      minValue: 1,
      description: `Days after it was written that S3 deletes what a run wrote to the bucket under ${RUNS_PREFIX} (chunks, redrive records files, reports), once the run has ended. The ledger is kept`,
    }).valueAsNumber;
    const imageBucket = new CfnParameter(this, PARAMETERS.imageBucket, {
      type: 'String',
      minLength: 3,
      description:
        "The bucket of the images the old collection was indexed from; IndexFaces reads them with the worker's permissions",
    }).valueAsString;
    const imagePrefix = new CfnParameter(this, PARAMETERS.imagePrefix, {
      type: 'String',
      default: '',
      description: 'The images key prefix in ImageBucket, such as people/ (empty: the whole bucket)',
    }).valueAsString;
    const recordsBucket = new CfnParameter(this, PARAMETERS.recordsBucket, {
      type: 'String',
      default: '',
      description: "The bucket runs' records files are in (empty: this stack's bucket)",
    }).valueAsString;
    const recordsPrefix = new CfnParameter(this, PARAMETERS.recordsPrefix, {
      type: 'String',
      default: RECORDS_PREFIX,
      description: `The records files' key prefix in RecordsBucket (default ${RECORDS_PREFIX}, where uploads start runs)`,
    }).valueAsString;
    const targetCollections = new CfnParameter(this, PARAMETERS.targetCollections, {
      type: 'String',
      minLength: 1,
      description: 'The collections runs migrate into, as a name or an IAM wildcard pattern such as faces-v7-*',
    }).valueAsString;
    const sourceCollections = new CfnParameter(this, PARAMETERS.sourceCollections, {
      type: 'String',
      default: '',
      description: 'The collections runs migrate from (reindex start --source), as a name or pattern; empty: none',
    }).valueAsString;

    const dataKeyChoice = new CfnParameter(this, PARAMETERS.dataKey, {
      type: 'String',
      default: DATA_KEYS.awsManaged,
      allowedValues: Object.values(DATA_KEYS),
      description: `The KMS key bucket, queues and results table are encrypted with: ${DATA_KEYS.awsManaged} (SSE-S3, SSE-SQS, the aws/dynamodb key) or ${DATA_KEYS.customerManaged} (one key of this stack's, alias/<prefix>-data, rotated yearly, which operators control and can disable to cut off every read of the face data)`,
    }).valueAsString;

    const hasRecordsBucket = new CfnCondition(this, 'HasRecordsBucket', {
      expression: Fn.conditionNot(Fn.conditionEquals(recordsBucket, '')),
    });
    const hasSourceCollections = new CfnCondition(this, 'HasSourceCollections', {
      expression: Fn.conditionNot(Fn.conditionEquals(sourceCollections, '')),
    });
    const hasCustomerManagedKey = new CfnCondition(this, 'HasCustomerManagedKey', {
      expression: Fn.conditionEquals(dataKeyChoice, DATA_KEYS.customerManaged),
    });

    // ---------------------------------------------------------------------------------------
    // The customer-managed key, with DataKey customer-managed: face data is biometric, and with a key
    // of their own operators decide who may read it and can revoke every read by disabling the key.
    // CDK's encryption settings cannot follow a parameter, so bucket, queues and table are built with
    // their AWS-managed settings, and Fn::If on their CloudFormation properties puts the key's in place.

    /**
     * `whenCustomerManaged` with DataKey customer-managed;
     * with aws-managed `otherwise`, by default nothing, which leaves the property out.
     */
    const withDataKey = (whenCustomerManaged: unknown, otherwise: unknown = Aws.NO_VALUE) =>
      Fn.conditionIf(hasCustomerManagedKey.logicalId, whenCustomerManaged, otherwise);
    const onlyWithDataKey = (construct: Construct) => {
      (construct.node.defaultChild as CfnResource).cfnOptions.condition = hasCustomerManagedKey;
    };

    this.dataKey = new kms.Key(this, 'CustomerManagedKey', {
      description: `rekognition-reindex ${namePrefix}: the bucket, the queues and the results table`,
      enableKeyRotation: true,
      // Kept when the stack goes, as the bucket and the table are: without it what they hold is unreadable.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // S3 sends its notifications of records uploads to the intake queue, which SQS encrypts with the key.
    this.dataKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'BucketNotifiesIntakeQueue',
        principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    onlyWithDataKey(this.dataKey);
    onlyWithDataKey(
      new kms.Alias(this, 'CustomerManagedKeyAlias', {
        aliasName: `alias/${namePrefix}-data`,
        targetKey: this.dataKey,
      }),
    );

    // ---------------------------------------------------------------------------------------
    // Queues: SSE-SQS, or SSE-KMS with the customer-managed key; S3 notifications can write to
    // either (the aws/sqs KMS key would refuse them)

    const queue = (id: string, suffix: string, retention: CfnParameter, deadLetterQueue?: sqs.DeadLetterQueue) => {
      const created = new sqs.Queue(this, id, {
        queueName: `${namePrefix}-${suffix}`,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.seconds(retention.valueAsNumber),
        visibilityTimeout: VISIBILITY_TIMEOUT,
        deadLetterQueue,
      });
      // As QueueEncryption.KMS would have it: the key, and no SSE-SQS, which SQS refuses beside a key.
      const cfnQueue = created.node.defaultChild as sqs.CfnQueue;
      cfnQueue.kmsMasterKeyId = Token.asString(withDataKey(this.dataKey.keyArn));
      cfnQueue.sqsManagedSseEnabled = withDataKey(Aws.NO_VALUE, true);
      return created;
    };
    this.resultsDlq = queue('ResultsDlq', 'results-dlq', deadLetterRetention);
    this.resultsQueue = queue('ResultsQueue', 'results', resultsQueueRetention, {
      queue: this.resultsDlq,
      maxReceiveCount: RESULTS_MAX_RECEIVE_COUNT,
    });
    this.reviewDlq = queue('ReviewDlq', 'review-dlq', deadLetterRetention);
    this.intakeQueue = queue('IntakeQueue', 'intake', intakeQueueRetention);

    // A row on the results queue says who is who; the drain checks its signature, and the queues
    // also refuse senders other than the roles named, when named.
    const queueSenders = new CfnParameter(this, PARAMETERS.queueSenders, {
      type: 'String',
      default: '',
      description:
        "IAM role ARNs, comma-separated, that alone may send to the stack's queues: the worker's role, and an operator's for `reindex dlq requeue-results`. Empty: any principal of the account whose own policy allows it",
    }).valueAsString;
    const hasQueueSenders = new CfnCondition(this, 'HasQueueSenders', {
      expression: Fn.conditionNot(Fn.conditionEquals(queueSenders, '')),
    });
    for (const guarded of [this.resultsQueue, this.resultsDlq, this.reviewDlq, this.intakeQueue]) {
      guarded.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyNamedRolesSend',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['sqs:SendMessage'],
          resources: [guarded.queueArn],
          conditions: {
            // Only IAM principals carry a PrincipalArn: S3's notifications to the intake queue pass.
            Null: { 'aws:PrincipalArn': 'false' },
            // '*' when no role is named: the statement then denies nothing.
            ArnNotLike: {
              'aws:PrincipalArn': Fn.conditionIf(hasQueueSenders.logicalId, Fn.split(',', queueSenders), '*'),
            },
          },
        }),
      );
    }

    // ---------------------------------------------------------------------------------------
    // Bucket, notifying the intake queue of records files uploaded under records/

    // The name is known before the bucket exists, so the queue policy names the bucket without
    // depending on it and the bucket, whose notification S3 checks on creation, waits for the policy.
    const bucketName = `${namePrefix}-${Aws.ACCOUNT_ID}-${Aws.REGION}`;
    this.intakeQueue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'BucketNotifiesRecordsUploads',
        principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.intakeQueue.queueArn],
        conditions: {
          ArnEquals: { 'aws:SourceArn': `arn:${Aws.PARTITION}:s3:::${bucketName}` },
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        },
      }),
    );
    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      // What a run writes expires RetentionDays days after it was written, and never before its
      // run has ended: S3 counts from an object's creation, so a run tags its objects when it ends
      // and only tagged objects expire. An object a run that never ended left untagged is removed by
      // `reindex purge <run>`. No rule expires ledger/: it keeps re-runs exactly-once, and
      // `reindex purge` and `reindex forget` remove it. The bucket is unversioned, so an expired
      // object leaves no noncurrent copy behind.
      lifecycleRules: [
        {
          id: 'ExpireRunFiles',
          prefix: RUNS_PREFIX,
          tagFilters: { [RUN_ENDED_TAG.Key]: RUN_ENDED_TAG.Value },
          expiration: Duration.days(retentionDays),
        },
        // Parts of an upload never completed are copies too, and no listing of objects shows them.
        { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    // Set on the resource itself: bucket.addEventNotification would deploy a Lambda function to do it.
    const cfnBucket = this.bucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.bucketEncryption = {
      serverSideEncryptionConfiguration: [
        {
          serverSideEncryptionByDefault: withDataKey(
            { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: this.dataKey.keyArn },
            { SSEAlgorithm: 'AES256' },
          ),
          // One data key for the bucket, not one KMS request for each object written or read.
          bucketKeyEnabled: withDataKey(true),
        },
      ],
    };
    cfnBucket.notificationConfiguration = {
      queueConfigurations: [
        {
          event: 's3:ObjectCreated:*',
          queue: this.intakeQueue.queueArn,
          filter: { s3Key: { rules: [{ name: 'prefix', value: RECORDS_PREFIX }] } },
        },
      ],
    };
    const intakePolicy = this.intakeQueue.node.tryFindChild('Policy');
    if (!intakePolicy) throw new Error("the intake queue's resource policy was not created");
    this.bucket.node.addDependency(intakePolicy);

    // ---------------------------------------------------------------------------------------
    // Results table

    this.resultsTable = new dynamodb.Table(this, 'ResultsTable', {
      tableName: `${namePrefix}-results`,
      partitionKey: { name: 'OldFaceId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // The rows say which new face is whose: deleting the table takes turning this off first.
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      // Epoch seconds, on the rows of a run started with a row expiry only: the TTL deletes no other row.
      timeToLiveAttribute: 'ExpiresAt',
    });
    // A run counts its own rows here, to know they are all in while other runs keep the queue busy.
    this.resultsTable.addGlobalSecondaryIndex({
      indexName: ROWS_BY_RUN_INDEX,
      partitionKey: { name: 'RunId', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'MigratedAt', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [SETTLED_DUPLICATES],
    });
    // As TableEncryption.CUSTOMER_MANAGED would have it, with the customer-managed key.
    const cfnTable = this.resultsTable.node.defaultChild as dynamodb.CfnTable;
    cfnTable.sseSpecification = {
      sseEnabled: true,
      sseType: Token.asString(withDataKey('KMS')),
      kmsMasterKeyId: Token.asString(withDataKey(this.dataKey.keyArn)),
    };

    // ---------------------------------------------------------------------------------------
    // The worker's managed policy, from the same function `npm run policy:worker` prints

    const document = workerPolicy({
      partition: Aws.PARTITION,
      region: Aws.REGION,
      account: Aws.ACCOUNT_ID,
      bucket: this.bucket.bucketName,
      // `<bucket>/<prefix>`: worker-policy.ts splits at the first slash, which no token holds.
      recordsLocations: [
        `${Token.asString(Fn.conditionIf(hasRecordsBucket.logicalId, recordsBucket, this.bucket.bucketName))}/${recordsPrefix}`,
      ],
      imageLocations: [`${imageBucket}/${imagePrefix}`],
      resultsQueueArn: this.resultsQueue.queueArn,
      resultsDlqArn: this.resultsDlq.queueArn,
      reviewDlqArn: this.reviewDlq.queueArn,
      resultsTableArn: this.resultsTable.tableArn,
      targetCollections: [targetCollections],
      // Without sources the statement names the targets again, which grants nothing more.
      sourceCollections: [
        Token.asString(Fn.conditionIf(hasSourceCollections.logicalId, sourceCollections, targetCollections)),
      ],
      dataKey: { arn: this.dataKey.keyArn, urlSuffix: Aws.URL_SUFFIX },
    });
    this.workerPolicy = new iam.ManagedPolicy(this, 'WorkerPolicy', {
      description: "rekognition-reindex worker: only the actions its activities call, on only this stack's resources",
      document: iam.PolicyDocument.fromJson(document),
    });
    // The statement on the key only where the key exists. PolicyDocument keeps the statements in
    // their order, so the override takes that statement's place.
    const dataKeyStatement = document.Statement.findIndex(({ Sid }) => Sid === DATA_KEY_STATEMENT);
    const cfnWorkerPolicy = this.workerPolicy.node.defaultChild as iam.CfnManagedPolicy;
    cfnWorkerPolicy.addPropertyOverride(
      `PolicyDocument.Statement.${dataKeyStatement}`,
      withDataKey(document.Statement[dataKeyStatement]),
    );

    // ---------------------------------------------------------------------------------------
    // Outputs: the worker's environment, key in PascalCase, description the variable itself

    const values: Record<StackVariable, string> = {
      AWS_REGION: Aws.REGION,
      REINDEX_BUCKET: this.bucket.bucketName,
      // Every bucket worker and CLI use must be this account's: unset the variable to use images or
      // records files in another account's bucket.
      REINDEX_BUCKET_OWNER: Aws.ACCOUNT_ID,
      REINDEX_RESULTS_QUEUE_URL: this.resultsQueue.queueUrl,
      REINDEX_RESULTS_DLQ_URL: this.resultsDlq.queueUrl,
      REINDEX_REVIEW_DLQ_URL: this.reviewDlq.queueUrl,
      REINDEX_INTAKE_QUEUE_URL: this.intakeQueue.queueUrl,
      REINDEX_RESULTS_TABLE: this.resultsTable.tableName,
      REINDEX_IMAGE_LOCATIONS: `s3://${imageBucket}/${imagePrefix}`,
    };
    for (const variable of STACK_ENVIRONMENT) {
      new CfnOutput(this, outputKey(variable), { value: values[variable], description: variable });
    }
    new CfnOutput(this, WORKER_POLICY_OUTPUT, {
      value: this.workerPolicy.managedPolicyArn,
      description: "The worker's least-privilege IAM managed policy: attach it to the role the worker runs as",
    });
  }
}
