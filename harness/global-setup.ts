/**
 * Before every suite: `npm run build` afresh (bin/build.js), so that every command and worker a
 * test starts runs today's src/, and the workflows are bundled once for the whole jest run, not
 * once per suite's worker (webpack takes seconds on two cores, and most suites start a worker);
 * and a rekognition-local for each jest worker past the first (test-workers.ts). Their paths reach
 * the suites through the environment, which their processes inherit.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Config } from 'jest';
import { readStackEnv } from '../infra/local/settings';
import { PREBUILT_BUNDLES } from '../src/workflow-bundle';
import { type RunningRekognition, startRekognitionLocal } from './rekognition-local';
import { REKOGNITION_ENDPOINTS_VARIABLE } from './test-workers';
import { WORKFLOWS_BUNDLE_VARIABLE } from './workflows-bundle';

/**
 * The rekognition-locals started here, for the global teardown, which runs in this process:
 * jest shares only globals between the two.
 */
export function workerRekognitions(): RunningRekognition[] {
  const shared = globalThis as { reindexWorkerRekognitions?: RunningRekognition[] };
  shared.reindexWorkerRekognitions ??= [];
  return shared.reindexWorkerRekognitions;
}

export default async function globalSetup({ maxWorkers }: { maxWorkers: Config['maxWorkers'] }): Promise<void> {
  const workers = typeof maxWorkers === 'number' ? maxWorkers : 1;
  const started = await Promise.allSettled([
    promisify(execFile)(process.execPath, [path.resolve(__dirname, '../bin/build.js')]).then(() => undefined),
    // Without a stack (`npx jest test/domain`), the suites that need one say so themselves.
    ...(readStackEnv() === undefined
      ? []
      : Array.from({ length: workers - 1 }, () =>
          startRekognitionLocal({ faceIds: process.env.STACK_REKOGNITION_FACE_IDS === 'fresh' ? 'fresh' : 'reuse' }),
        )),
  ]);
  const rekognitions = started.flatMap((outcome) =>
    outcome.status === 'fulfilled' && outcome.value ? [outcome.value] : [],
  );
  // Those that started are stopped by the teardown, even when another failed to start.
  workerRekognitions().push(...rekognitions);
  const failure = started.find((outcome) => outcome.status === 'rejected');
  if (failure) throw failure.reason;
  process.env[WORKFLOWS_BUNDLE_VARIABLE] = path.resolve(__dirname, '../dist', PREBUILT_BUNDLES.plain);
  // Worker 1 keeps the stack's; workers 2 and on take one each.
  process.env[REKOGNITION_ENDPOINTS_VARIABLE] = JSON.stringify(
    Object.fromEntries(rekognitions.map((rekognition, i) => [String(i + 2), rekognition.endpoint])),
  );
}
