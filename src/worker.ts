/**
 * The worker process: builds the AWS clients once, registers the activities, and runs two workers
 * on one connection. `reindex` runs the workflows and the control activities; `reindex-index-faces`
 * runs IndexFaces alone, with the Temporal server holding every worker of that queue to one rate.
 * The connection comes from @temporalio/envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY, TLS), so the same worker runs against the local stack or Temporal Cloud. With
 * REINDEX_ENCRYPTION_KEY_FILE set, every payload it sends the server is encrypted. With
 * REINDEX_METRICS_ADDRESS set it serves Prometheus metrics there; with REINDEX_LOG_FORMAT=json it
 * logs one JSON object a line (telemetry.ts).
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import {
  NativeConnection,
  Runtime,
  Worker,
  type WorkerInterceptors,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import { createActivities } from './activities';
import { createAwsClients, destroyAwsClients, withoutRequestDetails } from './aws/clients';
import { type Config, ConfigError, loadConfig, loadTelemetryConfig, type TelemetryConfig } from './domain/config';
import { encryptingDataConverter, plaintextAllowed } from './encryption/data-converter';
import { type Keyring, loadKeyring } from './encryption/key';
import { describeRate, rateInForce } from './index-faces-rate';
import { indexFacesRate } from './quotas';
import { DEFAULT_TASK_QUEUE, taskQueues } from './shared';
import { EXIT_RUN_DROPPED, runtimeOptions } from './telemetry';
import { PREBUILT_BUNDLES } from './workflow-bundle';

export interface WorkerSetup {
  connection: NativeConnection;
  namespace: string;
  activities: ReturnType<typeof createActivities>;
  /** IndexFaces calls a second across every worker of the queue. */
  indexFacesTps: number;
  /** The workflows' task queue (default `reindex`); IndexFaces gets `<it>-index-faces`. */
  taskQueue?: string;
  /**
   * A prebuilt bundle (`npm run build`'s, or one bundled in a child at start; tests share the
   * build's); otherwise the workflows are bundled here.
   */
  workflowBundle?: WorkflowBundleOption;
  /**
   * Encrypts payloads when set. A prebuilt workflowBundle does not take its failureConverterPath:
   * bundle it with that path (as bundleInChildProcess does), or workflow failure messages stay in clear text.
   */
  dataConverter?: DataConverter;
}

/** Every activity's error leaves it without the AWS request details that could name credentials. */
export const activityErrorInterceptors: WorkerInterceptors = {
  activity: [
    () => ({
      inbound: {
        async execute(input, next) {
          try {
            return await next(input);
          } catch (error) {
            throw withoutRequestDetails(error);
          }
        },
      },
    }),
  ],
};

/**
 * A stopping worker lets its activities finish for this long before cancelling them, which stops
 * their AWS calls; the long phases then resume elsewhere from their last heartbeat.
 */
const SHUTDOWN_GRACE = '30 seconds';

export async function createWorkers(setup: WorkerSetup): Promise<[control: Worker, indexFaces: Worker]> {
  const queues = taskQueues(setup.taskQueue ?? DEFAULT_TASK_QUEUE);
  const workflows = setup.workflowBundle
    ? { workflowBundle: setup.workflowBundle }
    : { workflowsPath: require.resolve('./workflows') };
  return Promise.all([
    Worker.create({
      connection: setup.connection,
      namespace: setup.namespace,
      taskQueue: queues.control,
      ...workflows,
      activities: setup.activities.control,
      interceptors: activityErrorInterceptors,
      dataConverter: setup.dataConverter,
      shutdownGraceTime: SHUTDOWN_GRACE,
      // Cancellation reaches an activity with the answer to a heartbeat: a cancelled split stops within seconds.
      maxHeartbeatThrottleInterval: '5 seconds',
    }),
    Worker.create({
      connection: setup.connection,
      namespace: setup.namespace,
      taskQueue: queues.indexFaces,
      activities: setup.activities.indexFaces,
      maxTaskQueueActivitiesPerSecond: setup.indexFacesTps,
      interceptors: activityErrorInterceptors,
      dataConverter: setup.dataConverter,
      shutdownGraceTime: SHUTDOWN_GRACE,
    }),
  ]);
}

/** The version of the SDK's workflow runtime installed beside the worker. */
function installedWorkflowSdk(): string {
  return (JSON.parse(readFileSync(require.resolve('@temporalio/workflow/package.json'), 'utf8')) as { version: string })
    .version;
}

/**
 * The bundle `npm run build` wrote beside the compiled worker, when it is at least as new as the
 * compiled code and made with the installed SDK (bin/build.js stamps dist/ with `.built`, naming the
 * SDK, before bundling); otherwise undefined, and a worker whose code or SDK changed since bundles
 * its own rather than run older workflows.
 */
export function prebuiltBundle(
  dataConverter: DataConverter | undefined,
  directory = __dirname,
  workflowSdk = installedWorkflowSdk(),
): (WorkflowBundleOption & { codePath: string }) | undefined {
  const codePath = path.join(directory, PREBUILT_BUNDLES[dataConverter?.failureConverterPath ? 'encrypted' : 'plain']);
  const stamp = path.join(directory, '.built');
  if (!existsSync(codePath) || !existsSync(stamp)) return undefined;
  const builtWith = (JSON.parse(readFileSync(stamp, 'utf8') || '{}') as { temporalWorkflow?: string }).temporalWorkflow;
  if (builtWith !== workflowSdk) return undefined;
  return statSync(codePath).mtimeMs >= statSync(stamp).mtimeMs ? { codePath } : undefined;
}

/**
 * The workflows, bundled by a short-lived child process (workflow-bundle.ts) so that webpack's
 * memory leaves with it. The child gets the worker's Node flags but not its profiling flags.
 */
async function bundleInChildProcess(dataConverter: DataConverter | undefined): Promise<WorkflowBundleOption> {
  const directory = await mkdtemp(path.join(tmpdir(), 'reindex-workflows-'));
  try {
    const bundlePath = path.join(directory, 'workflows.js');
    const execArgv = process.execArgv.filter((flag) => !/^--(cpu|heap)-prof/.test(flag));
    const args = [bundlePath, ...(dataConverter?.failureConverterPath ? [dataConverter.failureConverterPath] : [])];
    const child = fork(require.resolve('./workflow-bundle'), args, {
      execArgv,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`bundling the workflows failed (exit code ${code})`);
    return { code: await readFile(bundlePath, 'utf8') };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * Leaves at once, as a killed worker would, so that whatever restarts workers (the ECS service, a
 * process supervisor) starts one that replays the run from its history: this worker would hold the
 * run's task, never answering it, for as long as it lives.
 */
function exitForDroppedRun(message: string): void {
  console.error(
    `worker: the Temporal SDK dropped a run's workflow task ("${message}"); exiting with code ${EXIT_RUN_DROPPED} so that a new worker takes the run up from its history`,
  );
  process.exit(EXIT_RUN_DROPPED);
}

async function main(): Promise<void> {
  let config: Config;
  let telemetry: TelemetryConfig;
  let keyring: Keyring | undefined;
  try {
    config = loadConfig();
    telemetry = loadTelemetryConfig();
    keyring = loadKeyring();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`worker: ${error.message}`);
    process.exit(2);
  }
  // Before anything connects: the Runtime holds the metrics server and the logger.
  const runtime = Runtime.install(runtimeOptions(telemetry, exitForDroppedRun));
  const { connectionOptions, namespace = 'default' } = loadClientConnectConfig();
  const connection = await NativeConnection.connect(connectionOptions);
  const aws = createAwsClients(config);
  const dataConverter = keyring && encryptingDataConverter(keyring, { namespace, allowPlaintext: plaintextAllowed() });
  try {
    const rate = await indexFacesRate(config);
    const workers = await createWorkers({
      connection,
      namespace,
      activities: createActivities(aws, config, { workflowService: connection.workflowService, namespace }),
      indexFacesTps: rate.tps,
      taskQueue: config.taskQueue,
      workflowBundle: prebuiltBundle(dataConverter) ?? (await bundleInChildProcess(dataConverter)),
      dataConverter,
    });
    const queues = taskQueues(config.taskQueue);
    const held = await rateInForce(connection.workflowService, namespace, config.taskQueue).catch(() => undefined);
    const heldInstead =
      held?.source === 'override' ? `; the Temporal server holds ${describeRate(held)}, instead of this rate` : '';
    const ready = `worker: polling ${queues.control} and ${queues.indexFaces} (IndexFaces at most ${rate.tps}/s: ${rate.reason}${heldInstead}) on ${connectionOptions.address ?? 'the default address'}, namespace ${namespace}; ${keyring ? `payloads encrypted with key id ${keyring.current.id}${keyring.earlier.length > 0 ? `, earlier key ids ${keyring.earlier.map((key) => key.id).join(', ')} read` : ''}${plaintextAllowed() ? ', unencrypted payloads read (REINDEX_ENCRYPTION_ALLOW_PLAINTEXT)' : ''}` : 'payloads not encrypted'}${telemetry.metricsAddress ? `; metrics at http://${telemetry.metricsAddress}/metrics` : ''}`;
    if (telemetry.logFormat === 'json')
      runtime.logger.info(ready, {
        taskQueues: [queues.control, queues.indexFaces],
        metricsAddress: telemetry.metricsAddress,
      });
    else console.log(ready);
    // Each worker stops on SIGINT or SIGTERM after its tasks in flight finish.
    await Promise.all(workers.map((worker) => worker.run()));
  } finally {
    destroyAwsClients(aws);
    await connection.close();
  }
}

/** Runs the worker until it is stopped, as `npm run worker` does (bin/worker.js); exits with 1 when it fails. */
export function runWorkerProcess(): void {
  main().catch((error: unknown) => {
    console.error(`worker: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}

if (require.main === module) runWorkerProcess();
