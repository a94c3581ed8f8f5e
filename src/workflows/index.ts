/**
 * The workflows the worker registers:
 * a plan of many collections, the run of one, its batch children, and a drain of the results queue on its own.
 */
export { drainResultsQueue } from './drain-results';
export { reindexBatch } from './reindex-batch';
export { reindexCollection } from './reindex-collection';
export { reindexPlan } from './reindex-plan';
