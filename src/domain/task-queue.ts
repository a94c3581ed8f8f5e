/** The task queue a worker and the CLI use unless REINDEX_TASK_QUEUE names another. */
export const DEFAULT_TASK_QUEUE = 'reindex';
