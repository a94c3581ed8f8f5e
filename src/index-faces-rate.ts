/**
 * The IndexFaces rate in force on a deployment's rate-limited task queue, as the Temporal server
 * holds it: an override set through the API (`reindex rate --tps`, `reindex start --tps`), which
 * outlives every run until reset, or else the rate the workers ask for. Used by the CLI to show,
 * set and reset it, and by the worker to say which rate applies.
 */
import type { WorkflowService } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { taskQueues } from './shared';

export interface RateInForce {
  /** Calls a second the server lets through; undefined when nothing sets one (no worker, no override). */
  tps: number | undefined;
  source: 'override' | 'workers' | 'none';
  /** The override held on the server, with why and when it was set. */
  override?: { tps: number; reason: string; setAt: string | undefined };
}

const ACTIVITY_QUEUE = temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;
const { RateLimitSource } = temporal.api.enums.v1;

export async function rateInForce(
  service: WorkflowService,
  namespace: string,
  taskQueue: string,
): Promise<RateInForce> {
  const described = await service.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueues(taskQueue).indexFaces },
    taskQueueType: ACTIVITY_QUEUE,
    reportConfig: true,
  });
  const limit = described.config?.queueRateLimit;
  const override =
    typeof limit?.rateLimit?.requestsPerSecond === 'number'
      ? {
          tps: limit.rateLimit.requestsPerSecond,
          reason: limit.metadata?.reason ?? '',
          setAt: limit.metadata?.updateTime?.seconds
            ? new Date(Number(limit.metadata.updateTime.seconds) * 1000).toISOString()
            : undefined,
        }
      : undefined;
  if (override) return { tps: override.tps, source: 'override', override };
  const effective = described.effectiveRateLimit;
  if (effective?.rateLimitSource === RateLimitSource.RATE_LIMIT_SOURCE_WORKER && effective.requestsPerSecond)
    return { tps: effective.requestsPerSecond, source: 'workers' };
  // Right after a reset the server may not have taken the workers' rate back yet; their polls carry it.
  const lastPoll = [...described.pollers]
    .filter((poller) => poller.ratePerSecond)
    .sort((a, b) => Number(b.lastAccessTime?.seconds ?? 0) - Number(a.lastAccessTime?.seconds ?? 0))[0];
  if (lastPoll?.ratePerSecond) return { tps: lastPoll.ratePerSecond, source: 'workers' };
  return { tps: undefined, source: 'none' };
}

/** Holds the queue to `tps` for every worker, now and for later runs, until reset. */
export async function setRate(
  service: WorkflowService,
  { namespace, identity, taskQueue }: { namespace: string; identity: string | undefined; taskQueue: string },
  tps: number,
  reason: string,
): Promise<void> {
  await service.updateTaskQueueConfig({
    namespace,
    identity,
    taskQueue: taskQueues(taskQueue).indexFaces,
    taskQueueType: ACTIVITY_QUEUE,
    updateQueueRateLimit: { rateLimit: { requestsPerSecond: tps }, reason },
  });
}

/** Removes the override: the rate the workers ask for applies again. */
export async function resetRate(
  service: WorkflowService,
  { namespace, identity, taskQueue }: { namespace: string; identity: string | undefined; taskQueue: string },
): Promise<void> {
  await service.updateTaskQueueConfig({
    namespace,
    identity,
    taskQueue: taskQueues(taskQueue).indexFaces,
    taskQueueType: ACTIVITY_QUEUE,
    updateQueueRateLimit: {},
  });
}

/** The rate in force in a few words, for `status`, `rate` and the worker's log. */
export function describeRate(rate: RateInForce): string {
  if (rate.source === 'override' && rate.override) {
    return `${rate.override.tps}/s, held on the Temporal server${rate.override.reason ? ` (${rate.override.reason}${rate.override.setAt ? `, ${rate.override.setAt}` : ''})` : ''} for every run until \`reindex rate --reset\``;
  }
  if (rate.source === 'workers') return `${rate.tps}/s, as the workers ask`;
  return 'none yet: no worker polls the queue and none is held on the server';
}
