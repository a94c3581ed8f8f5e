/**
 * reindexPlan in time-skipping tests, with a stand-in for each collection's run
 * (fixtures/plan.ts): the order and number of collections at once, a collection that fails,
 * pause, resume and cancel, and a plan it refuses.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ReasonCode } from '../../src/domain/reasons';
import { pauseSignal, planProgressQuery, type PlannedRun, type ReindexPlanInput, resumeSignal } from '../../src/shared';
import { registerSearchAttributes } from '../../harness/runs';
import { TEST_SERVER_EXECUTABLE } from '../../harness/tools';
import type { reindexPlan, StandInState } from './fixtures/plan';

const taskQueue = 'plan-test';

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  [env, workflowBundle] = await Promise.all([
    TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: TEST_SERVER_EXECUTABLE } },
    }),
    bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/plan'), logger: new DefaultLogger('WARN') }),
  ]);
  await registerSearchAttributes(env);
}, 120_000);

afterAll(async () => {
  await env?.teardown();
});

/** A collection whose run takes `minutes`, or fails; its size is its minutes. */
const collection = (target: string, minutes: number | 'fail'): PlannedRun => ({
  targetCollectionId: target,
  manifest: { Bucket: 'records', Key: minutes === 'fail' ? 'fail' : `minutes/${minutes}` },
  sourceCollectionId: undefined,
  ...(minutes === 'fail' ? {} : { images: minutes }),
});

function planInput(collections: PlannedRun[], collectionsInFlight: number): ReindexPlanInput {
  return {
    collections,
    collectionsInFlight,
    settings: {
      options: { iouThreshold: 0.5, qualityFilter: 'AUTO', maxFaces: undefined, unmatched: 'delete' },
      force: false,
      batchSize: 500,
      batchesInFlight: 4,
      imagesInFlightPerBatch: 16,
      batchesPerExecution: 500,
    },
  };
}

function startPlan(input: ReindexPlanInput) {
  return env.client.workflow.start<typeof reindexPlan>('reindexPlan', {
    taskQueue,
    workflowId: `plan-${randomUUID()}`,
    args: [input],
  });
}

async function withWorker<T>(work: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle });
  return worker.runUntil(work);
}

/** When each collection's run started and closed, in virtual time. */
async function runTimes(planId: string, targets: string[]): Promise<Map<string, { started: number; closed: number }>> {
  const times = new Map<string, { started: number; closed: number }>();
  for (const target of targets) {
    const described = await env.client.workflow.getHandle(`${planId}/${target}`).describe();
    times.set(target, { started: described.startTime.getTime(), closed: described.closeTime?.getTime() ?? Infinity });
  }
  return times;
}

test('the smallest collections start first, never more at once than asked, and the plan adds up their runs', async () => {
  const sizes: Record<string, number> = { huge: 50, tiny: 1, small: 5, medium: 20, little: 3 };
  const collections = Object.entries(sizes).map(([target, minutes]) => collection(target, minutes));

  const { planId, summary } = await withWorker(async () => {
    const handle = await startPlan(planInput(collections, 2));
    return { planId: handle.workflowId, summary: await handle.result() };
  });

  expect(summary.status).toBe('completed');
  expect(summary.collections.map(({ targetCollectionId, state }) => [targetCollectionId, state])).toEqual(
    Object.keys(sizes).map((target) => [target, 'completed']),
  );
  expect(summary.totals).toMatchObject({ images: 79, faces: 158, matched: 158, dlq: 0 });
  const times = await runTimes(planId, Object.keys(sizes));
  const byStart = [...times.entries()].sort(([, a], [, b]) => a.started - b.started).map(([target]) => target);
  expect(byStart).toEqual(['tiny', 'little', 'small', 'medium', 'huge']);
  for (const [, { started }] of times) {
    const atOnce = [...times.values()].filter((other) => other.started <= started && other.closed > started).length;
    expect(atOnce).toBeLessThanOrEqual(2);
  }
});

test('a collection whose run fails is recorded with its error, and the others go on', async () => {
  const summary = await withWorker(async () =>
    (await startPlan(planInput([collection('owned-by-someone', 'fail'), collection('fine', 2)], 1))).result(),
  );

  expect(summary.status).toBe('completed');
  expect(summary.collections).toEqual([
    expect.objectContaining({
      targetCollectionId: 'owned-by-someone',
      state: 'failed',
      error: 'the target owned-by-someone holds faces this tool did not index',
    }),
    expect.objectContaining({
      targetCollectionId: 'fine',
      state: 'completed',
      summary: expect.objectContaining({ images: 2 }) as unknown,
    }),
  ]);
});

test('pause holds the running collections and starts no other; resume goes on with all of them', async () => {
  const outcome = await withWorker(async () => {
    const handle = await startPlan(planInput([collection('first', 10), collection('second', 10)], 1));
    await env.sleep('3 minutes');
    await handle.signal(pauseSignal);
    await env.sleep('1 day');
    const paused = await handle.query(planProgressQuery);
    const first = await env.client.workflow.getHandle(`${handle.workflowId}/first`).query<StandInState>('standIn');
    await handle.signal(resumeSignal);
    return { paused, first, summary: await handle.result() };
  });

  expect(outcome.paused).toMatchObject({ paused: true, collections: [{ state: 'running' }, { state: 'waiting' }] });
  expect(outcome.first.paused).toBe(true);
  // A day paused, and it had worked only the minutes before the pause.
  expect(outcome.first.workedMinutes).toBeLessThanOrEqual(4);
  expect(outcome.summary.collections.map(({ state }) => state)).toEqual(['completed', 'completed']);
});

test('cancel ends the running collections as cancelled runs and starts none of the others', async () => {
  const summary = await withWorker(async () => {
    const handle = await startPlan(planInput([collection('running', 30), collection('next', 5)], 1));
    await env.sleep('2 minutes');
    await handle.cancel();
    return handle.result();
  });

  expect(summary.status).toBe('cancelled');
  expect(summary.collections).toEqual([
    expect.objectContaining({ targetCollectionId: 'running', state: 'cancelled' }),
    expect.objectContaining({ targetCollectionId: 'next', state: 'cancelled' }),
  ]);
});

test('a plan that names a target twice, runs no collection at once, or hands a run records not its own or two runs the unnamed ones, fails at once with INVALID_PLAN', async () => {
  const sharing = (target: string, takes: string, refusesUnnamed: boolean): PlannedRun => ({
    ...collection(target, 1),
    records: { collectionId: takes, refusesUnnamed },
  });
  for (const input of [
    planInput([collection('same', 1), collection('same', 2)], 1),
    planInput([collection('one', 1)], 0),
    planInput([], 1),
    planInput([sharing('a', 'b', true)], 1),
    planInput([sharing('a', 'a', true), sharing('b', 'b', true)], 1),
  ]) {
    const failure = withWorker(async () => (await startPlan(input)).result());

    await expect(failure).rejects.toBeInstanceOf(WorkflowFailedError);
    await expect(failure).rejects.toMatchObject({ cause: { type: ReasonCode.InvalidPlan } });
  }
});
