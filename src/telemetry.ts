/**
 * The worker's telemetry, installed once in its Temporal Runtime before it connects: Prometheus
 * metrics (Temporal's own and the project's, src/metrics.ts) on REINDEX_METRICS_ADDRESS, and
 * with REINDEX_LOG_FORMAT=json one JSON object a line on stdout for every log of the SDK, the
 * workflows and the activities. Errors in a log's metadata keep their name, message and stack
 * (and a failure's type) alone: nothing else an error carries is written.
 */
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, type LogEntry, type Logger, type LogLevel, type RuntimeOptions } from '@temporalio/worker';
import { INDEX_FACES_LATENCY_BUCKETS_MS, METRICS } from './metrics';
import type { TelemetryConfig } from './domain/config';

/** How deep nested metadata is written before it is cut short. */
const MAX_DEPTH = 6;

/**
 * A metadata value as JSON can hold it: errors as name, message, stack (and an ApplicationFailure's
 * type, our reason code), bigints as strings.
 */
function plain(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const error: Record<string, unknown> = { name: value.name, message: value.message, stack: value.stack };
    if (value instanceof ApplicationFailure && value.type) error.type = value.type;
    if (value.cause !== undefined && depth < MAX_DEPTH) error.cause = plain(value.cause, depth + 1);
    return error;
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((item) => plain(item, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item, depth + 1)]));
}

/** One log entry as one line of JSON: timestamp (ISO 8601), level, message and meta. */
export function jsonLogLine({ timestampNanos, level, message, meta }: LogEntry): string {
  const timestamp = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
  return JSON.stringify({ timestamp, level, message, meta: plain(meta ?? {}) });
}

/** A logger writing one JSON object a line to `write` (stdout by default). */
export function jsonLogger(
  level: LogLevel = 'INFO',
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  return new DefaultLogger(level, (entry) => write(`${jsonLogLine(entry)}\n`));
}

/** The Runtime's options for these settings: what `Runtime.install` takes before any connection. */
export function runtimeOptions(telemetry: TelemetryConfig): RuntimeOptions {
  const metrics = telemetry.metricsAddress
    ? {
        prometheus: {
          bindAddress: telemetry.metricsAddress,
          histogramBucketOverrides: { [METRICS.indexFacesLatency]: INDEX_FACES_LATENCY_BUCKETS_MS },
        },
      }
    : undefined;
  if (telemetry.logFormat === 'text') return { telemetryOptions: { metrics } };
  return {
    logger: jsonLogger(),
    // The SDK core's own logs, which otherwise go to the console as text, come through the same logger.
    telemetryOptions: { metrics, logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
  };
}
