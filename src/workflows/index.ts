/** The workflows the worker registers: the run, its batch children, and a drain of the results queue on its own. */
export { drainResultsQueue } from './drain-results';
export { reindexBatch } from './reindex-batch';
export { reindexCollection } from './reindex-collection';
