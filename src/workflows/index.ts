/**
 * The workflows the worker registers:
 * a plan of many collections, the run of one, its batch children, a drain of the results queue on its own,
 * and a sync of a migrated collection with its old one.
 */
export { drainResultsQueue } from './drain-results';
export { reindexBatch } from './reindex-batch';
export { reindexCollection } from './reindex-collection';
export { reindexPlan } from './reindex-plan';
export { syncCollection } from './sync-collection';
