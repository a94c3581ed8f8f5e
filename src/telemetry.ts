/**
 * The worker's telemetry, installed once in its Temporal Runtime before it connects: Prometheus
 * metrics (Temporal's own and the project's, src/metrics.ts) on REINDEX_METRICS_ADDRESS, and
 * with REINDEX_LOG_FORMAT=json one JSON object a line on stdout for every log of the SDK, the
 * workflows and the activities. Errors in a log's metadata keep their name, message and stack
 * (and a failure's type) alone: nothing else an error carries is written.
 */
import { ApplicationFailure, type LogMetadata, SdkComponent } from '@temporalio/common';
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

/**
 * What the SDK core logs when it has dropped a run's workflow task: the run's task then times out
 * on every attempt for as long as this worker lives, and the run never moves again. SDK 1.24.0
 * does so when its workflow cache is full (the worker keeps 10 runs at a 128 MiB heap) and it takes
 * up again a run it evicted while several of that run's tasks waited. A new worker replays the run
 * from its history and goes on.
 */
export const RUN_DROPPED_BY_CORE = ['Extra buffered run should not have produced an activation'];

/** The exit code of a worker that left because the SDK core dropped a run's workflow task. */
export const EXIT_RUN_DROPPED = 75;

/** `logger`, and `onRunDropped` told of each core log that says a run's workflow task was dropped. */
export function watchingCore(logger: Logger, onRunDropped: (message: string) => void): Logger {
  // Every entry goes through `log`, whichever method wrote it: the watch is in one place.
  const watched: Logger = {
    log: (level, message, meta?: LogMetadata) => {
      logger.log(level, message, meta);
      if (meta?.sdkComponent === SdkComponent.core && RUN_DROPPED_BY_CORE.some((known) => message.includes(known)))
        onRunDropped(message);
    },
    trace: (message, meta) => {
      watched.log('TRACE', message, meta);
    },
    debug: (message, meta) => {
      watched.log('DEBUG', message, meta);
    },
    info: (message, meta) => {
      watched.log('INFO', message, meta);
    },
    warn: (message, meta) => {
      watched.log('WARN', message, meta);
    },
    error: (message, meta) => {
      watched.log('ERROR', message, meta);
    },
  };
  return watched;
}

/**
 * The Runtime's options for these settings: what `Runtime.install` takes before any connection.
 * The SDK core's own logs come through the worker's logger, which tells `onRunDropped` of a run
 * the core dropped.
 */
export function runtimeOptions(telemetry: TelemetryConfig, onRunDropped: (message: string) => void): RuntimeOptions {
  const metrics = telemetry.metricsAddress
    ? {
        prometheus: {
          bindAddress: telemetry.metricsAddress,
          histogramBucketOverrides: { [METRICS.indexFacesLatency]: INDEX_FACES_LATENCY_BUCKETS_MS },
        },
      }
    : undefined;
  return {
    logger: watchingCore(telemetry.logFormat === 'json' ? jsonLogger() : new DefaultLogger('INFO'), onRunDropped),
    // Forwarded, not written to the console by the core itself, so that the watch sees them.
    telemetryOptions: { metrics, logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
  };
}
