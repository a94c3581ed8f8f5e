/**
 * Names shared by workflows, worker, client and the local stack: task queues and the custom
 * search attributes that make runs findable in the Temporal UI. Safe to import from workflow code.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TASK_QUEUES = {
  /** Workflows and the control activities (S3, SQS, DynamoDB). */
  control: 'reindex',
  /** IndexFaces only; the Temporal server enforces the account's rate limit on this queue. */
  indexFaces: 'reindex-index-faces',
} as const;

export const SEARCH_ATTRIBUTES = {
  phase: defineSearchAttributeKey('ReindexPhase', SearchAttributeType.KEYWORD),
  processed: defineSearchAttributeKey('ReindexProcessed', SearchAttributeType.INT),
  failed: defineSearchAttributeKey('ReindexFailed', SearchAttributeType.INT),
  paused: defineSearchAttributeKey('ReindexPaused', SearchAttributeType.BOOL),
} as const;
