/**
 * Images of a hundred faces, as many in flight as the CLI allows, on the dev server with a worker:
 * every payload and every history of the run stays inside Temporal's limits, and nothing is lost on
 * the way. Half the images match face for face; in the other half no old face overlaps its new one
 * enough, so each of their faces goes to review carrying the image's hundred new boxes.
 */
import { randomUUID } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { ReasonCode } from '../../src/domain/reasons';
import type { RunSummary } from '../../src/shared';
import { runCli } from '../../harness/cli';
import { useWorkerSuite } from '../../harness/worker';
import { facesIn, resultRows, takeReview, writeRecords } from '../../harness/runs';

/** Temporal's limits: a payload, and a workflow's whole history. */
const MOST_EVENT_BYTES = 2 * 1024 * 1024;
const MOST_HISTORY_BYTES = 50 * 1024 * 1024;

const suite = useWorkerSuite();

/**
 * A hundred people on a ten by ten grid, none of them in another image (the same bytes twice would
 * be one image to Rekognition); `shift` moves every box right by that share of the image.
 */
function grid(image: number, shift = 0): DeclaredFace[] {
  return Array.from({ length: 100 }, (_, i) => ({
    person: `image-${image}-person-${i}`,
    box: [0.01 + (i % 10) * 0.098 + shift, 0.01 + Math.floor(i / 10) * 0.098, 0.08, 0.08],
  }));
}

/** The size of each event of a workflow's history, as the server stores it. */
async function eventSizes(workflowId: string): Promise<number[]> {
  const history = await suite.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).map((event) => temporal.api.history.v1.HistoryEvent.encode(event).finish().byteLength);
}

/** The batch workflows of a run, numbered from 0 until one is not found. */
async function batchesOf(runId: string): Promise<string[]> {
  const found: string[] = [];
  for (;;) {
    const workflowId = `${runId}/batch-${found.length}`;
    const exists = await suite.client.workflow
      .getHandle(workflowId)
      .describe()
      .then(
        () => true,
        () => false,
      );
    if (!exists) return found;
    found.push(workflowId);
  }
}

test('100-face images at 500 in flight: every payload under 2 MB, every history under 50 MB, every face accounted for', async () => {
  // Eight images of unmatched faces make 8 MB of review items: once the limit of one payload.
  const images = 16;
  // Old boxes half a face to the left of the new ones: an IoU of a third, below the threshold.
  const spec = Array.from({ length: images }, (_, i) =>
    i % 2 === 0 ? { faces: grid(i) } : { faces: grid(i, 0.04), oldFaces: grid(i) },
  );
  const { manifest } = await writeRecords(suite.resources, spec);
  const target = suite.resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;

  const started = await runCli(
    [
      'start',
      '--manifest',
      `s3://${manifest.Bucket}/${manifest.Key}`,
      '--target',
      target,
      '--id',
      id,
      '--images-in-flight',
      '500',
      '--wait',
      '--json',
    ],
    suite.worker.cliEnv,
  );

  expect(started.code).toBe(0);
  const summary = JSON.parse(started.stdout.trim().split('\n').at(-1) ?? '{}') as RunSummary;
  expect(summary).toMatchObject({
    status: 'completed',
    images: images,
    faces: images * 100,
    matched: (images / 2) * 100,
    unmatchedOld: (images / 2) * 100,
    notProcessed: 0,
  });
  expect(summary.dlqByReason).toEqual({ [ReasonCode.IouBelowThreshold]: (images / 2) * 100 });
  expect((await resultRows(suite.resources, id)).length).toBe((images / 2) * 100);
  expect(await facesIn(suite.resources, target)).toHaveLength((images / 2) * 100);
  const review = await takeReview(suite.resources);
  expect(review).toHaveLength((images / 2) * 100);
  expect(review.every((item) => item.reason === ReasonCode.IouBelowThreshold && item.newFaces?.length === 100)).toBe(
    true,
  );

  const batches = await batchesOf(id);
  expect(batches.length).toBeGreaterThan(0);
  for (const workflowId of [id, ...batches]) {
    const sizes = await eventSizes(workflowId);
    expect(Math.max(...sizes)).toBeLessThan(MOST_EVENT_BYTES);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBeLessThan(MOST_HISTORY_BYTES);
  }
}, 600_000);
