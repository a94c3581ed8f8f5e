/**
 * `reindex verify` after a real run: an old collection on face model 6.0 with users, its records
 * file from ListFaces, a worker and `reindex start --wait` migrating it to 7.0
 * (harness/old-collection.ts), then verify in its own process. The photos are synthetic: each
 * declares who is in it, so the test knows who every search must find.
 */
import { DeleteCollectionCommand } from '@aws-sdk/client-rekognition';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { VerifyReport } from '../../src/cli/verify';
import type { ResultRow } from '../../src/domain/outcomes';
import type { RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { type MigratedCollection, migrateOldCollection, type OldPhoto } from '../../harness/old-collection';
import { resultRows, type RunResources } from '../../harness/runs';

let migrated: MigratedCollection;
let resources: RunResources;
let env: NodeJS.ProcessEnv;
let source: string;
let target: string;
let runId: string;
/** Each photo's old FaceIds, by photo name. */
let oldFaceIds: Map<string, string[]>;

const PHOTOS: Record<string, OldPhoto> = {
  'ana-1': { faces: [{ person: 'ana', box: [0.2, 0.2, 0.4, 0.4] }], userId: 'user-ana' },
  'ana-2': { faces: [{ person: 'ana', box: [0.3, 0.1, 0.35, 0.45] }], userId: 'user-ana' },
  'bo-1': { faces: [{ person: 'bo', box: [0.25, 0.2, 0.4, 0.4] }], userId: 'user-bo' },
  'bo-2': { faces: [{ person: 'bo', box: [0.1, 0.3, 0.3, 0.35] }], userId: 'user-bo' },
  cy: { faces: [{ person: 'cy', box: [0.2, 0.25, 0.4, 0.4] }] },
  group: {
    faces: [
      { person: 'dee', box: [0.05, 0.2, 0.35, 0.35] },
      { person: 'eve', box: [0.55, 0.25, 0.35, 0.35] },
    ],
  },
};

beforeAll(async () => {
  migrated = await migrateOldCollection('verify', PHOTOS);
  ({ resources, env, collectionId: source, target, runId, oldFaceIds } = migrated);
  expect(migrated.summary).toMatchObject({
    status: 'completed',
    faces: 7,
    matched: 7,
    usersCreated: 2,
    facesAssociated: 4,
  } satisfies Partial<RunSummary>);
}, 180_000);

afterAll(async () => {
  await migrated?.stop();
});

async function verify(...args: string[]) {
  const outcome = await runCli(['verify', runId, ...args], env);
  return {
    ...outcome,
    report: outcome.code === 2 ? undefined : (JSON.parse(lastLine(outcome.stdout)) as VerifyReport),
  };
}

test('after a clean run, every face is found as the same people in the old and the new collection', async () => {
  const { code, stderr, report } = await verify('--json');

  expect(stderr).toBe('');
  expect(code).toBe(0);
  expect(report).toMatchObject({
    runId,
    sourceCollectionId: source,
    targetCollectionId: target,
    threshold: 80,
    rows: 7,
    compared: 7,
    agreeing: 7,
    share: 1,
    notSamePerson: 0,
    disagreements: [],
  });
});

test('a sample is the size asked for and drawn again by its seed', async () => {
  const first = await verify('--sample', '3', '--seed', 'abc', '--json');
  const again = await verify('--sample', '3', '--seed', 'abc', '--json');

  expect(first.report).toMatchObject({ rows: 7, compared: 3, agreeing: 3, seed: 'abc' });
  expect(again.report).toEqual(first.report);
});

test("a row mapping ana's old face to bo's new face is a disagreement naming both", async () => {
  const rows = await resultRows(resources, runId);
  const anaOld = oldFaceIds.get('ana-1')?.[0] ?? '';
  const boNew = rows.find((row: ResultRow) => row.OldFaceId === oldFaceIds.get('bo-1')?.[0])?.FaceId ?? '';
  await resources.aws.dynamodb.send(
    new UpdateCommand({
      TableName: resources.config.resultsTable,
      Key: { OldFaceId: anaOld },
      UpdateExpression: 'SET FaceId = :face',
      ExpressionAttributeValues: { ':face': boNew },
    }),
  );

  const { code, report } = await verify('--json');

  expect(code).toBe(1);
  expect(report).toMatchObject({ rows: 7, compared: 7, agreeing: 6, notSamePerson: 1 });
  expect(report?.share).toBeCloseTo(6 / 7, 12);
  expect(report?.disagreements).toEqual([
    {
      OldFaceId: anaOld,
      FaceId: boNew,
      old: { missing: false, self: 'user:user-ana', identities: ['user:user-ana'] },
      new: { missing: false, self: 'user:user-bo', identities: ['user:user-bo'] },
      agree: false,
      samePerson: false,
    },
  ]);

  const text = await runCli(['verify', runId, '--min-parity', '85'], env);
  expect(text.code).toBe(0);
  expect(text.stdout.split('\n').slice(1)).toEqual([
    'parity 85.7%: for 6 of 7 faces both searches found the same people',
    '1 of 7 rows map a face to another person or to a face no longer there',
    '',
    'disagreements:',
    `  old face ${anaOld} → new face ${boNew}: NOT THE SAME PERSON`,
    `    old: user:user-ana in ${source}, whose search finds user:user-ana`,
    `    new: user:user-bo in ${target}, whose search finds user:user-bo`,
    '',
  ]);
});

test('faces without a user are told by the image they came from', async () => {
  const dee = oldFaceIds.get('group')?.[0] ?? '';
  const cy = oldFaceIds.get('cy')?.[0] ?? '';
  const cyNew = (await resultRows(resources, runId)).find((row) => row.OldFaceId === cy)?.FaceId ?? '';
  await resources.aws.dynamodb.send(
    new UpdateCommand({
      TableName: resources.config.resultsTable,
      Key: { OldFaceId: dee },
      UpdateExpression: 'SET FaceId = :face',
      ExpressionAttributeValues: { ':face': cyNew },
    }),
  );

  const { report } = await verify('--json');

  expect(report?.disagreements.find((disagreement) => disagreement.OldFaceId === dee)).toMatchObject({
    old: { missing: false, self: 'image:group', identities: ['image:group'] },
    new: { missing: false, self: 'image:cy', identities: ['image:cy'] },
    samePerson: false,
  });
});

test.each([
  [['verify', 'no-such-run'], /^reindex: run no-such-run has no rows in the results table results-[0-9a-f]{8}\n$/],
  [
    ['verify', 'any', '--threshold', '101'],
    /^reindex: error: option '--threshold <similarity>' argument '101' is invalid\. --threshold must be a number from 0 to 100\n$/,
  ],
  [['verify'], /^reindex: error: missing required argument 'run-id'\n$/],
])('bad input %j is one line on stderr and exit code 2', async (args, message) => {
  const outcome = await runCli(args, env);

  expect(outcome.stderr).toMatch(message);
  expect(outcome.code).toBe(2);
});

test('a target that does not exist is one line and exit code 2', async () => {
  const outcome = await runCli(['verify', runId, '--target', 'no-such-collection'], env);

  expect(outcome.stderr).toBe('reindex: the target collection no-such-collection does not exist\n');
  expect(outcome.code).toBe(2);
});

// Last: it deletes the old collection the other tests search.
test('a source collection deleted since the run is one line and exit code 2', async () => {
  await migrated.rekognition.client.send(new DeleteCollectionCommand({ CollectionId: source }));

  const outcome = await runCli(['verify', runId], env);

  expect(outcome.stderr).toBe(`reindex: the source collection ${source} does not exist\n`);
  expect(outcome.code).toBe(2);
});
