import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { Construct } from 'constructs';
import { buildApp } from '../../infra/aws/app';
import { STACK_ENVIRONMENT, WORKER_POLICY_OUTPUT, environmentFromOutputs, outputKey } from '../../infra/aws/outputs';
import { PARAMETERS, type ReindexStack } from '../../infra/aws/stack';
import { type PolicyDocument, workerPolicy } from '../../infra/aws/worker-policy';
import { loadConfig } from '../../src/domain/config';
import { RUN_ENDED_TAG, chunkKey, redriveRecordsKey, reportKey } from '../../src/shared';
import { resultsTableDefinition } from '../../src/stores/results-table';
import { type Deployment, type Template as TemplateJson, evaluator } from './cloudformation';

const ROOT = path.resolve(__dirname, '../..');

let outdir: string;
let stack: ReindexStack;
let template: Template;
let json: TemplateJson;

beforeAll(() => {
  outdir = mkdtempSync(path.join(tmpdir(), 'reindex-cdk-'));
  ({ stack } = buildApp({ outdir, stackName: 'reindex-test' }));
  template = Template.fromStack(stack);
  json = template.toJSON() as TemplateJson;
});

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

function logicalId(construct: Construct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

/** A deployment into account 111122223333, eu-west-1, with the parameters that have no default. */
function deployment(parameters: Record<string, string> = {}, partition = 'aws'): Deployment {
  return {
    partition,
    region: 'eu-west-1',
    account: '111122223333',
    parameters: { ImageBucket: 'photos', ImagePrefix: 'people/', TargetCollections: 'faces-v7-*', ...parameters },
  };
}

/** A resource's properties as a deployment gives them. */
function deployedProperties(at: Deployment, construct: Construct): Record<string, unknown> {
  return evaluator(json, at).evaluate(json.Resources[logicalId(construct)]?.Properties) as Record<string, unknown>;
}

/** The worker policy as deployed: CDK writes a one-element list as its element, IAM reads both alike. */
function deployedPolicy(at: Deployment): PolicyDocument {
  const [policy] = Object.values(json.Resources).filter(({ Type }) => Type === 'AWS::IAM::ManagedPolicy');
  const document = evaluator(json, at).evaluate(policy?.Properties?.PolicyDocument) as PolicyDocument;
  const list = (value: string | string[]) => (Array.isArray(value) ? value : [value]);
  return {
    ...document,
    Statement: document.Statement.map((statement) => ({
      ...statement,
      Action: list(statement.Action),
      Resource: list(statement.Resource),
    })),
  };
}

interface Tag {
  Key: string;
  Value: string;
}

/** The parts of an S3 lifecycle rule this stack sets or must not set. */
interface LifecycleRule {
  Id: string;
  Status: 'Enabled' | 'Disabled';
  Prefix?: string;
  Filter?: { Prefix?: string };
  TagFilters?: Tag[];
  ExpirationInDays?: string | number;
  ExpirationDate?: string;
  NoncurrentVersionExpiration?: unknown;
  AbortIncompleteMultipartUpload?: { DaysAfterInitiation: number };
}

function lifecycleRules(at: Deployment): LifecycleRule[] {
  const { Rules } = evaluator(json, at).evaluate(
    json.Resources[logicalId(stack.bucket)]?.Properties?.LifecycleConfiguration,
  ) as { Rules: LifecycleRule[] };
  return Rules;
}

/**
 * The enabled rules that delete current objects, each with the key prefix it applies to ('' for the
 * whole bucket) and the tags an object must carry for it to apply.
 */
function expiringRules(at: Deployment): { prefix: string; tags: Tag[]; days: LifecycleRule['ExpirationInDays'] }[] {
  return lifecycleRules(at)
    .filter(
      (rule) => rule.Status === 'Enabled' && (rule.ExpirationInDays !== undefined || rule.ExpirationDate !== undefined),
    )
    .map((rule) => ({
      prefix: rule.Prefix ?? rule.Filter?.Prefix ?? '',
      tags: rule.TagFilters ?? [],
      days: rule.ExpirationInDays,
    }));
}

/**
 * The expiring rules S3 applies to an object, as it matches them:
 * the key has the rule's prefix and the object every tag the rule names.
 */
function rulesExpiring(at: Deployment, key: string, tags: Tag[]) {
  return expiringRules(at).filter(
    (rule) =>
      key.startsWith(rule.prefix) &&
      rule.tags.every((wanted) => tags.some((tag) => tag.Key === wanted.Key && tag.Value === wanted.Value)),
  );
}

describe('bucket', () => {
  test('is encrypted, blocks public access, refuses plain HTTP and is kept when the stack goes', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
      }),
      DeletionPolicy: 'Retain',
    });
    // SSE-S3 unless DataKey says otherwise.
    expect(deployedProperties(deployment(), stack.bucket).BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId(stack.bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  test('notifies the intake queue of every object created under records/, and only after the queue lets S3 send', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              Event: 's3:ObjectCreated:*',
              Queue: { 'Fn::GetAtt': [logicalId(stack.intakeQueue), 'Arn'] },
              Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: 'records/' }] } },
            },
          ],
        },
      }),
      DependsOn: Match.arrayWith([Match.stringLikeRegexp('^IntakeQueuePolicy')]),
    });

    const at = deployment();
    const { evaluate } = evaluator(json, at);
    const [intakePolicy] = Object.values(json.Resources).filter(
      ({ Type, Properties }) =>
        Type === 'AWS::SQS::QueuePolicy' &&
        JSON.stringify(Properties?.Queues) === JSON.stringify([{ Ref: logicalId(stack.intakeQueue) }]),
    );
    const { Statement } = evaluate(intakePolicy?.Properties?.PolicyDocument) as {
      Statement: Record<string, unknown>[];
    };
    expect(Statement).toContainEqual({
      Sid: 'BucketNotifiesRecordsUploads',
      Effect: 'Allow',
      Principal: { Service: 's3.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: 'arn:aws:sqs:eu-west-1:111122223333:reindex-intake',
      Condition: {
        ArnEquals: { 'aws:SourceArn': evaluate({ 'Fn::GetAtt': [logicalId(stack.bucket), 'Arn'] }) },
        StringEquals: { 'aws:SourceAccount': '111122223333' },
      },
    });
  });
});

describe('bucket retention', () => {
  const written = [
    chunkKey('run-1', 0),
    redriveRecordsKey('run-1'),
    reportKey('run-1', 'json'),
    reportKey('run-1', 'csv'),
  ];

  test("deletes a run's chunks, redrive records file and report RetentionDays days after they were written, once the run has ended and tagged them, 30 by default", () => {
    // The tag as buckets already deployed hold it on ended runs' objects: a rule on another would never expire them.
    const ended = [{ Key: 'reindex-run', Value: 'ended' }];
    expect(expiringRules(deployment({ RetentionDays: '7' }))).toEqual([{ prefix: 'runs/', tags: ended, days: '7' }]);
    expect(expiringRules(deployment())).toEqual([{ prefix: 'runs/', tags: ended, days: '30' }]);

    const at = deployment();
    expect(written.filter((key) => rulesExpiring(at, key, [RUN_ENDED_TAG]).length !== 1)).toEqual([]);
  });

  test('deletes nothing of a run still running: its objects carry no tag yet, and no rule expires an untagged object', () => {
    const at = deployment({ RetentionDays: '1' });

    expect(written.flatMap((key) => rulesExpiring(at, key, []))).toEqual([]);
  });

  test('keeps the ledger, which re-runs need to stay exactly-once: no rule expires an object under ledger/, even one tagged as ended', () => {
    // A key as src/stores/ledger.ts names it, under ledger/<target>/.
    const ledgerKey = 'ledger/faces-v7/indexed/0123abcd.json';

    expect(rulesExpiring(deployment({ RetentionDays: '1' }), ledgerKey, [RUN_ENDED_TAG])).toEqual([]);
  });

  test('leaves no other copy: uploads left incomplete are aborted after a day anywhere in the bucket, which keeps no old versions', () => {
    const aborting = lifecycleRules(deployment()).filter(
      (rule) => rule.Status === 'Enabled' && rule.AbortIncompleteMultipartUpload !== undefined,
    );

    expect(aborting).toEqual([
      {
        Id: expect.any(String) as string,
        Status: 'Enabled',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      },
    ]);
    expect(json.Resources[logicalId(stack.bucket)]?.Properties).not.toHaveProperty('VersioningConfiguration');
  });
});

describe('queues', () => {
  test('four queues, every one with SSE-SQS and a policy refusing plain HTTP', () => {
    template.resourceCountIs('AWS::SQS::Queue', 4);
    for (const queue of [stack.resultsQueue, stack.resultsDlq, stack.reviewDlq, stack.intakeQueue]) {
      // Unless DataKey says otherwise.
      expect(deployedProperties(deployment(), queue)).toMatchObject({ SqsManagedSseEnabled: true });
      expect(deployedProperties(deployment(), queue)).not.toHaveProperty('KmsMasterKeyId');
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: logicalId(queue) }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  test('refuse senders other than the roles QueueSenders names, and deny nothing when it names none', () => {
    const roles = 'arn:aws:iam::111122223333:role/reindex-worker,arn:aws:iam::111122223333:role/reindex-operator';
    const senderRule = (at: Deployment, construct: Construct) => {
      const [policy] = Object.values(json.Resources).filter(
        ({ Type, Properties }) =>
          Type === 'AWS::SQS::QueuePolicy' &&
          JSON.stringify(Properties?.Queues) === JSON.stringify([{ Ref: logicalId(construct) }]),
      );
      const { Statement } = evaluator(json, at).evaluate(policy?.Properties?.PolicyDocument) as {
        Statement: { Sid?: string }[];
      };
      return Statement.find((statement) => statement.Sid === 'OnlyNamedRolesSend');
    };

    for (const queue of [stack.resultsQueue, stack.resultsDlq, stack.reviewDlq, stack.intakeQueue]) {
      const name = evaluator(json, deployment()).evaluate(
        json.Resources[logicalId(queue)]?.Properties?.QueueName,
      ) as string;
      expect(senderRule(deployment({ QueueSenders: roles }), queue)).toEqual({
        Sid: 'OnlyNamedRolesSend',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'sqs:SendMessage',
        Resource: `arn:aws:sqs:eu-west-1:111122223333:${name}`,
        Condition: { Null: { 'aws:PrincipalArn': 'false' }, ArnNotLike: { 'aws:PrincipalArn': roles.split(',') } },
      });
      expect(senderRule(deployment(), queue)).toMatchObject({ Condition: { ArnNotLike: { 'aws:PrincipalArn': '*' } } });
    }
  });

  test("mirror the local stack's: names, the results queue's redrive after 5 receives, retention and visibility", () => {
    const { evaluate } = evaluator(json, deployment());
    const queue = (construct: Construct) => evaluate(json.Resources[logicalId(construct)]?.Properties);

    expect(queue(stack.resultsQueue)).toMatchObject({
      QueueName: 'reindex-results',
      RedrivePolicy: {
        deadLetterTargetArn: 'arn:aws:sqs:eu-west-1:111122223333:reindex-results-dlq',
        maxReceiveCount: 5,
      },
      MessageRetentionPeriod: '345600',
      VisibilityTimeout: 30,
    });
    expect(queue(stack.resultsDlq)).toMatchObject({
      QueueName: 'reindex-results-dlq',
      MessageRetentionPeriod: '1209600',
      VisibilityTimeout: 30,
    });
    expect(queue(stack.reviewDlq)).toMatchObject({
      QueueName: 'reindex-review-dlq',
      MessageRetentionPeriod: '1209600',
      VisibilityTimeout: 30,
    });
    expect(queue(stack.intakeQueue)).toMatchObject({
      QueueName: 'reindex-intake',
      MessageRetentionPeriod: '345600',
      VisibilityTimeout: 30,
    });
    for (const other of [stack.resultsDlq, stack.reviewDlq, stack.intakeQueue])
      expect(queue(other)).not.toHaveProperty('RedrivePolicy');
  });

  test('retention comes from the parameters', () => {
    const { evaluate } = evaluator(
      json,
      deployment({
        ResultsQueueRetentionSeconds: '86400',
        IntakeQueueRetentionSeconds: '3600',
        DeadLetterRetentionSeconds: '604800',
      }),
    );
    const retention = (construct: Construct) =>
      (evaluate(json.Resources[logicalId(construct)]?.Properties) as { MessageRetentionPeriod: string })
        .MessageRetentionPeriod;

    expect([stack.resultsQueue, stack.intakeQueue, stack.resultsDlq, stack.reviewDlq].map(retention)).toEqual([
      '86400',
      '3600',
      '604800',
      '604800',
    ]);
  });
});

test('results table: key OldFaceId (S), an index of rows by run, on demand, point-in-time recovery, encrypted, protected from deletion, kept when the stack goes', () => {
  template.resourceCountIs('AWS::DynamoDB::Table', 1);
  template.hasResource('AWS::DynamoDB::Table', {
    Properties: Match.objectLike({
      KeySchema: [{ AttributeName: 'OldFaceId', KeyType: 'HASH' }],
      AttributeDefinitions: resultsTableDefinition('results').AttributeDefinitions,
      GlobalSecondaryIndexes: [
        {
          IndexName: 'RowsByRun',
          KeySchema: [
            { AttributeName: 'RunId', KeyType: 'HASH' },
            { AttributeName: 'MigratedAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['SettledDuplicates'] },
        },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    }),
    DeletionPolicy: 'Retain',
  });
  const { TableName, SSESpecification } = deployedProperties(deployment({ NamePrefix: 'acme' }), stack.resultsTable);
  expect(TableName).toBe('acme-results');
  // The AWS-managed key, unless DataKey says otherwise.
  expect(SSESpecification).toEqual({ SSEEnabled: true });
});

test('results table: DynamoDB deletes a row once the time in its ExpiresAt attribute has passed', () => {
  template.hasResourceProperties('AWS::DynamoDB::Table', {
    TimeToLiveSpecification: { AttributeName: 'ExpiresAt', Enabled: true },
  });
});

describe('worker policy', () => {
  const account = '111122223333';
  const region = 'eu-west-1';

  test("is worker-policy.ts's for the stack's resources, with the default records location and no source collections", () => {
    const bucket = `reindex-${account}-${region}`;
    const expected = workerPolicy({
      partition: 'aws',
      region,
      account,
      bucket,
      recordsLocations: [`${bucket}/records/`],
      imageLocations: ['photos/people/'],
      resultsQueueArn: `arn:aws:sqs:${region}:${account}:reindex-results`,
      resultsDlqArn: `arn:aws:sqs:${region}:${account}:reindex-results-dlq`,
      reviewDlqArn: `arn:aws:sqs:${region}:${account}:reindex-review-dlq`,
      resultsTableArn: `arn:aws:dynamodb:${region}:${account}:table/reindex-results`,
      targetCollections: ['faces-v7-*'],
      sourceCollections: [],
    });

    const deployed = deployedPolicy(deployment());

    // Without source collections the stack still has the statement (a template cannot drop it),
    // naming only the targets, on which ReadTargetCollections grants the same already.
    const source = deployed.Statement.find(({ Sid }) => Sid === 'SourceCollections');
    const target = deployed.Statement.find(({ Sid }) => Sid === 'ReadTargetCollections');
    expect(source).toEqual({
      Sid: 'SourceCollections',
      Effect: 'Allow',
      Action: ['rekognition:DescribeCollection', 'rekognition:ListFaces'],
      Resource: target?.Resource,
    });
    expect(target?.Action).toContain('rekognition:DescribeCollection');
    expect({ ...deployed, Statement: deployed.Statement.filter(({ Sid }) => Sid !== 'SourceCollections') }).toEqual(
      expected,
    );
  });

  test("is worker-policy.ts's for every parameter given, in another partition", () => {
    const bucket = `acme-${account}-${region}`;
    const expected = workerPolicy({
      partition: 'aws-cn',
      region,
      account,
      bucket,
      recordsLocations: ['records-bucket/incoming/'],
      imageLocations: ['photos'],
      resultsQueueArn: `arn:aws-cn:sqs:${region}:${account}:acme-results`,
      resultsDlqArn: `arn:aws-cn:sqs:${region}:${account}:acme-results-dlq`,
      reviewDlqArn: `arn:aws-cn:sqs:${region}:${account}:acme-review-dlq`,
      resultsTableArn: `arn:aws-cn:dynamodb:${region}:${account}:table/acme-results`,
      targetCollections: ['faces-2025'],
      sourceCollections: ['faces-2019-*'],
    });

    const deployed = deployedPolicy(
      deployment(
        {
          NamePrefix: 'acme',
          ImageBucket: 'photos',
          ImagePrefix: '',
          RecordsBucket: 'records-bucket',
          RecordsPrefix: 'incoming/',
          TargetCollections: 'faces-2025',
          SourceCollections: 'faces-2019-*',
        },
        'aws-cn',
      ),
    );

    expect(deployed).toEqual(expected);
  });

  test('is a managed policy of its own, its ARN an output, attached to nothing', () => {
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 1);
    template.resourceCountIs('AWS::IAM::Role', 0);
    template.hasOutput(WORKER_POLICY_OUTPUT, { Value: { Ref: logicalId(stack.workerPolicy) } });
  });
});

describe('DataKey: the key bucket, queues and results table are encrypted with', () => {
  const customerManaged = (parameters: Record<string, string> = {}) =>
    deployment({ DataKey: 'customer-managed', ...parameters });
  const keyArn = (at: Deployment) => evaluator(json, at).evaluate({ 'Fn::GetAtt': [logicalId(stack.dataKey), 'Arn'] });
  const createdOfType = (at: Deployment, type: string) =>
    Object.keys(json.Resources).filter((id) => json.Resources[id]?.Type === type && evaluator(json, at).isCreated(id));

  test('customer-managed: one KMS key, rotated, kept when the stack goes, named alias/<prefix>-data', () => {
    const at = customerManaged({ NamePrefix: 'acme' });

    expect(createdOfType(at, 'AWS::KMS::Key')).toEqual([logicalId(stack.dataKey)]);
    expect(json.Resources[logicalId(stack.dataKey)]).toMatchObject({
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    const aliases = createdOfType(at, 'AWS::KMS::Alias').map((id) =>
      evaluator(json, at).evaluate(json.Resources[id]?.Properties),
    );
    expect(aliases).toEqual([{ AliasName: 'alias/acme-data', TargetKeyId: keyArn(at) }]);
  });

  test('customer-managed: the bucket, with an S3 Bucket Key, the four queues and the results table are encrypted with the key', () => {
    const at = customerManaged();
    const key = keyArn(at);

    expect(deployedProperties(at, stack.bucket).BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        { ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: key }, BucketKeyEnabled: true },
      ],
    });
    for (const queue of [stack.resultsQueue, stack.resultsDlq, stack.reviewDlq, stack.intakeQueue]) {
      const properties = deployedProperties(at, queue);
      expect(properties.KmsMasterKeyId).toBe(key);
      // SQS refuses SSE-SQS beside a key.
      expect(properties).not.toHaveProperty('SqsManagedSseEnabled');
    }
    expect(deployedProperties(at, stack.resultsTable).SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: 'KMS',
      KMSMasterKeyId: key,
    });
  });

  test("customer-managed: the key's policy leaves its use to the account's IAM policies, and lets S3 notify the intake queue for the account's buckets", () => {
    const at = customerManaged();
    const { Statement } = evaluator(json, at).evaluate(
      json.Resources[logicalId(stack.dataKey)]?.Properties?.KeyPolicy,
    ) as { Statement: unknown[] };

    expect(Statement).toEqual([
      { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'kms:*', Resource: '*' },
      {
        Sid: 'BucketNotifiesIntakeQueue',
        Effect: 'Allow',
        Principal: { Service: 's3.amazonaws.com' },
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: '*',
        Condition: { StringEquals: { 'aws:SourceAccount': '111122223333' } },
      },
    ]);
  });

  test("customer-managed: the worker policy grants Decrypt and GenerateDataKey on the key alone, through S3, SQS and DynamoDB in the stack's region", () => {
    const at = customerManaged();
    const { Statement } = deployedPolicy(at);

    expect(Statement.filter(({ Action }) => Action.some((action) => action.startsWith('kms:')))).toEqual([
      {
        Sid: 'DataKey',
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
        Resource: [keyArn(at)],
        Condition: {
          StringEquals: {
            'kms:ViaService': [
              's3.eu-west-1.amazonaws.com',
              'sqs.eu-west-1.amazonaws.com',
              'dynamodb.eu-west-1.amazonaws.com',
            ],
          },
        },
      },
    ]);
    expect(Statement.filter(({ Sid }) => Sid !== 'DataKey')).toEqual(deployedPolicy(deployment()).Statement);
  });

  test('aws-managed, the default: no key is created, nothing refers to one, and the worker policy grants no KMS action', () => {
    for (const at of [deployment(), deployment({ DataKey: 'aws-managed' })]) {
      const { evaluate, isCreated } = evaluator(json, at);
      const created = Object.keys(json.Resources).filter(isCreated);

      expect(created.filter((id) => json.Resources[id]?.Type.startsWith('AWS::KMS::'))).toEqual([]);
      // CloudFormation refuses a template that refers to a resource it does not create; so does the evaluator.
      for (const id of created) {
        expect(() => evaluate(json.Resources[id]?.Properties)).not.toThrow();
        expect([json.Resources[id]?.DependsOn ?? []].flat().filter((dependency) => !isCreated(dependency))).toEqual([]);
      }
      for (const { Value } of Object.values(json.Outputs ?? {})) expect(() => evaluate(Value)).not.toThrow();
      expect(
        deployedPolicy(at)
          .Statement.flatMap(({ Action }) => Action)
          .filter((action) => action.startsWith('kms:')),
      ).toEqual([]);
    }
  });
});

describe('outputs', () => {
  test("each variable worker and CLI read, keyed by it in PascalCase, described by it, valued by the stack's resource", () => {
    const expected: Record<(typeof STACK_ENVIRONMENT)[number], unknown> = {
      AWS_REGION: { Ref: 'AWS::Region' },
      REINDEX_BUCKET: { Ref: logicalId(stack.bucket) },
      REINDEX_BUCKET_OWNER: { Ref: 'AWS::AccountId' },
      REINDEX_RESULTS_QUEUE_URL: { Ref: logicalId(stack.resultsQueue) },
      REINDEX_RESULTS_DLQ_URL: { Ref: logicalId(stack.resultsDlq) },
      REINDEX_REVIEW_DLQ_URL: { Ref: logicalId(stack.reviewDlq) },
      REINDEX_INTAKE_QUEUE_URL: { Ref: logicalId(stack.intakeQueue) },
      REINDEX_RESULTS_TABLE: { Ref: logicalId(stack.resultsTable) },
      REINDEX_IMAGE_LOCATIONS: {
        'Fn::Join': ['', ['s3://', { Ref: PARAMETERS.imageBucket }, '/', { Ref: PARAMETERS.imagePrefix }]],
      },
    };
    for (const variable of STACK_ENVIRONMENT)
      template.hasOutput(outputKey(variable), { Description: variable, Value: expected[variable] });
    expect(Object.keys(json.Outputs ?? {}).sort()).toEqual(
      [...STACK_ENVIRONMENT.map(outputKey), WORKER_POLICY_OUTPUT].sort(),
    );
  });

  test('as a deployment gives them, they are a configuration worker and CLI accept, naming what the policy grants', () => {
    const at = deployment();
    const { evaluate } = evaluator(json, at);
    const outputs = Object.entries(json.Outputs ?? {}).map(([OutputKey, { Value }]) => ({
      OutputKey,
      OutputValue: String(evaluate(Value)),
    }));

    const { variables } = environmentFromOutputs(outputs);
    const config = loadConfig(variables);

    expect(config).toMatchObject({
      aws: { region: 'eu-west-1', s3ForcePathStyle: false, sqsEndpointConfigured: false },
      bucket: 'reindex-111122223333-eu-west-1',
      resultsQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-results',
      reviewDlqUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-review-dlq',
      intakeQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/reindex-intake',
      resultsTable: 'reindex-results',
      imageLocations: [{ Bucket: 'photos', Prefix: 'people/' }],
    });
    const granted = deployedPolicy(at).Statement.flatMap(({ Resource }) => Resource);
    expect(granted).toEqual(
      expect.arrayContaining([
        `arn:aws:s3:::${config.bucket}`,
        'arn:aws:sqs:eu-west-1:111122223333:reindex-results',
        'arn:aws:sqs:eu-west-1:111122223333:reindex-review-dlq',
        `arn:aws:dynamodb:eu-west-1:111122223333:table/${config.resultsTable}`,
      ]),
    );
  });
});

test('parameters: names, retention, images, records, collections and data key, each with its default or none', () => {
  const parameters = template.findParameters('*');
  expect(Object.keys(parameters).sort()).toEqual(Object.values(PARAMETERS).sort());
  expect(parameters).toMatchObject({
    NamePrefix: { Type: 'String', Default: 'reindex' },
    ResultsQueueRetentionSeconds: { Type: 'Number', Default: 345600, MinValue: 60, MaxValue: 1209600 },
    IntakeQueueRetentionSeconds: { Type: 'Number', Default: 345600, MinValue: 60, MaxValue: 1209600 },
    DeadLetterRetentionSeconds: { Type: 'Number', Default: 1209600, MinValue: 60, MaxValue: 1209600 },
    ImageBucket: { Type: 'String' },
    ImagePrefix: { Type: 'String', Default: '' },
    RecordsBucket: { Type: 'String', Default: '' },
    RecordsPrefix: { Type: 'String', Default: 'records/' },
    TargetCollections: { Type: 'String' },
    SourceCollections: { Type: 'String', Default: '' },
    RetentionDays: { Type: 'Number', Default: 30, MinValue: 1 },
    DataKey: { Type: 'String', Default: 'aws-managed', AllowedValues: ['aws-managed', 'customer-managed'] },
  });
  expect(parameters.ImageBucket).not.toHaveProperty('Default');
  expect(parameters.TargetCollections).not.toHaveProperty('Default');

  // The prefix names the bucket: lower case only, and short enough for the longest region.
  const prefix = new RegExp(String(parameters.NamePrefix?.AllowedPattern));
  expect(['reindex', 'acme-faces-2025'].filter((name) => prefix.test(name))).toEqual(['reindex', 'acme-faces-2025']);
  expect(['Reindex', 'faces_v7', '-reindex', 'a'.repeat(31)].filter((name) => prefix.test(name))).toEqual([]);
  expect(`${'a'.repeat(30)}-111122223333-ap-southeast-5`.length).toBeLessThanOrEqual(63);
});

test('npm run cdk:synth writes the template, checked against the CloudFormation schemas, with no AWS account or credentials', async () => {
  const synthOut = path.join(outdir, 'synth');
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
  // Where `cdk` would have the app write; the script writes to infra/aws/cdk.out without it.
  Object.assign(env, {
    CDK_OUTDIR: synthOut,
    AWS_CONFIG_FILE: path.join(outdir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(outdir, 'none'),
  });

  await promisify(execFile)('npm', ['run', '-s', 'cdk:synth'], { cwd: ROOT, env, timeout: 150_000 });

  const written = JSON.parse(
    readFileSync(path.join(synthOut, 'rekognition-reindex.template.json'), 'utf8'),
  ) as TemplateJson;
  expect(Object.keys(written.Resources).sort()).toEqual(Object.keys(json.Resources).sort());
  expect(written.Outputs).toEqual(json.Outputs);
  const report = JSON.parse(readFileSync(path.join(synthOut, 'validation-report.json'), 'utf8')) as {
    pluginReports: { conclusion: string }[];
  };
  expect(report.pluginReports.filter(({ conclusion }) => conclusion !== 'success')).toEqual([]);
}, 180_000);
