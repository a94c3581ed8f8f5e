/**
 * The figures of a run's report, built up as result rows and review messages stream past: the IoU
 * of every matched face in bins, faces migrated over time, and the review DLQ by reason. Memory
 * stays bounded whatever the run's size: twenty bins, and a timeline that coarsens as it grows.
 */
import type { RunSummary } from '../shared';

export const IOU_BIN_WIDTH = 0.05;
const IOU_BINS = Math.round(1 / IOU_BIN_WIDTH);

/** Timeline buckets kept while reading: one a second, then a minute, an hour, a day as a run grows. */
const BUCKET_SECONDS = [1, 60, 3_600, 86_400];
const MAX_BUCKETS = 50_000;
/** Bar widths a person reads at a glance; each is a multiple of every bucket size not above it. */
const BAR_SECONDS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 604_800,
];
export const MAX_TIMELINE_BARS = 60;

export interface IouHistogram {
  binWidth: number;
  /** Matched faces per bin: counts[i] holds IoU from i * binWidth up to the next bin; 1.0 is in the last. */
  counts: number[];
  threshold: number | undefined;
}

export interface Throughput {
  /** Start of the first bar, ISO 8601; absent when no row carried a time. */
  start: string | undefined;
  barSeconds: number;
  /** Faces migrated in each bar, from `start` on. */
  counts: number[];
  /** Faces a minute in the busiest bar and over the whole time from the first face to the last. */
  peakPerMinute: number;
  meanPerMinute: number;
}

/** What the report says about a run. */
export interface ReportFigures {
  runId: string;
  summary: RunSummary;
  /** The result rows of the run in the results table. */
  rows: number;
  iou: IouHistogram;
  throughput: Throughput;
  /** The run's messages in the review DLQ now: an operator may have redriven or removed some since the run. */
  dlq: { total: number; byReason: Record<string, number> };
  gallery: { shown: number; leftOut: number };
}

/** Where a matched face's IoU falls; a hair of tolerance keeps 0.15 in the bin that starts at 0.15. */
export function iouBin(value: number): number {
  return Math.min(IOU_BINS - 1, Math.max(0, Math.floor(value / IOU_BIN_WIDTH + 1e-9)));
}

/** A row as the report needs it. */
export interface RowFigures {
  IoU: number | undefined;
  MigratedAt: string | undefined;
}

/** Counts rows into the IoU histogram and the timeline. */
export class RowAggregator {
  private readonly iouCounts = new Array<number>(IOU_BINS).fill(0);
  private rowCount = 0;
  private bucketSeconds = BUCKET_SECONDS[0] ?? 1;
  private buckets = new Map<number, number>();
  private firstMs = Infinity;
  private lastMs = -Infinity;

  add(row: RowFigures): void {
    this.rowCount += 1;
    if (typeof row.IoU === 'number' && Number.isFinite(row.IoU)) {
      const bin = iouBin(row.IoU);
      this.iouCounts[bin] = (this.iouCounts[bin] ?? 0) + 1;
    }
    const ms = row.MigratedAt === undefined ? NaN : Date.parse(row.MigratedAt);
    if (!Number.isFinite(ms)) return;
    this.firstMs = Math.min(this.firstMs, ms);
    this.lastMs = Math.max(this.lastMs, ms);
    const bucket = Math.floor(ms / 1000 / this.bucketSeconds);
    this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + 1);
    if (this.buckets.size > MAX_BUCKETS) this.coarsen();
  }

  get rows(): number {
    return this.rowCount;
  }

  histogram(threshold: number | undefined): IouHistogram {
    return { binWidth: IOU_BIN_WIDTH, counts: [...this.iouCounts], threshold };
  }

  throughput(): Throughput {
    if (this.buckets.size === 0)
      return { start: undefined, barSeconds: 60, counts: [], peakPerMinute: 0, meanPerMinute: 0 };
    const firstSecond = Math.floor(this.firstMs / 1000);
    const lastSecond = Math.floor(this.lastMs / 1000);
    const barSeconds =
      BAR_SECONDS.find(
        (width) =>
          width % this.bucketSeconds === 0 &&
          Math.floor(lastSecond / width) - Math.floor(firstSecond / width) < MAX_TIMELINE_BARS,
      ) ??
      BAR_SECONDS[BAR_SECONDS.length - 1] ??
      86_400;
    const firstBar = Math.floor(firstSecond / barSeconds);
    const counts = new Array<number>(Math.floor(lastSecond / barSeconds) - firstBar + 1).fill(0);
    for (const [bucket, count] of this.buckets) {
      const bar = Math.floor((bucket * this.bucketSeconds) / barSeconds) - firstBar;
      counts[bar] = (counts[bar] ?? 0) + count;
    }
    const total = counts.reduce((sum, count) => sum + count, 0);
    // A run that finished within a second still took that second.
    const minutes = Math.max(1, lastSecond - firstSecond + 1) / 60;
    return {
      start: new Date(firstBar * barSeconds * 1000).toISOString(),
      barSeconds,
      counts,
      peakPerMinute: (Math.max(...counts) * 60) / barSeconds,
      meanPerMinute: total / minutes,
    };
  }

  /** Merges the buckets into the next size up, so a run of weeks still fits. */
  private coarsen(): void {
    const next = BUCKET_SECONDS.find((size) => size > this.bucketSeconds);
    if (next === undefined) return;
    const merged = new Map<number, number>();
    for (const [bucket, count] of this.buckets) {
      const key = Math.floor((bucket * this.bucketSeconds) / next);
      merged.set(key, (merged.get(key) ?? 0) + count);
    }
    this.bucketSeconds = next;
    this.buckets = merged;
    if (this.buckets.size > MAX_BUCKETS) this.coarsen();
  }
}

/** Counts by name, most frequent first, ties by name. */
export function sortedByCount(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts].sort(([a, countA], [b, countB]) => countB - countA || a.localeCompare(b)));
}

/**
 * Picks the gallery from review messages as they stream past: up to `limit`, shared round-robin
 * among the reasons, so thousands of refused records do not crowd out the few faces that need
 * eyes. Holds at most `limit` items per reason.
 */
export class GallerySampler<T> {
  private readonly byReason = new Map<string, T[]>();
  private offered = 0;

  constructor(private readonly limit: number) {}

  offer(reason: string, item: T): void {
    this.offered += 1;
    const kept = this.byReason.get(reason) ?? [];
    if (kept.length < this.limit) kept.push(item);
    this.byReason.set(reason, kept);
  }

  /** The chosen items, grouped by reason in `reasonOrder` (reasons it does not name come last). */
  pick(reasonOrder: string[]): { items: T[]; leftOut: number } {
    const reasons = [...this.byReason.keys()].sort((a, b) => rank(reasonOrder, a) - rank(reasonOrder, b));
    const taken = new Map(reasons.map((reason) => [reason, 0]));
    let total = 0;
    for (let round = 0; total < this.limit; round += 1) {
      let tookAny = false;
      for (const reason of reasons) {
        if (total >= this.limit) break;
        if ((this.byReason.get(reason)?.length ?? 0) > round) {
          taken.set(reason, round + 1);
          total += 1;
          tookAny = true;
        }
      }
      if (!tookAny) break;
    }
    const items = reasons.flatMap((reason) => (this.byReason.get(reason) ?? []).slice(0, taken.get(reason)));
    return { items, leftOut: this.offered - items.length };
  }
}

function rank(order: string[], reason: string): number {
  const index = order.indexOf(reason);
  return index === -1 ? order.length : index;
}
