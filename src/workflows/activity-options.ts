/**
 * How the workflows call their activities, by kind of work, in one place. Control activities (S3,
 * SQS, DynamoDB, the report) back off to one try a minute and give up after about half an hour of
 * failures, so an error no retry clears (a corrupt object, a permission taken away) ends a batch
 * or a run instead of holding it forever. Throttling of IndexFaces is retried without end.
 */
import type { ActivityOptions, RetryPolicy } from '@temporalio/common';
import { REINDEX_IMAGE_ATTEMPT_MS, REINDEX_IMAGE_HEARTBEAT_TIMEOUT_MS } from '../shared';

export const CONTROL_RETRY: RetryPolicy = {
  initialInterval: '1 second',
  maximumInterval: '1 minute',
  maximumAttempts: 30,
};

/** A short call: describing or creating the target, reading a chunk, writing the report, settling duplicates. */
export const SHORT_CALL: ActivityOptions = { startToCloseTimeout: '2 minutes', retry: CONTROL_RETRY };

/**
 * Sending to SQS takes as long as SQS takes; the attempt heartbeats while it runs, so a dead
 * worker is noticed in 30 s and a slow SQS never times a live one out (a timed-out attempt would
 * send its messages again, and a loaded queue would get slower still).
 */
export const SENDING: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: CONTROL_RETRY,
};

/** Work that walks a whole file, queue, table or collection: long, with heartbeats to resume from. */
export const WALKING: ActivityOptions = {
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '1 minute',
  retry: CONTROL_RETRY,
};

/**
 * One image's IndexFaces: throttling and 5xx are retried, backing off to one try every two
 * minutes, so a run waits out a quota rather than losing images; reindexImage itself ends other
 * failures after the run's --retry-minutes, and permanent errors are non-retryable.
 */
export const INDEXING: ActivityOptions = {
  startToCloseTimeout: REINDEX_IMAGE_ATTEMPT_MS,
  heartbeatTimeout: REINDEX_IMAGE_HEARTBEAT_TIMEOUT_MS,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 minutes' },
};
