/**
 * `reindex cutover-check` after a real run, then after the application changed the old collection
 * since: an old collection on face model 6.0 with users, migrated to 7.0 by `reindex start --wait`
 * on a worker (harness/old-collection.ts), then checked in its own process.
 */
import { randomUUID } from 'node:crypto';
import {
  AssociateFacesCommand,
  CreateCollectionCommand,
  DeleteFacesCommand,
  DisassociateFacesCommand,
} from '@aws-sdk/client-rekognition';
import type { CutoverCheckReport } from '../../src/cli/cutover-check';
import type { RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { indexPhoto, type MigratedCollection, migrateOldCollection, type OldPhoto } from '../../harness/old-collection';
import { resultRows } from '../../harness/runs';

let migrated: MigratedCollection;
let env: NodeJS.ProcessEnv;
let source: string;
let target: string;

const PHOTOS: Record<string, OldPhoto> = {
  'ana-1': { faces: [{ person: 'ana', box: [0.2, 0.2, 0.4, 0.4] }], userId: 'user-ana' },
  'ana-2': { faces: [{ person: 'ana', box: [0.3, 0.1, 0.35, 0.45] }], userId: 'user-ana' },
  'bo-1': { faces: [{ person: 'bo', box: [0.25, 0.2, 0.4, 0.4] }], userId: 'user-bo' },
  'bo-2': { faces: [{ person: 'bo', box: [0.1, 0.3, 0.3, 0.35] }], userId: 'user-bo' },
  cy: { faces: [{ person: 'cy', box: [0.2, 0.25, 0.4, 0.4] }] },
};

const oldFaceOf = (name: string) => migrated.oldFaceIds.get(name)?.[0] ?? '';

beforeAll(async () => {
  migrated = await migrateOldCollection('cutover', PHOTOS);
  ({ env, collectionId: source, target } = migrated);
  expect(migrated.summary).toMatchObject({
    status: 'completed',
    faces: 5,
    matched: 5,
    usersCreated: 2,
    facesAssociated: 4,
  } satisfies Partial<RunSummary>);
}, 180_000);

afterAll(async () => {
  await migrated?.stop();
});

async function cutoverCheck(...args: string[]) {
  const outcome = await runCli(['cutover-check', ...args], env);
  return {
    ...outcome,
    report: args.includes('--json') ? (JSON.parse(lastLine(outcome.stdout)) as CutoverCheckReport) : undefined,
  };
}

const none = { count: 0, examples: [] };

/** The report on the five faces of the run, with the differences given and none other. */
function reportWith(differences: Partial<CutoverCheckReport>): CutoverCheckReport {
  return {
    sourceCollectionId: source,
    targetCollectionId: target,
    oldFaces: 5,
    newFaces: 5,
    rows: 5,
    oldFacesWithoutRow: none,
    rowsWithOldFaceGone: none,
    rowsWithNewFaceGone: none,
    newFacesWithoutRow: none,
    usersDiffering: none,
    inStep: true,
    ...differences,
  };
}

test('right after the run, the target holds exactly the old collection, face for face and user for user', async () => {
  const { code, stderr, report } = await cutoverCheck('--source', source, '--target', target, '--json');

  expect(stderr).toBe('');
  expect(code).toBe(0);
  expect(report).toEqual(reportWith({}));
});

test('faces the application added, deleted and moved between users since are each found, and the exit code is 1', async () => {
  const { rekognition, resources, prefix } = migrated;
  const rows = await resultRows(resources, migrated.runId);
  const newFaceOf = (name: string) => rows.find((row) => row.OldFaceId === oldFaceOf(name))?.FaceId;
  // A new enrolment, a face erased on request, and bo's second photo moved to ana.
  const [added] = await indexPhoto(
    { rekognition, resources },
    { collectionId: source, prefix, name: 'dee', photo: { faces: [{ person: 'dee', box: [0.2, 0.2, 0.4, 0.4] }] } },
  );
  await rekognition.client.send(new DeleteFacesCommand({ CollectionId: source, FaceIds: [oldFaceOf('cy')] }));
  await rekognition.client.send(
    new DisassociateFacesCommand({ CollectionId: source, UserId: 'user-bo', FaceIds: [oldFaceOf('bo-2')] }),
  );
  // bo's face does not look like ana's: the threshold lets it in, as an operator correcting a label would.
  const moved = await rekognition.client.send(
    new AssociateFacesCommand({
      CollectionId: source,
      UserId: 'user-ana',
      FaceIds: [oldFaceOf('bo-2')],
      UserMatchThreshold: 0,
    }),
  );
  expect(moved.AssociatedFaces).toEqual([{ FaceId: oldFaceOf('bo-2') }]);

  const { code, stderr, report } = await cutoverCheck('--source', source, '--target', target, '--json');

  expect(stderr).toBe('');
  expect(code).toBe(1);
  expect(report).toEqual(
    reportWith({
      oldFacesWithoutRow: { count: 1, examples: [added ?? ''] },
      rowsWithOldFaceGone: { count: 1, examples: [{ oldFaceId: oldFaceOf('cy'), newFaceId: newFaceOf('cy') ?? '' }] },
      usersDiffering: {
        count: 2,
        examples: [
          { userId: 'user-ana', missing: 1, extra: 0 },
          { userId: 'user-bo', missing: 0, extra: 1 },
        ],
      },
      inStep: false,
    }),
  );

  const text = await cutoverCheck('--source', source, '--target', target, '--examples', '0');
  expect(text.code).toBe(1);
  expect(text.stdout).toContain('old faces without a row: 1\n  and 1 more\n');
  expect(text.stdout).toContain('users whose members differ: 2\n  and 2 more\n');
  expect(text.stdout.trim().split('\n').at(-1)).toBe('not in step');
});

test.each([
  [['--source', 'same', '--target', 'same'], '--source and --target both name same'],
  [['--source', 'cutover-no-such-collection', '--target', 'other'], 'the source collection cutover-no-such-collection'],
  [['--source', 'a', '--target', 'b', '--examples', '-1'], '--examples must be a whole number from 0 to 10000'],
])('%j is one line on stderr and exit code 2', async (args, message) => {
  const { code, stdout, stderr } = await cutoverCheck(...args);

  expect(code).toBe(2);
  expect(stdout).toBe('');
  expect(stderr).toContain(message);
  expect(stderr.trim().split('\n')).toHaveLength(1);
});

test('a target this tool never migrated into, or a source on a newer model than the target, is one line and exit code 2', async () => {
  const foreign = `cutover-foreign-${randomUUID()}`;
  await migrated.rekognition.client.send(new CreateCollectionCommand({ CollectionId: foreign }));

  const notMigrated = await cutoverCheck('--source', source, '--target', foreign);
  const swapped = await cutoverCheck('--source', target, '--target', source);

  expect(notMigrated).toMatchObject({ code: 2, stdout: '' });
  expect(notMigrated.stderr.trim().split('\n')).toEqual([
    `reindex: the target ${foreign} is not a collection this tool migrated into: no ledger in ${migrated.resources.config.bucket} owns it`,
  ]);
  expect(swapped).toMatchObject({ code: 2, stdout: '' });
  expect(swapped.stderr.trim().split('\n')).toEqual([
    `reindex: the source ${target} is on face model 7.0, newer than the target's 6.0: are --source and --target swapped?`,
  ]);
});
