/**
 * Jest runs suites in several worker processes at once: most of a suite's time is spent waiting
 * (on rates, timers and heartbeats), not on the CPU. Suites share the stack's moto and Temporal
 * server, each with queues, tables and task queues of its own; rekognition-local's settings
 * (quotas, latency, faults, face model) and counters are the process's, so each jest worker past
 * the first gets a rekognition-local of its own, and `useLocalStack` points the worker's suites at it.
 */

/** The global setup hands each worker's rekognition-local endpoint to the suites through this variable. */
export const REKOGNITION_ENDPOINTS_VARIABLE = 'REINDEX_TEST_REKOGNITION_ENDPOINTS';

/** The rekognition-local of this jest worker, when it is not the stack's. */
export function workerRekognitionEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const worker = Number(env.JEST_WORKER_ID ?? 1);
  const endpoints = JSON.parse(env[REKOGNITION_ENDPOINTS_VARIABLE] ?? '{}') as Record<string, string>;
  return endpoints[String(worker)];
}
