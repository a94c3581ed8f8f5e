/** Rates from the service's counters, sampled over a run. */
import type { Sample } from './stack';

/**
 * The moment the success count reached `count`, interpolated between the samples around it; a
 * run's start and end are ramps, so rates are read between two such moments.
 */
export function timeOfCount(samples: Sample[], count: number): number {
  const after = samples.findIndex((sample) => sample.succeeded >= count);
  if (after < 0) throw new Error(`the samples never reach ${count} successes`);
  const later = samples[after] as Sample;
  const earlier = samples[after - 1];
  if (!earlier || later.succeeded === earlier.succeeded) return later.atMs;
  return (
    earlier.atMs + ((count - earlier.succeeded) / (later.succeeded - earlier.succeeded)) * (later.atMs - earlier.atMs)
  );
}

/** Successes a second between the moments `from` and `to` of the last sample's successes were reached. */
export function steadyRate(samples: Sample[], from = 0.1, to = 0.9): number {
  const total = samples.at(-1)?.succeeded ?? 0;
  if (total === 0) return 0;
  const seconds = (timeOfCount(samples, to * total) - timeOfCount(samples, from * total)) / 1000;
  return seconds > 0 ? ((to - from) * total) / seconds : 0;
}

/** Successes a second from the first success to the last. */
export function wholeRate(samples: Sample[]): number {
  const total = samples.at(-1)?.succeeded ?? 0;
  if (total < 2) return 0;
  const seconds = (timeOfCount(samples, total) - timeOfCount(samples, 1)) / 1000;
  return seconds > 0 ? (total - 1) / seconds : 0;
}

/**
 * Successes in each `intervalMs` from the first sample on, the last interval cut short: where in a
 * run the rate fell, when the whole run's falls short.
 */
export function successesPerInterval(samples: Sample[], intervalMs: number): number[] {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last) return [];
  const counts: number[] = [];
  let before = first.succeeded;
  for (let endMs = first.atMs + intervalMs; ; endMs += intervalMs) {
    const within = samples.filter(({ atMs }) => atMs <= endMs).at(-1) as Sample;
    counts.push(within.succeeded - before);
    before = within.succeeded;
    if (endMs >= last.atMs) return counts;
  }
}

export function throttledShare(samples: Sample[]): number {
  const last = samples.at(-1);
  return last && last.calls > 0 ? last.throttled / last.calls : 0;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
