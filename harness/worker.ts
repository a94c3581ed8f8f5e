/**
 * A worker on the stack's dev server for end-to-end tests, wired to a suite's own queues and table,
 * and the environment with which the suite's `reindex` processes find them. Each suite gets a task
 * queue of its own, so suites running at once never take each other's runs.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import { createWorkers } from '../src/worker';
import { createRunResources, type RunResources } from './runs';
import { sharedWorkflowBundle } from './workflows-bundle';

export interface RunningWorker {
  /** The environment of a `reindex` process that works on the suite's resources. */
  cliEnv: NodeJS.ProcessEnv;
  /** The suite's own task queue, so suites never run each other's workflows. */
  taskQueue: string;
  stop(): Promise<void>;
}

/** `dataConverter` (an encrypting one, say) is the worker's; the CLI processes still read their own from cliEnv. */
export async function startWorker(resources: RunResources, dataConverter?: DataConverter): Promise<RunningWorker> {
  const { connectionOptions } = loadClientConnectConfig();
  const taskQueue = `reindex-test-${randomUUID().slice(0, 8)}`;
  const connection = await NativeConnection.connect(connectionOptions);
  const workers = await createWorkers({
    connection,
    namespace: 'default',
    activities: createActivities(
      resources.aws,
      resources.config,
      { workflowService: connection.workflowService, namespace: 'default' },
      { orphanGraceMs: 3_000 },
    ),
    indexFacesTps: 1000,
    taskQueue,
    // An encrypting converter's failure converter must be bundled with the workflows.
    workflowBundle: sharedWorkflowBundle(dataConverter?.failureConverterPath !== undefined),
    dataConverter,
  });
  const running = workers.map((worker) => worker.run());
  return {
    cliEnv: {
      ...process.env,
      REINDEX_RESULTS_TABLE: resources.config.resultsTable,
      REINDEX_RESULTS_QUEUE_URL: resources.config.resultsQueueUrl,
      REINDEX_REVIEW_DLQ_URL: resources.config.reviewDlqUrl,
      REINDEX_TASK_QUEUE: taskQueue,
    },
    taskQueue,
    async stop() {
      for (const worker of workers) worker.shutdown();
      await Promise.all(running);
      await connection.close();
    },
  };
}

/** What a suite of runs works with: its own queues and table, a worker on its own task queue, and a client. */
export interface WorkerSuite {
  resources: RunResources;
  worker: RunningWorker;
  client: Client;
}

/** Makes a suite's resources, worker and client before its tests, and releases them after; read them inside tests. */
export function useWorkerSuite(): WorkerSuite {
  const suite = {} as WorkerSuite;
  beforeAll(async () => {
    suite.resources = await createRunResources();
    suite.worker = await startWorker(suite.resources);
    suite.client = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
  }, 120_000);
  afterAll(async () => {
    await suite.client?.connection.close();
    await suite.worker?.stop();
    await suite.resources?.release();
  });
  return suite;
}
