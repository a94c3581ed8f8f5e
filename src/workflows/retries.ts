/**
 * How the workflows retry their control activities (S3, SQS, DynamoDB, the report): backing off to
 * one try a minute, and giving up after about half an hour of failures, so an error no retry
 * clears (a corrupt object, a permission taken away) ends a batch or a run instead of holding it
 * forever. Throttling of IndexFaces is retried without end, in reindexBatch.
 */
import type { RetryPolicy } from '@temporalio/common';

export const CONTROL_RETRY: RetryPolicy = {
  initialInterval: '1 second',
  maximumInterval: '1 minute',
  maximumAttempts: 30,
};
