/**
 * Replays recorded histories of real runs against today's workflow code: a change that would make
 * a running migration fail with a non-determinism error on upgrade fails here first. The histories
 * were recorded from runs on the local stack with
 *   .tools/bin/temporal workflow show --workflow-id <id> [--run-id <run>] -o json \
 *     > test/workflows/histories/<name>.json
 * The *-through-faults histories come from the chaos suite's run through every fault (a killed
 * drain, a killed worker, a server restart, a degraded Rekognition), recorded with
 *   REINDEX_RECORD_HISTORIES=<dir> npx jest test/chaos
 * The *-breaker-* histories come from the e2e run whose small batches trip the circuit breaker
 * together (test/e2e/failures.test.ts): published outcomes, a continuous drain, a trip and a resume.
 * The *-<date> histories come from `npm run histories:record` (infra/local/record-histories.ts),
 * which runs today's workflows on a real worker against the local stack: a completed run and its
 * batch, a redrive from the review DLQ, settled duplicates and the drain of requeued results, a
 * continue-as-new while paused and resumed, batches paused mid-batch, a cancellation mid-batch.
 * Record again only when a change is meant to break compatibility, and say so in the commit.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const HISTORIES = path.join(__dirname, 'histories');
const recorded = readdirSync(HISTORIES).filter((file) => file.endsWith('.json'));

let workflowBundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  workflowBundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../src/workflows'),
    logger: new DefaultLogger('WARN'),
  });
});

/** Each recorded history with the workflow id it ran under: child ids derive from it. */
const HISTORY_WORKFLOW_IDS: Record<string, string> = {
  'batch-breaker-tripped.json': 'e2e-14cf8784-d21b-45d1-81b1-ad5e6cb9e1d5/batch-2',
  'batch-cancelled-2026-12-05.json': 'history-cancelled-51758276/batch-0',
  'batch-completed-2026-12-05.json': 'history-completed-3b9b57f6/batch-0',
  'batch-completed.json': 'demo-20261128t081028/batch-0',
  'batch-paused-and-resumed-2026-12-05.json': 'history-paused-d0ec144f/batch-0',
  'batch-through-faults.json': 'chaos-all-faults-70a4d419-a2a1-431f-ae5f-1a4b272f764a/batch-0',
  'drain-requeued-results-2026-12-05.json': 'requeue-results-f813ded65bed',
  'run-breaker-across-batches.json': 'e2e-14cf8784-d21b-45d1-81b1-ad5e6cb9e1d5',
  'run-cancelled-mid-batch-2026-12-05.json': 'history-cancelled-51758276',
  'run-cancelled.json': 'e2e-4d815f0a-7cb2-4b67-9fd1-2fcabe359ef5',
  'run-completed-2026-12-05.json': 'history-completed-3b9b57f6',
  'run-completed.json': 'demo-20261128t081028',
  'run-continued-as-new-carried-2026-12-05.json': 'history-continued-as-new-ff8f2086',
  'run-continued-as-new-paused-2026-12-05.json': 'history-continued-as-new-ff8f2086',
  'run-continued-as-new.json': 'history-can-1',
  'run-duplicates-settled-2026-12-05.json': 'history-duplicates-ebb4fb09',
  'run-paused-mid-batch-2026-12-05.json': 'history-paused-d0ec144f',
  'run-redriven-2026-12-05.json': 'history-completed-3b9b57f6-redrive',
  'run-through-faults.json': 'chaos-all-faults-70a4d419-a2a1-431f-ae5f-1a4b272f764a',
};

test('histories of every kind of run are on record', () => {
  expect(recorded.sort()).toEqual(Object.keys(HISTORY_WORKFLOW_IDS).sort());
});

test.each(recorded)('%s replays without a non-determinism error', async (file) => {
  const history: unknown = JSON.parse(readFileSync(path.join(HISTORIES, file), 'utf8'));

  await expect(
    Worker.runReplayHistory({ workflowBundle }, history, HISTORY_WORKFLOW_IDS[file]),
  ).resolves.toBeUndefined();
});
