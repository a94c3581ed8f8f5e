/**
 * `reindex start|status|pause|resume|cancel`: a run of the reindexCollection workflow, seen from
 * the operator's terminal. Input errors (a bad flag, a records file that is not there, Temporal
 * out of reach) are UsageErrors: one line on stderr and exit code 2.
 */
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { ClientConnectConfig } from '@temporalio/envconfig';
import { temporal } from '@temporalio/proto';
import { type AwsClients, httpStatusOf } from '../activities/aws-clients';
import type { Config } from '../domain/config';
import {
  pauseSignal,
  progressQuery,
  reportKey,
  type ReindexCollectionInput,
  type ReindexOptions,
  resumeSignal,
  type RunProgress,
  type RunSummary,
  SEARCH_ATTRIBUTES,
  TASK_QUEUES,
} from '../shared';
import type { reindexCollection } from '../workflows';

/** A mistake in what the operator asked for: one line on stderr, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface StartOptions {
  manifest: { Bucket: string; Key: string };
  target: string;
  source: string | undefined;
  options: ReindexOptions;
  tps: number | undefined;
  batchSize: number;
  batchesInFlight: number;
  imagesInFlight: number;
  force: boolean;
  id: string | undefined;
}

/** Parses `s3://bucket/key`. */
export function parseS3Uri(uri: string): { Bucket: string; Key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) throw new UsageError(`"${uri}" is not an S3 URI of the form s3://bucket/key`);
  return { Bucket: match[1], Key: match[2] };
}

export async function connectTemporal({ connectionOptions, namespace = 'default' }: ClientConnectConfig): Promise<Client> {
  const address = connectionOptions.address ?? '127.0.0.1:7233';
  try {
    const connection = await Connection.connect({ ...connectionOptions, connectTimeout: '5s' });
    return new Client({ connection, namespace });
  } catch (error) {
    throw new UsageError(`cannot reach Temporal at ${address}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Where a person looks at the run: the local stack's Web UI, or whatever TEMPORAL_UI_URL names. */
export function runUrl(client: Client, workflowId: string): string | undefined {
  const ui = process.env.TEMPORAL_UI_URL;
  return ui ? `${ui.replace(/\/$/, '')}/namespaces/${client.options.namespace}/workflows/${encodeURIComponent(workflowId)}` : undefined;
}

async function assertReadable(aws: AwsClients, { Bucket, Key }: { Bucket: string; Key: string }): Promise<void> {
  try {
    await aws.s3.send(new HeadObjectCommand({ Bucket, Key }));
  } catch (error) {
    const status = httpStatusOf(error);
    if (status === 404 || status === 403) {
      throw new UsageError(`the records file s3://${Bucket}/${Key} ${status === 404 ? 'does not exist' : 'may not be read with these credentials'}`);
    }
    throw error;
  }
}

/**
 * The IndexFaces rate is a property of the task queue, held by the Temporal server for every
 * worker: setting it here overrides the rate the workers asked for, until it is reset.
 */
async function setIndexFacesRate(client: Client, tps: number): Promise<void> {
  await client.workflowService.updateTaskQueueConfig({
    namespace: client.options.namespace,
    identity: client.options.identity,
    taskQueue: TASK_QUEUES.indexFaces,
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    updateQueueRateLimit: { rateLimit: { requestsPerSecond: tps }, reason: `reindex start --tps ${tps}` },
  });
}

function defaultWorkflowId(target: string, now = new Date()): string {
  return `reindex-${target}-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

export async function startRun(client: Client, aws: AwsClients, start: StartOptions): Promise<{ workflowId: string; url: string | undefined }> {
  await assertReadable(aws, start.manifest);
  if (start.tps !== undefined) await setIndexFacesRate(client, start.tps);
  const workflowId = start.id ?? defaultWorkflowId(start.target);
  const input: ReindexCollectionInput = {
    manifest: start.manifest,
    targetCollectionId: start.target,
    sourceCollectionId: start.source,
    options: start.options,
    force: start.force,
    batchSize: start.batchSize,
    batchesInFlight: start.batchesInFlight,
    imagesInFlightPerBatch: start.imagesInFlight,
    batchesPerExecution: 500,
  };
  await client.workflow
    .start<typeof reindexCollection>('reindexCollection', {
    taskQueue: TASK_QUEUES.control,
    workflowId,
    args: [input],
    staticSummary: `s3://${start.manifest.Bucket}/${start.manifest.Key} → ${start.target}`,
    staticDetails: [
      `**records** s3://${start.manifest.Bucket}/${start.manifest.Key}`,
      `**target** ${start.target}${start.source ? ` (from ${start.source})` : ''}`,
      `**IoU threshold** ${start.options.iouThreshold}, **quality filter** ${start.options.qualityFilter}, **unmatched new faces** ${start.options.unmatched}`,
    ].join('\n\n'),
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.phase, value: 'preparing' },
      { key: SEARCH_ATTRIBUTES.processed, value: 0 },
      { key: SEARCH_ATTRIBUTES.failed, value: 0 },
      { key: SEARCH_ATTRIBUTES.paused, value: false },
    ],
    })
    .catch((error: unknown) => {
      if (error instanceof WorkflowExecutionAlreadyStartedError) throw new UsageError(`a run with the id ${workflowId} exists already`);
      throw error;
    });
  return { workflowId, url: runUrl(client, workflowId) };
}

/** The summary a cancelled run wrote to S3 before it ended: its result, had it finished. */
async function cancelledSummary(aws: AwsClients, config: Config, workflowId: string): Promise<RunSummary | undefined> {
  try {
    const { Body } = await aws.s3.send(new GetObjectCommand({ Bucket: config.bucket, Key: reportKey(workflowId, 'json') }));
    return { ...(JSON.parse((await Body?.transformToString()) ?? '') as RunSummary), status: 'cancelled' };
  } catch {
    return undefined;
  }
}

export type RunEnd = { status: 'completed' | 'cancelled'; summary: RunSummary | undefined } | { status: 'failed'; message: string };

/** Waits for the run to end, following continue-as-new. */
export async function waitForRun(client: Client, aws: AwsClients, config: Config, workflowId: string): Promise<RunEnd> {
  try {
    const summary = await client.workflow.getHandle<typeof reindexCollection>(workflowId).result();
    return { status: 'completed', summary };
  } catch (error) {
    if (error instanceof WorkflowFailedError) {
      const description = await client.workflow.getHandle(workflowId).describe();
      if (description.status.name === 'CANCELLED') return { status: 'cancelled', summary: await cancelledSummary(aws, config, workflowId) };
      // WorkflowFailedError → the workflow's failure (an ActivityFailure, say) → its cause, which says why.
      const failure = error.cause;
      const cause = failure?.cause instanceof Error ? failure.cause : failure;
      return { status: 'failed', message: cause?.message ?? error.message };
    }
    throw error;
  }
}

export interface RunStatus {
  workflowId: string;
  status: string;
  progress: RunProgress | undefined;
  url: string | undefined;
}

export async function runStatus(client: Client, workflowId: string): Promise<RunStatus> {
  const handle = client.workflow.getHandle<typeof reindexCollection>(workflowId);
  const description = await describeRun(client, workflowId);
  const progress = description.status.name === 'RUNNING' ? await handle.query(progressQuery) : undefined;
  return { workflowId, status: description.status.name, progress, url: runUrl(client, workflowId) };
}

async function describeRun(client: Client, workflowId: string) {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new UsageError(`no run has the id ${workflowId}`);
    throw error;
  }
}

export async function signalRun(client: Client, workflowId: string, action: 'pause' | 'resume' | 'cancel'): Promise<void> {
  const description = await describeRun(client, workflowId);
  if (description.status.name !== 'RUNNING') throw new UsageError(`run ${workflowId} is ${description.status.name.toLowerCase()}, not running`);
  const handle = client.workflow.getHandle(workflowId);
  if (action === 'cancel') await handle.cancel();
  else await handle.signal(action === 'pause' ? pauseSignal : resumeSignal);
}

/** The figures of a summary or of progress as lines a person reads. */
export function describeTotals(figures: Pick<RunSummary, 'images' | 'faces' | 'matched' | 'unmatchedOld' | 'unmatchedNewDeleted' | 'unmatchedNewKept' | 'dlq' | 'dlqByReason'>): string[] {
  const reasons = Object.entries(figures.dlqByReason)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  return [
    `images ${figures.images}, old faces ${figures.faces}`,
    `matched ${figures.matched}, old faces unmatched ${figures.unmatchedOld}`,
    `new faces nobody had: ${figures.unmatchedNewDeleted} deleted, ${figures.unmatchedNewKept} kept`,
    `in the review DLQ ${figures.dlq}${reasons ? ` (${reasons})` : ''}`,
  ];
}
