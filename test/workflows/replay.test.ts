/**
 * Replays recorded histories of real runs (test/workflows/histories/, recorded from the local
 * stack with infra/local/record-history.ts) against today's workflow code: a change that would make
 * a running migration fail with a non-determinism error on upgrade fails here first.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const HISTORIES = path.join(__dirname, 'histories');
const recorded = readdirSync(HISTORIES).filter((file) => file.endsWith('.json'));

let workflowBundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: new DefaultLogger('WARN') });
});

test('histories of every kind of run are on record', () => {
  expect(recorded.sort()).toEqual(['batch-completed.json', 'run-cancelled.json', 'run-completed.json', 'run-continued-as-new.json']);
});

test.each(recorded)('%s replays without a non-determinism error', async (file) => {
  const history: unknown = JSON.parse(readFileSync(path.join(HISTORIES, file), 'utf8'));

  await expect(Worker.runReplayHistory({ workflowBundle }, history, file)).resolves.toBeUndefined();
});
