/**
 * What happens to a call before the operation runs: per-operation TPS quotas (token buckets),
 * latency drawn from a log-normal distribution, injected throttling and 5xx faults, and the counters that show
 * benchmarks what the service saw. All off by default.
 */
import { z } from 'zod';
import { RekognitionError } from './errors';

const quota = z.object({
  tps: z.number().positive(),
  /** How many calls may arrive at once after a quiet spell; defaults to one second's worth. */
  burst: z.number().positive().optional(),
  error: z
    .enum(['ProvisionedThroughputExceededException', 'ThrottlingException'])
    .default('ProvisionedThroughputExceededException'),
});

const latency = z
  .object({ medianMs: z.number().nonnegative(), p99Ms: z.number().nonnegative() })
  .refine((value) => value.p99Ms >= value.medianMs, { message: 'p99Ms must be at least medianMs' });

export const trafficSettingsSchema = z.object({
  /** Per operation name, e.g. { "IndexFaces": { "tps": 50 } }. */
  quotas: z.record(z.string(), quota).default({}),
  /** Per operation name, or "*" for every operation without its own. */
  latency: z.record(z.string(), latency).default({}),
  /** Share of calls, 0 to 1, answered with ThrottlingException whatever the quota: a busy region. */
  throttleRate: z.number().min(0).max(1).default(0),
  /** Share of calls, 0 to 1, answered with InternalServerError before doing anything. */
  faultRate: z.number().min(0).max(1).default(0),
});

export type TrafficSettings = z.output<typeof trafficSettingsSchema>;

interface Bucket {
  tokens: number;
  refilledAt: number;
}

interface Counter {
  calls: number;
  succeeded: number;
  throttled: number;
  errors: number;
  firstSuccessAt?: number;
  lastSuccessAt?: number;
  /** Successes per whole second, for the recent rate. */
  recent: Map<number, number>;
}

const RECENT_SECONDS = 10;
const P99_STANDARD_SCORE = 2.3263;

function standardNormal(): number {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

export class Traffic {
  private settings: TrafficSettings = trafficSettingsSchema.parse({});
  private buckets = new Map<string, Bucket>();
  private counters = new Map<string, Counter>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  configure(settings: TrafficSettings): void {
    this.settings = settings;
    this.buckets.clear();
  }

  current(): TrafficSettings {
    return this.settings;
  }

  private counter(operation: string): Counter {
    let counter = this.counters.get(operation);
    if (!counter) {
      counter = { calls: 0, succeeded: 0, throttled: 0, errors: 0, recent: new Map() };
      this.counters.set(operation, counter);
    }
    return counter;
  }

  /** Counts the call; throws the throttling or fault error it gets instead of an answer. */
  admit(operation: string): void {
    const counter = this.counter(operation);
    counter.calls += 1;
    const limit = this.settings.quotas[operation];
    if (limit) {
      const now = this.now();
      const capacity = limit.burst ?? Math.max(1, limit.tps);
      const bucket = this.buckets.get(operation) ?? { tokens: capacity, refilledAt: now };
      bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.refilledAt) / 1000) * limit.tps);
      bucket.refilledAt = now;
      this.buckets.set(operation, bucket);
      if (bucket.tokens < 1) {
        counter.throttled += 1;
        throw new RekognitionError(
          limit.error,
          limit.error === 'ThrottlingException' ? 'Rate exceeded' : 'Provisioned rate exceeded',
        );
      }
      bucket.tokens -= 1;
    }
    if (this.settings.throttleRate > 0 && Math.random() < this.settings.throttleRate) {
      counter.throttled += 1;
      throw new RekognitionError('ThrottlingException', 'Rate exceeded');
    }
    if (this.settings.faultRate > 0 && Math.random() < this.settings.faultRate) {
      counter.errors += 1;
      throw new RekognitionError('InternalServerError', 'Injected fault: internal server error');
    }
  }

  /** Milliseconds this call should take, drawn from the configured distribution. */
  delayFor(operation: string): number {
    const shape = this.settings.latency[operation] ?? this.settings.latency['*'];
    if (!shape || shape.medianMs === 0) return 0;
    const sigma = shape.p99Ms > shape.medianMs ? Math.log(shape.p99Ms / shape.medianMs) / P99_STANDARD_SCORE : 0;
    return shape.medianMs * Math.exp(sigma * standardNormal());
  }

  succeeded(operation: string): void {
    const counter = this.counter(operation);
    const now = this.now();
    counter.succeeded += 1;
    counter.firstSuccessAt ??= now;
    counter.lastSuccessAt = now;
    const second = Math.floor(now / 1000);
    counter.recent.set(second, (counter.recent.get(second) ?? 0) + 1);
    for (const key of counter.recent.keys()) if (key <= second - RECENT_SECONDS) counter.recent.delete(key);
  }

  failed(operation: string): void {
    this.counter(operation).errors += 1;
  }

  report(): Record<string, Record<string, number>> {
    const now = this.now();
    const currentSecond = Math.floor(now / 1000);
    return Object.fromEntries(
      [...this.counters].map(([operation, counter]) => {
        const spanSeconds = ((counter.lastSuccessAt ?? 0) - (counter.firstSuccessAt ?? 0)) / 1000;
        // The current second is still filling, so the recent rate counts the whole seconds before it.
        let recentSuccesses = 0;
        for (const [second, count] of counter.recent) {
          if (second < currentSecond && second >= currentSecond - RECENT_SECONDS) recentSuccesses += count;
        }
        return [
          operation,
          {
            calls: counter.calls,
            succeeded: counter.succeeded,
            throttled: counter.throttled,
            errors: counter.errors,
            averagePerSecond: spanSeconds > 0 ? (counter.succeeded - 1) / spanSeconds : 0,
            recentPerSecond: recentSuccesses / RECENT_SECONDS,
          },
        ];
      }),
    );
  }

  resetCounters(): void {
    this.counters.clear();
  }
}
