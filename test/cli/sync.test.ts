/**
 * `reindex sync` against a live old collection: while a run of 220 images is paused half way, the
 * application indexes 30 new images into the old collection, deletes 20 old faces (10 migrated
 * already, 10 not yet) and moves 5 faces to another user. A sync during the run deletes what it
 * can and leaves the additions to later; once the run ends, one more sync brings the target in
 * step, and `reindex cutover-check` agrees. Then the schedule, and the inputs a sync refuses.
 */
import { randomUUID } from 'node:crypto';
import {
  AssociateFacesCommand,
  CreateCollectionCommand,
  CreateUserCommand,
  DeleteFacesCommand,
  DeleteUserCommand,
  DisassociateFacesCommand,
  ListFacesCommand,
} from '@aws-sdk/client-rekognition';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { CutoverCheckReport } from '../../src/cli/cutover-check';
import { ReasonCode } from '../../src/domain/reasons';
import type { RunSummary, SyncSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { indexPhoto, type OldCollectionSuite, type OldPhoto, prepareOldCollection } from '../../harness/old-collection';
import { eventually, resultRows } from '../../harness/runs';

const PHOTOS = 220;
const name = (i: number) => `p-${String(i).padStart(3, '0')}`;
/** One face a photo, each its own person; the first 40 photos in 20 users of two. */
const photos: Record<string, OldPhoto> = Object.fromEntries(
  Array.from({ length: PHOTOS }, (_, i) => [
    name(i),
    {
      faces: [{ person: `person-${i}`, box: [0.2, 0.2, 0.4, 0.4] }],
      ...(i < 40 ? { userId: `user-${Math.floor(i / 2)}` } : {}),
    },
  ]),
);

let suite: OldCollectionSuite;
let client: Client;
let runId: string;
let source: string;
let target: string;

const oldFaceOf = (photo: string) => suite.oldFaceIds.get(photo)?.[0] ?? '';
const reindex = (...args: string[]) => runCli(args, suite.env);
const placement = () => ['--key-from', 'external-image-id', '--bucket', suite.resources.config.bucket];

/** A sync's pass, its added faces placed by `where`: by ExternalImageId in the suite's prefix unless told. */
async function sync(
  where = [...placement(), '--prefix', `${suite.prefix}/`, '--suffix', '.png'],
): Promise<SyncSummary> {
  const outcome = await reindex(
    'sync',
    '--source',
    source,
    '--target',
    target,
    ...where,
    '--quality-filter',
    'NONE',
    '--json',
  );
  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  return JSON.parse(lastLine(outcome.stdout)) as SyncSummary;
}

async function targetFaces(): Promise<string[]> {
  const { Faces = [] } = await suite.rekognition.client.send(
    new ListFacesCommand({ CollectionId: target, MaxResults: 4096 }),
  );
  return Faces.map((face) => face.FaceId ?? '');
}

beforeAll(async () => {
  suite = await prepareOldCollection('sync', photos);
  ({ collectionId: source, target } = suite);
  const connection = await Connection.connect(loadClientConnectConfig().connectionOptions);
  client = new Client({ connection });
}, 240_000);

afterAll(async () => {
  await client?.connection.close();
  await suite?.stop();
});

test('deletions, user moves and new faces made during a run are in the target after the run and one sync', async () => {
  runId = `sync-run-${randomUUID()}`;
  const started = await reindex(
    'start',
    '--records',
    suite.records,
    '--source',
    source,
    '--target',
    target,
    '--id',
    runId,
    '--quality-filter',
    'NONE',
    '--batch-size',
    '20',
    '--batches-in-flight',
    '1',
    '--images-in-flight',
    '4',
  );
  expect(started.code).toBe(0);
  await eventually(async () => (await resultRows(suite.resources, runId)).length >= 60, 120_000);
  expect((await reindex('pause', runId)).code).toBe(0);
  const migrated = new Set((await resultRows(suite.resources, runId)).map((row) => row.OldFaceId));
  expect(migrated.size).toBeLessThan(150);

  // The application goes on with the old collection.
  const old = suite.rekognition.client;
  const deletedMigrated = Array.from({ length: 10 }, (_, i) => oldFaceOf(name(40 + i)));
  const deletedNotYet = Array.from({ length: 10 }, (_, i) => oldFaceOf(name(PHOTOS - 10 + i)));
  expect(deletedMigrated.every((faceId) => migrated.has(faceId))).toBe(true);
  expect(deletedNotYet.some((faceId) => migrated.has(faceId))).toBe(false);
  await old.send(new DeleteFacesCommand({ CollectionId: source, FaceIds: [...deletedMigrated, ...deletedNotYet] }));
  const moved = [0, 2, 4, 6, 8].map((i) => ({ faceId: oldFaceOf(name(i)), from: `user-${i / 2}` }));
  await old.send(new CreateUserCommand({ CollectionId: source, UserId: 'user-moved' }));
  for (const { faceId, from } of moved)
    await old.send(new DisassociateFacesCommand({ CollectionId: source, UserId: from, FaceIds: [faceId] }));
  await old.send(
    new AssociateFacesCommand({
      CollectionId: source,
      UserId: 'user-moved',
      FaceIds: moved.map((move) => move.faceId),
      UserMatchThreshold: 0,
    }),
  );
  for (let i = 0; i < 30; i += 1)
    await indexPhoto(suite, {
      collectionId: source,
      prefix: suite.prefix,
      name: `n-${i}`,
      photo: { faces: [{ person: `newcomer-${i}`, box: [0.25, 0.2, 0.4, 0.4] }] },
    });

  // A sync during the run: the deletions and the moves now, the additions once the run is over.
  const during = await sync();
  expect(during).toMatchObject({
    deleted: 10,
    userChanges: 5,
    usersDeleted: 0,
    additions: { faces: 0, images: 0, unplaced: 0 },
    runsInFlight: [runId],
  });
  // Rows of the images in flight at the pause may still come in: every old face is either a row the
  // pass found (the deleted ones not counted) or an addition deferred, none both and none lost.
  expect(during.oldFaces).toBe(PHOTOS + 30 - 20);
  expect(during.rows).toBeGreaterThanOrEqual(migrated.size);
  expect(during.additionsDeferred).toBe(during.oldFaces - (during.rows - during.deleted));
  expect(during.deletionLagMs).toBeUndefined();
  const deletedRow = await suite.resources.aws.dynamodb.send(
    new GetCommand({ TableName: suite.resources.config.resultsTable, Key: { OldFaceId: deletedMigrated[0] } }),
  );
  expect(Object.keys(deletedRow.Item ?? {}).sort()).toEqual(
    expect.arrayContaining(['CollectionId', 'DeletedAt', 'FaceId', 'OldFaceId', 'RunId']),
  );
  expect(deletedRow.Item).not.toHaveProperty('UserId');
  expect(deletedRow.Item).not.toHaveProperty('Key');
  expect(deletedRow.Item).not.toHaveProperty('BoundingBox');
  expect(await targetFaces()).not.toContain(deletedRow.Item?.FaceId);

  expect((await reindex('resume', runId)).code).toBe(0);
  const summary = (await client.workflow.getHandle(runId).result()) as RunSummary;
  expect(summary.dlqByReason[ReasonCode.OldFaceDeleted]).toBe(10);

  // After the run, the application deletes a user: its face (the second photo's was too unlike the
  // first to join it) stays, without a user.
  await old.send(new DeleteUserCommand({ CollectionId: source, UserId: 'user-19' }));

  const after = await sync();
  expect(after).toMatchObject({
    deleted: 0,
    userChanges: 1,
    usersDeleted: 1,
    additions: { faces: 30, images: 30, unplaced: 0 },
    additionsDeferred: 0,
    runsInFlight: [],
    additionsRun: { status: 'completed', images: 30, matched: 30, dlq: 0 },
  });
  expect(after.deletionLagMs).toBeGreaterThan(0);

  const check = await reindex('cutover-check', '--source', source, '--target', target, '--json');
  const report = JSON.parse(lastLine(check.stdout)) as CutoverCheckReport;
  expect(report).toMatchObject({ oldFaces: PHOTOS + 30 - 20, newFaces: PHOTOS + 30 - 20, rows: PHOTOS + 30 - 20 });
  expect(report.inStep).toBe(true);
  expect(check.code).toBe(0);
}, 600_000);

test('an added face whose image is gone goes to review with its reason, and the sync goes on', async () => {
  await indexPhoto(suite, {
    collectionId: source,
    prefix: suite.prefix,
    name: 'gone',
    photo: { faces: [{ person: 'gone', box: [0.2, 0.2, 0.4, 0.4] }] },
  });
  await suite.resources.aws.s3.send(
    new DeleteObjectCommand({ Bucket: suite.resources.config.bucket, Key: `${suite.prefix}/gone.png` }),
  );

  const summary = await sync();

  expect(summary.additions).toEqual({ faces: 1, images: 1, unplaced: 0 });
  expect(summary.additionsRun).toMatchObject({
    status: 'completed',
    matched: 0,
    dlqByReason: { [ReasonCode.ImageNotFound]: 1 },
  });
}, 300_000);

test('added faces placed by a mapping file in S3; a face the mapping does not name goes to review as unplaced', async () => {
  const { bucket } = suite.resources.config;
  await indexPhoto(suite, {
    collectionId: source,
    prefix: `${suite.prefix}/elsewhere`,
    name: 'mapped-0',
    photo: { faces: [{ person: 'mapped', box: [0.2, 0.2, 0.4, 0.4] }] },
  });
  const mapping = { Bucket: bucket, Key: `${suite.prefix}/mapping.csv` };
  await suite.resources.aws.s3.send(
    new PutObjectCommand({
      ...mapping,
      Body: `ExternalImageId,S3Uri\nmapped-0,s3://${bucket}/${suite.prefix}/elsewhere/mapped-0.png\n`,
    }),
  );

  const summary = await sync(['--mapping', `s3://${mapping.Bucket}/${mapping.Key}`]);

  // The face whose image is gone, from the test before, is not in the mapping.
  expect(summary.additions).toEqual({ faces: 1, images: 1, unplaced: 1 });
  expect(summary.additionsRun).toMatchObject({ status: 'completed', matched: 1, dlq: 0 });
}, 300_000);

test('a schedule of syncs: one a target, a minute apart at least, until stopped', async () => {
  const every = await reindex('sync', '--source', source, '--target', target, ...placement(), '--every', '15m');
  expect(every.stderr).toBe('');
  expect(every.code).toBe(0);
  const schedule = await client.schedule.getHandle(`reindex-sync-${target}`).describe();
  expect(schedule.spec.intervals).toEqual([expect.objectContaining({ every: 15 * 60_000 })]);
  expect(schedule.action).toMatchObject({ workflowType: 'syncCollection' });

  const again = await reindex('sync', '--source', source, '--target', target, ...placement(), '--every', '1h');
  expect(again.code).toBe(2);
  expect(again.stderr).toBe(
    `reindex: ${target} is synced on a schedule already (reindex-sync-${target}): --stop it first\n`,
  );
  const tooOften = await reindex('sync', '--source', source, '--target', target, ...placement(), '--every', '10s');
  expect(tooOften.code).toBe(2);
  expect(tooOften.stderr).toBe(
    'reindex: --every 10s is shorter than a minute: each pass lists the whole old collection\n',
  );

  expect((await reindex('sync', '--target', target, '--stop')).code).toBe(0);
  const stoppedTwice = await reindex('sync', '--target', target, '--stop');
  expect(stoppedTwice.code).toBe(2);
  expect(stoppedTwice.stderr).toBe(`reindex: no sync of ${target} is scheduled\n`);
});

test('a sync refuses, with one line and exit code 2, what cannot be a migration of source into target', async () => {
  const stranger = `sync-stranger-${randomUUID()}`;
  await suite.rekognition.client.send(new CreateCollectionCommand({ CollectionId: stranger }));
  const badMapping = { Bucket: suite.resources.config.bucket, Key: `${suite.prefix}/bad-mapping.csv` };
  await suite.resources.aws.s3.send(new PutObjectCommand({ ...badMapping, Body: 'Name,Where\nx,s3://b/k.png\n' }));
  const cases: [string[], string][] = [
    [
      ['--source', source, '--target', source, ...placement()],
      `--source and --target both name ${source}: a collection cannot be its own migration`,
    ],
    [
      ['--source', source, '--target', stranger, ...placement()],
      `the target ${stranger} is not a collection this tool migrated into: no ledger in ${suite.resources.config.bucket} owns it`,
    ],
    [
      ['--source', target, '--target', source, ...placement()],
      `the source ${target} is on face model 7.0, newer than the target's 6.0: are --source and --target swapped?`,
    ],
    [
      ['--source', source, '--target', target],
      'say where the images of faces added to the old collection are: --key-from external-image-id, --key-template or --mapping',
    ],
    [['--target', target, ...placement()], 'say which old collection to follow: --source <collection>'],
    [
      ['--source', source, '--target', target, '--mapping', 'mapping.csv'],
      '--mapping mapping.csv: the worker reads the mapping file, so it must be an s3:// URI',
    ],
    [
      ['--source', source, '--target', target, '--mapping', `s3://${badMapping.Bucket}/${badMapping.Key}`],
      'the mapping file needs one key column named FaceId, ImageId or ExternalImageId; it has Name, Where',
    ],
  ];
  for (const [args, message] of cases) {
    const outcome = await reindex('sync', ...args);
    expect({ args, code: outcome.code, stderr: outcome.stderr }).toEqual({
      args,
      code: 2,
      stderr: `reindex: ${message}\n`,
    });
  }
});
