/**
 * The worker as `npm run worker` builds it, in a process of its own that a test can SIGKILL, with
 * the differences a test needs: the suite's prebuilt workflow bundle (restarts take a second, not
 * a bundling), a short reconcile grace (TEST_ORPHAN_GRACE_MS), and no payload encryption (the
 * chaos runs read their histories in clear).
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import { createAwsClients } from '../src/aws/clients';
import { loadConfig } from '../src/domain/config';
import { indexFacesRate } from '../src/quotas';
import { createWorkers } from '../src/worker';

async function main(): Promise<void> {
  const config = loadConfig();
  const connection = await NativeConnection.connect(loadClientConnectConfig().connectionOptions);
  const workers = await createWorkers({
    connection,
    namespace: 'default',
    activities: createActivities(
      createAwsClients(config),
      config,
      { workflowService: connection.workflowService, namespace: 'default' },
      { orphanGraceMs: Number(process.env.TEST_ORPHAN_GRACE_MS) },
    ),
    indexFacesTps: (await indexFacesRate(config)).tps,
    taskQueue: config.taskQueue,
    workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE ?? '' },
  });
  console.log('worker: ready');
  await Promise.all(workers.map((worker) => worker.run()));
}

main().catch((error: unknown) => {
  console.error(`worker: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
