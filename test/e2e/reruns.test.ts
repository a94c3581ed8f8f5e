/**
 * The same records file run again into the same target with other settings, after a first run that
 * completed, failed or was cancelled, under both ways the real service may answer a face indexed
 * again (rekognition-local's `reuse` and `fresh`). After the second run the operator's checks hold
 * for it (harness/invariants: every old face one row or one DLQ message, the target holding exactly
 * the faces the rows name, users as the rows say) and no row of the first run is left for the
 * target: the table says what the latest run decided.
 */
import { randomUUID } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import type { ResultRow } from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import { progressQuery, type ReindexCollectionInput, type ReindexOptions, type RunSummary } from '../../src/shared';
import type { reindexCollection } from '../../src/workflows';
import { accountForRun } from '../../harness/invariants';
import {
  createRunResources,
  eventually,
  type OldFace,
  rekognitionAdmin,
  type RunResources,
  runInput,
  takeReview,
  writeRecords,
} from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';

let resources: RunResources;
let worker: RunningWorker;
let client: Client;

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  client = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
}, 120_000);

/** The stack's own behaviour (`STACK_REKOGNITION_FACE_IDS`), given back when the suite ends. */
let stackFaceIds: string;

beforeAll(async () => {
  stackFaceIds = ((await rekognitionAdmin('settings', 'GET')) as { faceIds: string }).faceIds;
});

afterAll(async () => {
  await rekognitionAdmin('settings', 'PUT', { faceIds: stackFaceIds, maxFacesPerCollection: 20_000_000, latency: {} });
  await client?.connection.close();
  await worker?.stop();
  await resources?.release();
});

const box = (left: number, top: number, size = 0.3): DeclaredFace['box'] => [left, top, size, size];

/**
 * Every way settings change an image's outcome: an old box that overlaps its face by about 0.4
 * (matched at --iou 0.3, not at 0.5), a face of low quality (filtered by HIGH, not by NONE), a
 * stranger nobody had (kept or deleted), plain faces, and faces of a user.
 */
async function recordsFile(): Promise<{ manifest: ReindexCollectionInput['manifest']; oldFaces: OldFace[] }> {
  return writeRecords(resources, [
    { faces: [{ person: 'ana', box: box(0.1, 0.1) }], oldFaces: [{ person: 'ana', box: box(0.17, 0.17) }] },
    { faces: [{ person: 'bo', box: box(0.2, 0.2), quality: 50 }] },
    {
      faces: [
        { person: 'cy', box: box(0.1, 0.1) },
        { person: 'stranger', box: box(0.6, 0.6) },
      ],
      oldFaces: [{ person: 'cy', box: box(0.1, 0.1) }],
    },
    { faces: [{ person: 'dee', box: box(0.3, 0.3) }] },
    {
      faces: [{ person: 'eve', box: box(0.2, 0.25) }],
      oldFaces: [{ person: 'eve', box: box(0.26, 0.3) }],
      userId: 'user-eve',
    },
    { faces: [{ person: 'eve-again', box: box(0.3, 0.2) }], userId: 'user-eve' },
  ]);
}

const settings = (changes: Partial<ReindexOptions>): ReindexOptions => ({
  iouThreshold: 0.5,
  qualityFilter: 'NONE',
  maxFaces: undefined,
  unmatched: 'delete',
  ...changes,
});

function start(manifest: ReindexCollectionInput['manifest'], target: string, options: ReindexOptions) {
  return client.workflow.start<typeof reindexCollection>('reindexCollection', {
    taskQueue: worker.taskQueue,
    workflowId: `rerun-${randomUUID()}`,
    args: [runInput(manifest, target, { options, batchSize: 2, batchesInFlight: 1, imagesInFlightPerBatch: 1 })],
  });
}

async function rowsOf(target: string): Promise<ResultRow[]> {
  const { Items = [] } = await resources.aws.dynamodb.send(
    new ScanCommand({
      TableName: resources.config.resultsTable,
      FilterExpression: 'CollectionId = :target',
      ExpressionAttributeValues: { ':target': target },
    }),
  );
  return Items as ResultRow[];
}

/** The second run, to its end: its promises hold, and the table holds only its rows for the target. */
async function secondRunKeepsEveryPromise(
  manifest: ReindexCollectionInput['manifest'],
  oldFaces: OldFace[],
  target: string,
  options: ReindexOptions,
): Promise<RunSummary> {
  // The first run's review messages are its own; the second run is checked on a clean queue.
  await takeReview(resources);
  const summary = await (await start(manifest, target, options)).result();
  const account = await accountForRun(resources, oldFaces, summary);
  expect(account.problems).toEqual([]);
  expect(new Set((await rowsOf(target)).map((row) => row.RunId))).toEqual(
    new Set(summary.matched > 0 ? [summary.workflowId] : []),
  );
  return summary;
}

/**
 * Each test makes two whole runs, about 9 s alone; CI runs three suites at once on two cores, where
 * one of them once took past the default minute.
 */
const TWO_RUNS_MS = 180_000;

describe.each(['reuse', 'fresh'] as const)('with FaceIds answered as %s', (faceIds) => {
  beforeAll(async () => {
    await rekognitionAdmin('settings', 'PUT', { faceIds });
  });

  test.each([
    ['a looser IoU', settings({ iouThreshold: 0.9 }), settings({ iouThreshold: 0.3 })],
    ['a stricter IoU', settings({ iouThreshold: 0.3 }), settings({ iouThreshold: 0.9 })],
    ['another quality filter', settings({ qualityFilter: 'HIGH' }), settings({ qualityFilter: 'NONE' })],
    ['--unmatched delete after keep', settings({ unmatched: 'keep' }), settings({ unmatched: 'delete' })],
  ])(
    'after a completed run, a run with %s ends consistent',
    async (_change, first, second) => {
      const { manifest, oldFaces } = await recordsFile();
      const target = resources.ownCollection(`rerun-${randomUUID()}`);
      const firstSummary = await (await start(manifest, target, first)).result();
      const firstProblems = (await accountForRun(resources, oldFaces, firstSummary)).problems;
      // Kept, the new faces nobody had are in the target without a row, as asked; nothing else is wrong.
      if (first.unmatched === 'keep') {
        expect(firstSummary.unmatchedNewKept).toBeGreaterThan(0);
        expect(firstProblems).toEqual([
          expect.stringMatching(new RegExp(`^${firstSummary.unmatchedNewKept} faces in the target that no row names`)),
        ]);
      } else {
        expect(firstProblems).toEqual([]);
      }

      const summary = await secondRunKeepsEveryPromise(manifest, oldFaces, target, second);

      expect(summary.status).toBe('completed');
      if (first.qualityFilter === 'HIGH') expect(firstSummary.dlqByReason[ReasonCode.FaceFiltered]).toBe(1);
      if (second.iouThreshold !== first.iouThreshold) expect(summary.matched).not.toBe(firstSummary.matched);
    },
    TWO_RUNS_MS,
  );

  test(
    'after a run that failed (the target full), a run with other settings ends consistent',
    async () => {
      const { manifest, oldFaces } = await recordsFile();
      const target = resources.ownCollection(`rerun-${randomUUID()}`);
      await rekognitionAdmin('settings', 'PUT', { maxFacesPerCollection: 3 });
      try {
        const failed = (await start(manifest, target, settings({ iouThreshold: 0.3, unmatched: 'keep' }))).result();
        await expect(failed).rejects.toBeInstanceOf(WorkflowFailedError);
        await expect(failed).rejects.toMatchObject({
          cause: { cause: { cause: { type: ReasonCode.TargetCollectionFull } } },
        });
      } finally {
        await rekognitionAdmin('settings', 'PUT', { maxFacesPerCollection: 20_000_000 });
      }

      await secondRunKeepsEveryPromise(manifest, oldFaces, target, settings({ iouThreshold: 0.5 }));
    },
    TWO_RUNS_MS,
  );

  test(
    'after a cancelled run, a run with other settings ends consistent',
    async () => {
      const { manifest, oldFaces } = await recordsFile();
      const target = resources.ownCollection(`rerun-${randomUUID()}`);
      await rekognitionAdmin('settings', 'PUT', { latency: { IndexFaces: { medianMs: 300, p99Ms: 400 } } });
      try {
        const handle = await start(manifest, target, settings({ iouThreshold: 0.3 }));
        await eventually(async () => (await handle.query(progressQuery)).totals.images >= 2);
        await handle.cancel();
        await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      } finally {
        await rekognitionAdmin('settings', 'PUT', { latency: {} });
      }

      await secondRunKeepsEveryPromise(manifest, oldFaces, target, settings({ iouThreshold: 0.9 }));
    },
    TWO_RUNS_MS,
  );
});
