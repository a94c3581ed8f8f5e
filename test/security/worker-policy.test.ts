/**
 * The worker's least-privilege IAM policy (infra/aws/worker-policy.ts) held to what the worker
 * really calls. A worker on the local stack runs real migrations whose AWS clients record every
 * command they send; each becomes the IAM action AWS authorizes it by and the resource it acts on.
 * Every call must be allowed by the policy, and the policy must grant nothing no call used, but the
 * few grants named below with the reason no run on the local stack can show them.
 *
 * The runs reach every path the worker has: a target refused for its face model (created, then
 * deleted), images in a bucket of their own, a missing image, a malformed line, a new face nobody
 * had, users, an old face two records name, a face left in the target for reconcile to delete, and
 * a re-run under a stricter threshold that takes back what the earlier runs migrated. What no run
 * can show, a request the policy refuses, is held to the policy without a stack.
 */
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  CreateCollectionCommand,
  DeleteFacesCommand,
  IndexFacesCommand,
  ListTagsForResourceCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-rekognition';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import {
  type PolicyDocument,
  type PolicyStatement,
  workerPolicy,
  type WorkerPolicyInput,
} from '../../infra/aws/worker-policy';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import type { ImageRecord } from '../../src/domain/records';
import {
  MIGRATION_TARGET_TAG,
  RUN_ENDED_TAG,
  type ReindexCollectionInput,
  type RunSummary,
  type SyncInput,
  type SyncPlacement,
  type SyncSummary,
} from '../../src/shared';
import type { reindexCollection, syncCollection } from '../../src/workflows';
import { createRunResources, type RunResources, runInput, writeRecords } from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';

/** One call as IAM sees it: the action, the resource, and the condition keys the request carries. */
interface Call {
  action: string;
  resource: string;
  context?: Record<string, string[]>;
}

const PREFIX_OF_CLIENT: Record<string, string> = {
  S3Client: 's3',
  SQSClient: 'sqs',
  DynamoDBClient: 'dynamodb',
  RekognitionClient: 'rekognition',
};

/** API operations authorized by an IAM action of another name. */
const ACTION_OF_OPERATION: Record<string, string> = {
  's3:HeadObject': 's3:GetObject',
  's3:ListObjectsV2': 's3:ListBucket',
  'sqs:SendMessageBatch': 'sqs:SendMessage',
  'sqs:DeleteMessageBatch': 'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibilityBatch': 'sqs:ChangeMessageVisibility',
};

/** Grants no call shows, each with its reason; nothing else may be granted and unused. */
const GRANTED_BUT_NOT_CALLED: Record<string, string> = {
  // Read by the worker process at start (src/quotas.ts), not by an activity this test records.
  'servicequotas:ListServiceQuotas': "the account's IndexFaces quota, for the default rate",
  'servicequotas:ListAWSDefaultServiceQuotas':
    "the region's default IndexFaces quota, when the account has none applied",
};

let resources: RunResources;
let recording: AwsClients;
let worker: RunningWorker;
let client: Client;
const calls: Call[] = [];
const suffix = randomUUID().slice(0, 8);
const imageBucket = `policy-images-${suffix}`;

/** IAM's resource form of every AWS resource the worker names, written as AWS documents them. */
function resourceOf(prefix: string, input: Record<string, unknown>): string {
  const text = (name: string) => (typeof input[name] === 'string' ? input[name] : '');
  // A listing names no key: IAM authorizes it on the bucket.
  if (prefix === 's3')
    return input.Key === undefined ? `arn:aws:s3:::${text('Bucket')}` : `arn:aws:s3:::${text('Bucket')}/${text('Key')}`;
  const { region } = resources.config.aws;
  const account = accountOf(resources.config.resultsQueueUrl);
  // GetQueueUrl names its queue; every other call gives its URL.
  if (prefix === 'sqs')
    return `arn:aws:sqs:${region}:${account}:${text('QueueName') || (text('QueueUrl').split('/').pop() ?? '')}`;
  // A query of an index is authorized on the index.
  if (prefix === 'dynamodb')
    return `arn:aws:dynamodb:${region}:${account}:table/${text('TableName')}${input.IndexName === undefined ? '' : `/index/${text('IndexName')}`}`;
  return text('ResourceArn') || `arn:aws:rekognition:${region}:${account}:collection/${text('CollectionId')}`;
}

/** The condition keys of a request: the listing's prefix, and the tags a request puts on a collection. */
function requestContext(prefix: string, input: Record<string, unknown>): Record<string, string[]> {
  if (prefix === 's3') return typeof input.Prefix === 'string' ? { 's3:prefix': [input.Prefix] } : {};
  const tags = (input.Tags ?? {}) as Record<string, string>;
  const context: Record<string, string[]> = Object.keys(tags).length > 0 ? { 'aws:TagKeys': Object.keys(tags) } : {};
  for (const [key, value] of Object.entries(tags)) context[`aws:RequestTag/${key}`] = [value];
  return context;
}

/** The condition keys of the resource: a collection's tags as they are when the call is made. */
async function resourceContext(call: Call): Promise<Record<string, string[]>> {
  if (!call.resource.startsWith('arn:aws:rekognition:')) return {};
  try {
    const { Tags = {} } = await resources.aws.rekognition.send(
      new ListTagsForResourceCommand({ ResourceArn: call.resource }),
    );
    return Object.fromEntries(Object.entries(Tags).map(([key, value]) => [`aws:ResourceTag/${key}`, [value]]));
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return {};
    throw error;
  }
}

/** The account of a queue URL: the first segment of its path. */
function accountOf(queueUrl: string): string {
  return new URL(queueUrl).pathname.split('/')[1] ?? '';
}

/** The IAM calls one command makes: its own, and for IndexFaces the read of the image it makes as the caller. */
function callsOf(clientName: string, commandName: string, input: Record<string, unknown>): Call[] {
  const prefix = PREFIX_OF_CLIENT[clientName] ?? clientName;
  const operation = `${prefix}:${commandName.replace(/Command$/, '')}`;
  const own = {
    action: ACTION_OF_OPERATION[operation] ?? operation,
    resource: resourceOf(prefix, input),
    context: requestContext(prefix, input),
  };
  const image = (input.Image as { S3Object?: { Bucket?: string; Name?: string } } | undefined)?.S3Object;
  return image ? [own, { action: 's3:GetObject', resource: `arn:aws:s3:::${image.Bucket}/${image.Name}` }] : [own];
}

type Middleware = (
  next: (args: { input: object }) => Promise<unknown>,
  context: { clientName?: string; commandName?: string },
) => (args: { input: object }) => Promise<unknown>;

/** What S3 answers a read of a missing object with when the caller may not list the whole bucket. */
const accessDenied = () =>
  new S3ServiceException({
    name: 'AccessDenied',
    $fault: 'client',
    $metadata: { httpStatusCode: 403 },
    message: 'Access Denied',
  });

/**
 * The worker's clients, each recording every command it sends, with the tags its collection has
 * then. S3 answers as it may for a caller whose listing is limited to prefixes: a read of an object
 * that is not there is refused with 403, not 404.
 */
function recordingClients(config: RunResources['config']): AwsClients {
  const clients = createAwsClients(config);
  const record: Middleware = (next, context) => async (args) => {
    const made = callsOf(context.clientName ?? '', context.commandName ?? '', args.input as Record<string, unknown>);
    for (const call of made) call.context = { ...call.context, ...(await resourceContext(call)) };
    calls.push(...made);
    try {
      return await next(args);
    } catch (error) {
      const read = context.commandName === 'GetObjectCommand' || context.commandName === 'HeadObjectCommand';
      if (read && (error instanceof NoSuchKey || error instanceof NotFound)) throw accessDenied();
      throw error;
    }
  };
  for (const { middlewareStack } of [
    clients.s3,
    clients.sqs,
    clients.dynamodb,
    clients.rekognition,
    clients.indexFaces,
  ] as unknown as {
    middlewareStack: { add(middleware: Middleware, options: { step: 'initialize'; name: string }): void };
  }[]) {
    middlewareStack.add(record, { step: 'initialize', name: 'recordIamCall' });
  }
  return clients;
}

/** IAM's wildcards: `*` any run of characters, `?` any one. */
function matches(pattern: string, resource: string): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`).test(resource);
}

/**
 * IAM's condition operators the policy uses. A key the request lacks fails StringEquals and
 * StringLike, and passes ForAllValues (which holds for every value of none); any other operator fails.
 */
function meets(condition: PolicyStatement['Condition'], context: Record<string, string[]> = {}): boolean {
  return Object.entries(condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, allowed]) => {
      const present = context[key];
      if (operator === 'StringEquals') return present !== undefined && present.some((value) => allowed.includes(value));
      if (operator === 'StringLike')
        return present !== undefined && present.some((value) => allowed.some((pattern) => matches(pattern, value)));
      if (operator === 'ForAllValues:StringEquals') return (present ?? []).every((value) => allowed.includes(value));
      return false;
    }),
  );
}

function allows(policy: PolicyDocument, call: Call): boolean {
  return policy.Statement.some(
    (statement) =>
      statement.Action.includes(call.action) &&
      statement.Resource.some((pattern) => matches(pattern, call.resource)) &&
      meets(statement.Condition, call.context),
  );
}

function policyInput(): WorkerPolicyInput {
  const { config } = resources;
  const account = accountOf(config.resultsQueueUrl);
  const queueArn = (url: string) => `arn:aws:sqs:${config.aws.region}:${account}:${url.split('/').pop() ?? ''}`;
  return {
    partition: 'aws',
    region: config.aws.region,
    account,
    bucket: config.bucket,
    recordsLocations: [`${config.bucket}/records/`],
    imageLocations: [imageBucket],
    resultsQueueArn: queueArn(config.resultsQueueUrl),
    resultsDlqArn: queueArn(resources.resultsDlqUrl),
    reviewDlqArn: queueArn(config.reviewDlqUrl),
    resultsTableArn: `arn:aws:dynamodb:${config.aws.region}:${account}:table/${config.resultsTable}`,
    targetCollections: [`policy-target-${suffix}-*`],
    sourceCollections: [`policy-source-${suffix}-*`],
  };
}

const face = (person: string, left = 0.1): DeclaredFace => ({ person, box: [left, 0.2, 0.35, 0.45] });

function sync(input: SyncInput): Promise<SyncSummary> {
  return client.workflow.execute<typeof syncCollection>('syncCollection', {
    taskQueue: worker.taskQueue,
    workflowId: `policy-sync-${randomUUID()}`,
    args: [input],
  });
}

function run(input: ReindexCollectionInput): Promise<RunSummary> {
  return client.workflow.execute<typeof reindexCollection>('reindexCollection', {
    taskQueue: worker.taskQueue,
    workflowId: `policy-${randomUUID()}`,
    args: [input],
  });
}

/**
 * The photos go to a bucket of their own; the records file, in which a second record names the
 * first record's old face, to where records files live.
 */
async function writeRecordsFile(): Promise<{ manifest: ReindexCollectionInput['manifest']; photoKey: string }> {
  const inImageBucket = { ...resources, config: { ...resources.config, bucket: imageBucket } };
  const written = await writeRecords(
    inImageBucket,
    [
      { faces: [face('ana'), face('stranger', 0.55)], oldFaces: [face('ana')] },
      { faces: [face('bo')], userId: 'user-bo' },
      { faces: [face('bo-again')], userId: 'user-bo' },
      { faces: [face('cy')], missing: true },
      { faces: [face('ana-elsewhere')] },
    ],
    ['{ "not": "a record" }'],
  );
  const { Body } = await resources.aws.s3.send(new GetObjectCommand(written.manifest));
  const lines = ((await Body?.transformToString()) ?? '').split('\n');
  const records = lines.slice(0, 5).map((line) => JSON.parse(line) as ImageRecord);
  const [first, , , , second] = records;
  const [firstFace] = first?.Faces ?? [];
  const [secondFace] = second?.Faces ?? [];
  if (!first || !firstFace || !secondFace) throw new Error('the test wrote records without faces');
  secondFace.FaceId = firstFace.FaceId;
  const manifest = { Bucket: resources.config.bucket, Key: `records/policy-${randomUUID()}.jsonl` };
  await resources.aws.s3.send(
    new PutObjectCommand({
      ...manifest,
      Body: [...records.map((record) => JSON.stringify(record)), ...lines.slice(5)].join('\n'),
    }),
  );
  return { manifest, photoKey: first.Key };
}

describe('requests held to the policy without a stack', () => {
  const bucket = 'reindex-111122223333-eu-west-1';
  const queue = (name: string) => `arn:aws:sqs:eu-west-1:111122223333:${name}`;
  const policy = workerPolicy({
    partition: 'aws',
    region: 'eu-west-1',
    account: '111122223333',
    bucket,
    recordsLocations: [`${bucket}/records/`],
    imageLocations: ['photos'],
    resultsQueueArn: queue('reindex-results'),
    resultsDlqArn: queue('reindex-results-dlq'),
    reviewDlqArn: queue('reindex-review-dlq'),
    resultsTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/reindex-results',
    targetCollections: ['x'],
    sourceCollections: [],
  });
  const s3 = (command: string, input: Record<string, unknown>) =>
    callsOf('S3Client', command, { Bucket: bucket, ...input });
  const collectionX = 'arn:aws:rekognition:eu-west-1:111122223333:collection/x';
  const tagEnded = (Key: string) => s3('PutObjectTaggingCommand', { Key, Tagging: { TagSet: [RUN_ENDED_TAG] } });

  test('a run that has ended lists its folder and tags its chunks, redrive records file and reports', () => {
    const requests = [
      ...s3('ListObjectsV2Command', { Prefix: 'runs/r/' }),
      ...[
        'runs/r/chunks/00000000.json',
        'runs/r/redrive/records.jsonl',
        'runs/r/report/summary.json',
        'runs/r/report/summary.csv',
      ].flatMap(tagEnded),
    ];

    expect(requests.filter((request) => !allows(policy, request))).toEqual([]);
  });

  test('faces, users and the collection itself change only in a target that carries the tag the worker gives it', () => {
    const changes = [
      'DeleteFaces',
      'DeleteCollection',
      'IndexFaces',
      'DisassociateFaces',
      'DeleteUser',
      'AssociateFaces',
      'CreateUser',
    ];
    const onTarget = (command: string, context: Record<string, string[]>): Call[] => [
      { action: `rekognition:${command}`, resource: collectionX, context },
    ];
    const tagged = { [`aws:ResourceTag/${MIGRATION_TARGET_TAG.Key}`]: [MIGRATION_TARGET_TAG.Value] };

    expect(changes.flatMap((command) => onTarget(command, tagged)).filter((call) => !allows(policy, call))).toEqual([]);
    expect(changes.flatMap((command) => onTarget(command, {})).filter((call) => allows(policy, call))).toEqual([]);
    expect(
      onTarget('DeleteFaces', { [`aws:ResourceTag/${MIGRATION_TARGET_TAG.Key}`]: ['something-else'] }).filter((call) =>
        allows(policy, call),
      ),
    ).toEqual([]);
    // What any collection of the name may be asked: how it is, and whether it is empty.
    expect(
      [...onTarget('DescribeCollection', {}), ...onTarget('ListFaces', {})].filter((call) => !allows(policy, call)),
    ).toEqual([]);
  });

  test('the worker puts only its own tag on a target, at creation or after', () => {
    const tagging = (Tags: Record<string, string>): Call[] =>
      ['CreateCollection', 'TagResource'].map((command) => ({
        action: `rekognition:${command}`,
        resource: collectionX,
        context: requestContext('rekognition', { Tags }),
      }));
    const own: Record<string, string> = { [MIGRATION_TARGET_TAG.Key]: MIGRATION_TARGET_TAG.Value };
    const others: Record<string, string>[] = [{ [MIGRATION_TARGET_TAG.Key]: 'other' }, { ...own, extra: 'tag' }, {}];

    expect(tagging(own).filter((call) => !allows(policy, call))).toEqual([]);
    expect(others.flatMap(tagging).filter((call) => allows(policy, call))).toEqual([]);
  });

  test("the bucket is listed under runs/ and the targets' ledgers only", () => {
    const listing = (Prefix?: string) => s3('ListObjectsV2Command', Prefix === undefined ? {} : { Prefix });

    expect(
      [...listing('runs/r/'), ...listing('ledger/x/current/abc.json')].filter((call) => !allows(policy, call)),
    ).toEqual([]);
    expect(
      [...listing(), ...listing(''), ...listing('records/'), ...listing('ledger/y/current/abc.json')].filter((call) =>
        allows(policy, call),
      ),
    ).toEqual([]);
  });

  test('no run tags the ledger, which it writes: the lifecycle rule must never reach it', () => {
    const ledgerEntry = 'ledger/x/owned.json';

    expect(s3('PutObjectCommand', { Key: ledgerEntry }).filter((call) => !allows(policy, call))).toEqual([]);
    expect(tagEnded(ledgerEntry).filter((call) => allows(policy, call))).toEqual([]);
  });
});

describe('migrations on the local stack', () => {
  beforeAll(async () => {
    resources = await createRunResources();
    await resources.aws.s3.send(new CreateBucketCommand({ Bucket: imageBucket }));
    recording = recordingClients(resources.config);
    worker = await startWorker({ ...resources, aws: recording });
    client = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await client?.connection.close();
    if (recording) destroyAwsClients(recording);
    if (resources) {
      const { Contents = [] } = await resources.aws.s3.send(new ListObjectsV2Command({ Bucket: imageBucket }));
      if (Contents.length > 0)
        await resources.aws.s3.send(
          new DeleteObjectsCommand({ Bucket: imageBucket, Delete: { Objects: Contents.map(({ Key }) => ({ Key })) } }),
        );
      await resources.aws.s3.send(new DeleteBucketCommand({ Bucket: imageBucket }));
      await resources.release();
    }
  });

  test('the worker calls exactly what its policy grants, on only the resources it names', async () => {
    const policy = workerPolicy(policyInput());
    const source = `policy-source-${suffix}-v7`;
    await resources.aws.rekognition.send(
      new CreateCollectionCommand({ CollectionId: resources.ownCollection(source) }),
    );
    const { manifest, photoKey } = await writeRecordsFile();
    // A row another run left in the results DLQ: each run reads it when it counts its own there.
    await resources.aws.sqs.send(
      new SendMessageCommand({
        QueueUrl: resources.resultsDlqUrl,
        MessageBody: JSON.stringify({ OldFaceId: randomUUID(), FaceId: randomUUID(), RunId: 'another-run' }),
      }),
    );
    const refused = resources.ownCollection(`policy-target-${suffix}-refused`);
    // A target made empty beforehand, untagged, as an operator may: the run claims it and tags it.
    const target = resources.ownCollection(`policy-target-${suffix}-main`);
    await resources.aws.rekognition.send(new CreateCollectionCommand({ CollectionId: target }));

    // A target on the source's own face model: created, refused, deleted.
    await expect(run(runInput(manifest, refused, { sourceCollectionId: source }))).rejects.toBeInstanceOf(
      WorkflowFailedError,
    );
    const first = await run(runInput(manifest, target));
    // A face nobody indexed through the ledger, for the next run's reconcile.
    await resources.aws.rekognition.send(
      new IndexFacesCommand({ CollectionId: target, Image: { S3Object: { Bucket: imageBucket, Name: photoKey } } }),
    );
    const second = await run(runInput(manifest, target));
    // Again with a threshold no face meets:
    // the re-run deletes what the earlier runs kept, a user's faces and the user too, and retracts their rows.
    const third = await run(
      runInput(manifest, target, { options: { ...runInput(manifest, target).options, iouThreshold: 1 } }),
    );

    // Two syncs from the source, as the application changed it: a face added (migrated by the sync's
    // own run, from a records file the worker writes), then deleted again (deleted from the target).
    const photoName = photoKey.replace(/\.png$/, '');
    const { FaceRecords = [] } = await resources.aws.rekognition.send(
      new IndexFacesCommand({
        CollectionId: source,
        Image: { S3Object: { Bucket: imageBucket, Name: photoKey } },
        ExternalImageId: photoName.split('/').pop(),
        QualityFilter: 'NONE',
      }),
    );
    const placement: SyncPlacement = {
      mode: 'external-image-id',
      bucket: imageBucket,
      prefix: photoName.slice(0, photoName.lastIndexOf('/') + 1),
      suffix: '.png',
    };
    const syncInput = {
      sourceCollectionId: source,
      targetCollectionId: target,
      placement,
      // The source is on the target's face model here: the run of the additions is forced.
      run: { ...runInput(manifest, target), force: true },
    };
    const added = await sync(syncInput);
    await resources.aws.rekognition.send(
      new DeleteFacesCommand({ CollectionId: source, FaceIds: FaceRecords.map((record) => record.Face?.FaceId ?? '') }),
    );
    const deleted = await sync(syncInput);

    expect(added.additionsRun).toMatchObject({ status: 'completed', matched: FaceRecords.length });
    expect(deleted.deleted).toBe(FaceRecords.length);
    expect(first).toMatchObject({ matched: 3, unmatchedNewDeleted: 1, usersCreated: 1, facesAssociated: 2 });
    expect(first.dlqByReason).toEqual({ IMAGE_NOT_FOUND: 1, INVALID_RECORD: 1, DUPLICATE_FACE_ID: 1 });
    expect(second.orphansDeleted).toBeGreaterThan(0);
    expect(third).toMatchObject({ matched: 0, usersCreated: 0 });
    expect(calls.filter((call) => !allows(policy, call))).toEqual([]);
    const { Tags } = await resources.aws.rekognition.send(
      new ListTagsForResourceCommand({
        ResourceArn: `arn:aws:rekognition:${resources.config.aws.region}:${accountOf(resources.config.resultsQueueUrl)}:collection/${target}`,
      }),
    );
    expect(Tags).toEqual({ [MIGRATION_TARGET_TAG.Key]: MIGRATION_TARGET_TAG.Value });
    const called = new Set(calls.map((call) => call.action));
    const granted = new Set(policy.Statement.flatMap((statement) => statement.Action));
    expect([...called].sort()).toEqual([...granted].filter((action) => !(action in GRANTED_BUT_NOT_CALLED)).sort());
    const unusedResources = policy.Statement.flatMap((statement) =>
      statement.Resource.filter(
        (pattern) => !calls.some((call) => statement.Action.includes(call.action) && matches(pattern, call.resource)),
      ),
    );
    expect(unusedResources).toEqual(['*']);
  }, 180_000);

  test('the printing script prints the policy the function builds for the worker environment it is given', async () => {
    const input = policyInput();
    const script = path.resolve(__dirname, '../../infra/aws/print-worker-policy.ts');
    const tsx = path.resolve(__dirname, '../../node_modules/.bin/tsx');
    const env = {
      ...process.env,
      REINDEX_BUCKET: resources.config.bucket,
      REINDEX_RESULTS_QUEUE_URL: resources.config.resultsQueueUrl,
      REINDEX_RESULTS_DLQ_URL: resources.resultsDlqUrl,
      REINDEX_REVIEW_DLQ_URL: resources.config.reviewDlqUrl,
      REINDEX_RESULTS_TABLE: resources.config.resultsTable,
      AWS_REGION: resources.config.aws.region,
    };

    const { stdout } = await promisify(execFile)(
      tsx,
      [
        script,
        '--collections',
        ...input.targetCollections,
        '--source-collections',
        ...input.sourceCollections,
        '--images',
        ...input.imageLocations,
      ],
      { env },
    );

    expect(JSON.parse(stdout)).toEqual(workerPolicy(input));
  });
});
