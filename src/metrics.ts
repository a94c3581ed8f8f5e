/**
 * The names of the project's own metrics and the buckets of its histogram: one source for the
 * activities that record them (activities/metrics.ts), the worker's telemetry that serves them, and
 * the tests that read them.
 */
export const METRICS = {
  /** Counter: old faces that a new face matched, as reindexImage decided them. */
  facesMatched: 'reindex_faces_matched',
  /** Counter: messages sent to the review DLQ, labelled `reason` with their reason code. */
  dlqMessages: 'reindex_dlq_messages',
  /**
   * Histogram, milliseconds: one IndexFaces call as the worker makes it (the AWS SDK's own retries
   * of a throttled call inside it), labelled `outcome` (IndexFacesOutcome, in activities/metrics.ts).
   */
  indexFacesLatency: 'reindex_index_faces_latency',
} as const;

/** Buckets of the IndexFaces latency histogram, in milliseconds: the SDK's default is too coarse. */
export const INDEX_FACES_LATENCY_BUCKETS_MS = [25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2500, 5000, 10_000, 30_000];
