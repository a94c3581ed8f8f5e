import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { TEST_SERVER_EXECUTABLE } from '../../harness/tools';
import { resumeSignal, sleepFor, waitForResume } from './fixtures/timers';

const DAY_MS = 24 * 60 * 60 * 1000;
const taskQueue = 'time-skipping-test';

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  [env, workflowBundle] = await Promise.all([
    TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: TEST_SERVER_EXECUTABLE } },
    }),
    bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/timers'), logger: new DefaultLogger('WARN') }),
  ]);
});

afterAll(async () => {
  await env?.teardown();
});

function createWorker(): Promise<Worker> {
  return Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle });
}

test('a workflow that sleeps for three days finishes in moments of real time', async () => {
  const worker = await createWorker();
  const realStart = performance.now();
  const workflowElapsedMs = await worker.runUntil(
    env.client.workflow.execute(sleepFor, { args: ['3 days'], taskQueue, workflowId: `sleep-${randomUUID()}` }),
  );
  const realElapsedMs = performance.now() - realStart;

  expect(workflowElapsedMs).toBeGreaterThanOrEqual(3 * DAY_MS);
  // Three days of workflow time within the test's timeout is a speed-up of more than 4,000; a
  // tighter bound would measure the machine's load, not the skipping (it takes about a second).
  expect(realElapsedMs).toBeLessThan(60_000);
});

test('a signal sent after two virtual days ends a wait of up to a week', async () => {
  const worker = await createWorker();
  const outcome = await worker.runUntil(async () => {
    const handle = await env.client.workflow.start(waitForResume, {
      args: ['7 days'],
      taskQueue,
      workflowId: `wait-${randomUUID()}`,
    });
    await env.sleep('2 days');
    await handle.signal(resumeSignal);
    return handle.result();
  });

  expect(outcome.resumed).toBe(true);
  expect(outcome.waitedMs).toBeGreaterThanOrEqual(2 * DAY_MS);
  expect(outcome.waitedMs).toBeLessThan(7 * DAY_MS);
});

test('a wait with no signal times out after its full week', async () => {
  const worker = await createWorker();
  const outcome = await worker.runUntil(
    env.client.workflow.execute(waitForResume, { args: ['7 days'], taskQueue, workflowId: `timeout-${randomUUID()}` }),
  );

  expect(outcome.resumed).toBe(false);
  expect(outcome.waitedMs).toBeGreaterThanOrEqual(7 * DAY_MS);
});
