import { randomUUID } from 'node:crypto';
import {
  CreateCollectionCommand,
  DeleteCollectionCommand,
  IndexFacesCommand,
  ListFacesCommand,
  ListUsersCommand,
} from '@aws-sdk/client-rekognition';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { createUserActivities } from '../../src/activities/users';
import { type Config, loadConfig } from '../../src/domain/config';
import type { ResultRow, ReviewItem } from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import { activityEnvironment } from '../../harness/activity-environment';
import { useLocalStack } from '../../harness/local-stack';

let aws: AwsClients;
let config: Config;
let collectionId: string;

beforeAll(() => {
  useLocalStack();
  config = loadConfig();
  aws = createAwsClients(config);
});

afterAll(() => {
  destroyAwsClients(aws);
});

beforeEach(async () => {
  collectionId = `users-${randomUUID()}`;
  await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: collectionId }));
});

afterEach(async () => {
  await aws.rekognition.send(new DeleteCollectionCommand({ CollectionId: collectionId }));
});

/** Indexes `count` faces of one person into the target, as a run would have, and returns their FaceIds. */
async function indexPerson(person: string, count: number): Promise<string[]> {
  const faces: DeclaredFace[] = Array.from({ length: count }, (_, i) => ({
    person,
    box: [(i % 10) * 0.1, Math.floor(i / 10) * 0.1, 0.08, 0.08],
  }));
  const ids: string[] = [];
  for (let start = 0; start < faces.length; start += 100) {
    const indexed = await aws.rekognition.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { Bytes: syntheticPng(faces.slice(start, start + 100)) },
        QualityFilter: 'NONE',
      }),
    );
    ids.push(...(indexed.FaceRecords ?? []).map((record) => record.Face?.FaceId ?? ''));
  }
  return ids;
}

/** Writes the result rows a drained run leaves in the table. */
async function resultRows(
  runId: string,
  userId: string | undefined,
  faceIds: string[],
  settledDuplicates: string[] = [],
): Promise<void> {
  const rows: (ResultRow & { SettledDuplicates?: Set<string> })[] = faceIds.map((FaceId) => ({
    OldFaceId: randomUUID(),
    FaceId,
    OldImageId: undefined,
    ImageId: 'new-image',
    ExternalImageId: undefined,
    UserId: userId,
    Bucket: 'photos',
    Key: `${FaceId}.jpg`,
    BoundingBox: { Width: 0.1, Height: 0.1, Left: 0, Top: 0 },
    OldBoundingBox: { Width: 0.1, Height: 0.1, Left: 0, Top: 0 },
    IoU: 0.9,
    SourceCollectionId: undefined,
    CollectionId: collectionId,
    FaceModelVersion: '7.0',
    RunId: runId,
    MigratedAt: new Date().toISOString(),
    // As settleDuplicates marks a holding row.
    ...(settledDuplicates.length > 0 ? { SettledDuplicates: new Set(settledDuplicates) } : {}),
  }));
  for (let start = 0; start < rows.length; start += 25) {
    const batch = rows.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } }));
    await aws.dynamodb.send(new BatchWriteCommand({ RequestItems: { [config.resultsTable]: batch } }));
  }
}

function migrateUsers(runId: string) {
  const { migrateUsers: activity } = createUserActivities({
    rekognition: aws.rekognition,
    dynamodb: aws.dynamodb,
    sqs: aws.sqs,
    config,
  });
  return activityEnvironment().run(activity, { runId, targetCollectionId: collectionId });
}

async function facesOf(UserId: string): Promise<string[]> {
  const { Faces = [] } = await aws.rekognition.send(
    new ListFacesCommand({ CollectionId: collectionId, UserId, MaxResults: 4096 }),
  );
  return Faces.map((face) => face.FaceId ?? '').sort();
}

async function reviewOf(runId: string): Promise<ReviewItem[]> {
  const items: ReviewItem[] = [];
  for (;;) {
    const { Messages = [] } = await aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: config.reviewDlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    if (Messages.length === 0) return items;
    items.push(
      ...Messages.map((message) => JSON.parse(message.Body ?? '{}') as ReviewItem).filter(
        (item) => item.runId === runId,
      ),
    );
  }
}

test("users are created from the run's result rows with their faces; a retry repeats nothing", async () => {
  const runId = `run-${randomUUID()}`;
  const [ana, bo, nobody] = [await indexPerson('ana', 2), await indexPerson('bo', 1), await indexPerson('cy', 1)];
  await resultRows(runId, 'user-ana', ana);
  await resultRows(runId, 'user-bo', bo);
  await resultRows(runId, undefined, nobody, ['dup-face#7', 'dup-face#9']);
  await resultRows(`run-${randomUUID()}`, 'user-of-another-run', await indexPerson('dee', 1), ['other#1']);

  // Every row of the run is counted, the one without a user too, with the duplicates settled against
  // them; another run's are not.
  expect(await migrateUsers(runId)).toEqual({
    usersCreated: 2,
    facesAssociated: 3,
    refusedByReason: {},
    rowsOfRun: 4,
    duplicatesOfRun: 2,
  });
  await migrateUsers(runId);

  const { Users = [] } = await aws.rekognition.send(new ListUsersCommand({ CollectionId: collectionId }));
  expect(Users.map((user) => user.UserId).sort()).toEqual(['user-ana', 'user-bo']);
  expect(await facesOf('user-ana')).toEqual([...ana].sort());
  expect(await facesOf('user-bo')).toEqual(bo);
});

test('faces past the 100 a user may hold go to the review DLQ with USER_FACE_LIMIT', async () => {
  const runId = `run-${randomUUID()}`;
  const faces = await indexPerson('eve', 103);
  await resultRows(runId, 'user-eve', faces);

  const migrated = await migrateUsers(runId);

  expect(migrated).toEqual({
    usersCreated: 1,
    facesAssociated: 100,
    refusedByReason: { [ReasonCode.UserFaceLimit]: 3 },
    rowsOfRun: 103,
    duplicatesOfRun: 0,
  });
  expect(await facesOf('user-eve')).toHaveLength(100);
  const refused = await reviewOf(runId);
  expect(refused.map((item) => item.reason)).toEqual([
    ReasonCode.UserFaceLimit,
    ReasonCode.UserFaceLimit,
    ReasonCode.UserFaceLimit,
  ]);
});
