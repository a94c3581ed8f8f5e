/** The workflows the worker registers: the run and its batch children. */
export { reindexBatch } from './reindex-batch';
export { reindexCollection } from './reindex-collection';
