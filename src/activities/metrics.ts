/**
 * The project's own metrics (named in src/metrics.ts), recorded through the activity's metric meter,
 * so they are served beside Temporal's on the worker's Prometheus endpoint (REINDEX_METRICS_ADDRESS)
 * and carry the activity's namespace, taskQueue and activityType labels. Without an endpoint they
 * go nowhere.
 *
 * Activities run at least once: a retried activity counts again what its lost attempt counted,
 * so after faults these counters may run ahead of the run summary, never behind it.
 */
import { metricMeter } from '@temporalio/activity';
import type { ReviewItem } from '../domain/outcomes';
import type { ReasonCode } from '../domain/reasons';
import { METRICS } from '../metrics';

/**
 * What one IndexFaces call came to: `ok`; `throttled` (the account's quota, retried);
 * `refused` (a permanent error: the image or the collection); `error` (anything else, retried).
 */
export type IndexFacesOutcome = 'ok' | 'throttled' | 'refused' | 'error';

export function recordIndexFacesLatency(milliseconds: number, outcome: IndexFacesOutcome): void {
  metricMeter
    .createHistogram(METRICS.indexFacesLatency, 'int', 'ms', 'Latency of IndexFaces calls, in milliseconds')
    .record(Math.max(0, Math.round(milliseconds)), { outcome });
}

export function countMatchedFaces(faces: number): void {
  if (faces > 0)
    metricMeter.createCounter(METRICS.facesMatched, 'faces', 'Old faces matched by a face of the new model').add(faces);
}

export function countDlqMessages(items: ReviewItem[]): void {
  const byReason = new Map<ReasonCode, number>();
  for (const item of items) byReason.set(item.reason, (byReason.get(item.reason) ?? 0) + 1);
  if (byReason.size === 0) return;
  const counter = metricMeter.createCounter(
    METRICS.dlqMessages,
    'messages',
    'Messages sent to the review DLQ, by reason code',
  );
  for (const [reason, count] of byReason) counter.add(count, { reason });
}
