/**
 * `reindex preview`: a dry run before spending IndexFaces quota. DetectFaces (the newest model on
 * AWS, the service's current one locally) on a sample of the records file's images, each record's
 * old boxes paired with the detected ones as a run pairs them, and per IoU threshold how many old
 * faces would match, which would go to the review DLQ and why, and how many new faces nobody had.
 * It reads the records file and the images; it writes nothing anywhere.
 */
import { randomBytes } from 'node:crypto';
import { pipeline, type Readable, Transform } from 'node:stream';
import { AccessDeniedException, DetectFacesCommand } from '@aws-sdk/client-rekognition';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { AwsClients } from '../aws/clients';
import { checkedRecords } from '../records/pipeline';
import { readRecords, type RecordEntry } from '../records/reader';
import { permanentReason } from '../aws/rekognition';
import {
  addImage,
  emptyForecast,
  extrapolate,
  recommendThreshold,
  type ThresholdCounts,
  type ThresholdForecast,
  thresholdForecasts,
} from '../domain/forecast';
import { count, percent } from '../domain/format';
import type { BoundingBox } from '../domain/matching';
import type { ReasonCode, ReasonCounts } from '../domain/reasons';
import type { ImageRecord } from '../domain/records';
import { reservoir, seededRandom } from '../domain/sampling';
import {
  forEachConcurrently,
  numberIn,
  parseS3Uri,
  progressBar,
  recordsFileOf,
  UsageError,
  withAws,
  withProgress,
  withRecordsFileOption,
} from './common';
import { openSizedInput } from './files';

const DEFAULT_THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7];
/** Failed images named per reason; the rest are counted. */
const FAILURES_LISTED = 20;
/** A threshold is recommended when it matches within this share of the best threshold tried. */
const RECOMMENDATION_TOLERANCE = 0.01;

export interface PreviewOptions {
  manifest: { Bucket: string; Key: string };
  /** Images to sample; undefined for every image of the file. */
  sample: number | undefined;
  seed: string;
  thresholds: number[];
  concurrency: number;
}

export interface FailedImages {
  reason: ReasonCode;
  count: number;
  /** At most FAILURES_LISTED of them, as s3:// URIs. */
  images: string[];
}

export interface PreviewReport {
  manifest: string;
  file: {
    records: number;
    validRecords: number;
    /** Old faces of the valid records. */
    oldFaces: number;
    refusedByReason: ReasonCounts;
    /** Why the file could not be read to its end; the forecast covers the records before. */
    truncated: string | undefined;
  };
  sample: {
    images: number;
    all: boolean;
    seed: string | undefined;
    answered: number;
    failed: number;
    oldFaces: number;
    newFaces: number;
  };
  thresholds: ThresholdForecast[];
  wholeFile: { scale: number; failedImages: number; thresholds: ThresholdCounts[] };
  failed: FailedImages[];
  recommendedThreshold: number | undefined;
}

/** Parses `0.3,0.5,0.7` into distinct thresholds, ascending. */
export function parseThresholds(value: string): number[] {
  const thresholds = value.split(',').map((part) => Number(part.trim()));
  const valid = thresholds.every((threshold) => Number.isFinite(threshold) && threshold >= 0.01 && threshold <= 1);
  if (!valid || value.trim() === '') {
    throw new InvalidArgumentError('--thresholds must be numbers from 0.01 to 1 separated by commas, like 0.3,0.5,0.7');
  }
  return [...new Set(thresholds)].sort((a, b) => a - b);
}

/** Why DetectFaces refused an image, as the review DLQ would say it when a run's IndexFaces does the same. */
type Detection = { newBoxes: BoundingBox[] } | { reason: ReasonCode };

async function detectFaces(aws: AwsClients, record: ImageRecord): Promise<Detection> {
  try {
    const { FaceDetails = [] } = await aws.rekognition.send(
      new DetectFacesCommand({ Image: { S3Object: { Bucket: record.Bucket, Name: record.Key } } }),
    );
    return {
      newBoxes: FaceDetails.flatMap(({ BoundingBox: box }) =>
        box ? [{ Width: box.Width ?? 0, Height: box.Height ?? 0, Left: box.Left ?? 0, Top: box.Top ?? 0 }] : [],
      ),
    };
  } catch (error) {
    if (error instanceof AccessDeniedException)
      throw new UsageError(`these credentials may not call Rekognition DetectFaces: ${error.message}`);
    const reason = permanentReason(error);
    if (reason === undefined) throw error;
    return { reason };
  }
}

interface FileTally {
  records: number;
  validRecords: number;
  oldFaces: number;
  refusedByReason: ReasonCounts;
  truncated: string | undefined;
  bytesRead: number;
}

/**
 * The entries before the file breaks off, the break kept as `tally.truncated`: the forecast covers
 * the records before it. A file that breaks before its first record is bad input.
 */
async function* entriesBeforeBreak(entries: AsyncIterable<RecordEntry>, tally: FileTally): AsyncGenerator<RecordEntry> {
  for await (const entry of entries) {
    if ('malformed' in entry && entry.fatal) {
      if (tally.records === 0) throw new UsageError(entry.malformed);
      tally.truncated = entry.malformed;
      return;
    }
    yield entry;
  }
}

/** The valid records of the file, one at a time, with the file's tally kept as it is read. */
async function* validRecords(body: Readable, tally: FileTally): AsyncGenerator<ImageRecord> {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      tally.bytesRead += chunk.length;
      done(null, chunk);
    },
  });
  // A failure to read the body reaches the reader through the counter, which it destroys.
  pipeline(body, counter, () => undefined);
  const entries = entriesBeforeBreak(readRecords(counter), tally);
  for await (const outcome of checkedRecords(entries, { refusedByReason: tally.refusedByReason })) {
    tally.records += 1;
    if (outcome.kind !== 'accepted') continue;
    tally.validRecords += 1;
    tally.oldFaces += outcome.record.Faces.length;
    yield outcome.record;
  }
}

export async function preview(aws: AwsClients, options: PreviewOptions): Promise<PreviewReport> {
  const manifest = `s3://${options.manifest.Bucket}/${options.manifest.Key}`;
  const { body, size } = await openSizedInput(aws.s3, manifest, 'the records file');
  const tally: FileTally = {
    records: 0,
    validRecords: 0,
    oldFaces: 0,
    refusedByReason: {},
    truncated: undefined,
    bytesRead: 0,
  };
  const forecast = emptyForecast(options.thresholds);
  const failures = new Map<ReasonCode, FailedImages>();
  let sampled = 0;

  const detect = async (record: ImageRecord) => {
    const detection = await detectFaces(aws, record);
    sampled += 1;
    if ('newBoxes' in detection) {
      addImage(forecast, { oldBoxes: record.Faces.map((face) => face.BoundingBoxes), newBoxes: detection.newBoxes });
      return;
    }
    const failed = failures.get(detection.reason) ?? { reason: detection.reason, count: 0, images: [] };
    failed.count += 1;
    if (failed.images.length < FAILURES_LISTED) failed.images.push(`s3://${record.Bucket}/${record.Key}`);
    failures.set(detection.reason, failed);
  };

  if (options.sample === undefined) {
    // Every image: detection pulls records from the stream as it goes, so memory stays flat.
    const format = 'detecting faces [{bar}] {percentage}% of the file | {images} images | ETA {eta_formatted}';
    await withProgress(progressBar('detecting faces', size, format), async (bar) => {
      let reported = 0;
      await forEachConcurrently(validRecords(body, tally), options.concurrency, async (record) => {
        await detect(record);
        bar.advance(tally.bytesRead - reported, { images: sampled });
        reported = tally.bytesRead;
      });
    });
  } else {
    const sample = reservoir<ImageRecord>(options.sample, seededRandom(options.seed));
    await withProgress(
      progressBar('reading records', size, 'reading records [{bar}] {percentage}% | {records} records'),
      async (bar) => {
        let reported = 0;
        for await (const record of validRecords(body, tally)) {
          sample.offer(record);
          bar.advance(tally.bytesRead - reported, { records: tally.records });
          reported = tally.bytesRead;
        }
      },
    );
    const chosen = sample.items();
    await withProgress(progressBar('detecting faces', chosen.length), (bar) =>
      forEachConcurrently(chosen, options.concurrency, async (record) => {
        await detect(record);
        bar.advance();
      }),
    );
  }

  const forecasts = thresholdForecasts(forecast, sampled, tally.validRecords);
  const scale = sampled > 0 ? tally.validRecords / sampled : 0;
  const failed = [...failures.values()].sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  const failedCount = failed.reduce((sum, failure) => sum + failure.count, 0);
  return {
    manifest,
    file: {
      records: tally.records,
      validRecords: tally.validRecords,
      oldFaces: tally.oldFaces,
      refusedByReason: tally.refusedByReason,
      truncated: tally.truncated,
    },
    sample: {
      images: sampled,
      all: sampled === tally.validRecords,
      seed: options.sample === undefined ? undefined : options.seed,
      answered: forecast.images,
      failed: failedCount,
      oldFaces: forecast.oldFaces,
      newFaces: forecast.newFaces,
    },
    thresholds: forecasts,
    wholeFile: {
      scale,
      failedImages: Math.round(failedCount * scale),
      thresholds: forecasts.map((counts) => extrapolate(counts, scale)),
    },
    failed,
    recommendedThreshold: recommendThreshold(forecasts, RECOMMENDATION_TOLERANCE),
  };
}

/** Columns padded to their widest cell: the first left-aligned, the rest right-aligned. */
function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows.map((row) =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join('   '),
  );
}

export function describePreview(report: PreviewReport): string[] {
  const { file, sample } = report;
  const refused = Object.entries(file.refusedByReason).map(([reason, n]) => `${reason} ${count(n)}`);
  const lines = [
    `${report.manifest}: ${count(file.records)} records, ${count(file.validRecords)} valid with ${count(file.oldFaces)} old faces` +
      (refused.length > 0 ? `; refused ${refused.join(', ')}` : ''),
  ];
  if (file.truncated) lines.push(`the file breaks off, so this covers the records before the break: ${file.truncated}`);
  const which = sample.all
    ? `all ${count(sample.images)} images`
    : `a sample of ${count(sample.images)} images (--seed ${sample.seed} draws it again)`;
  lines.push(
    `DetectFaces on ${which}: ${count(sample.answered)} answered with ${count(sample.newFaces)} faces, ${count(sample.failed)} failed`,
  );
  if (sample.answered === 0) return [...lines, ...describeFailures(report)];

  const oldFaces = sample.oldFaces;
  const interval = sample.all ? '' : ' (± is the 95% interval of the share in the whole file)';
  lines.push('', `the ${count(oldFaces)} old faces of the ${count(sample.answered)} images answered${interval}:`);
  lines.push(
    ...table([
      ['IoU ≥', 'matched', 'NO_FACE_DETECTED', 'IOU_BELOW_THRESHOLD', 'new faces nobody had'],
      ...report.thresholds.map((row) => [
        row.threshold.toFixed(2),
        `${count(row.matched)} (${percent(row.matched, oldFaces)}${row.margin ? ` ±${(100 * row.margin).toFixed(1)}` : ''})`,
        `${count(row.noFaceDetected)} (${percent(row.noFaceDetected, oldFaces)})`,
        `${count(row.iouBelowThreshold)} (${percent(row.iouBelowThreshold, oldFaces)})`,
        count(row.newFacesNobodyHad),
      ]),
    ]),
  );
  if (!sample.all) {
    lines.push(
      '',
      `the whole file, extrapolated (each image sampled stands for ${report.wholeFile.scale.toFixed(2)}):`,
    );
    lines.push(
      ...table([
        ['IoU ≥', 'matched', 'NO_FACE_DETECTED', 'IOU_BELOW_THRESHOLD', 'new faces nobody had'],
        ...report.wholeFile.thresholds.map((row) => [
          row.threshold.toFixed(2),
          count(row.matched),
          count(row.noFaceDetected),
          count(row.iouBelowThreshold),
          count(row.newFacesNobodyHad),
        ]),
      ]),
    );
    if (report.wholeFile.failedImages > 0)
      lines.push(`and about ${count(report.wholeFile.failedImages)} images DetectFaces would refuse`);
  }
  lines.push(...describeFailures(report));
  if (report.recommendedThreshold !== undefined) {
    const best = Math.max(...report.thresholds.map((row) => row.matchedShare));
    lines.push(
      '',
      `recommended: --iou ${report.recommendedThreshold}, the strictest threshold tried that matches within ${100 * RECOMMENDATION_TOLERANCE} point of the most any did (${(100 * best).toFixed(1)}%)`,
    );
  }
  return lines;
}

function describeFailures(report: PreviewReport): string[] {
  if (report.failed.length === 0) return [];
  return [
    '',
    'images DetectFaces refused:',
    ...report.failed.flatMap((failure) => [
      `  ${failure.reason} ${count(failure.count)}`,
      ...failure.images.map((image) => `    ${image}`),
      ...(failure.count > failure.images.length
        ? [`    and ${count(failure.count - failure.images.length)} more`]
        : []),
    ]),
  ];
}

interface PreviewFlags {
  records?: string;
  manifest?: string;
  sample: number;
  all?: boolean;
  seed?: string;
  thresholds: number[];
  concurrency: number;
  json?: boolean;
}

export function registerPreviewCommand(program: Command): void {
  withRecordsFileOption(
    program
      .command('preview')
      .description(
        'forecast, writing nothing, what a run would match at each IoU threshold: DetectFaces on a sample of the images',
      ),
  )
    .addOption(
      new Option('--sample <n>', 'images to sample from the file')
        .argParser(numberIn('--sample', 1, 1_000_000, true))
        .default(200),
    )
    .addOption(new Option('--all', 'every image of the file instead of a sample').conflicts('sample'))
    .option('--seed <seed>', 'draws the same sample again (default: a random seed, printed)')
    .addOption(
      new Option('--thresholds <list>', 'the IoU thresholds to forecast, separated by commas')
        .argParser(parseThresholds)
        .default(DEFAULT_THRESHOLDS, DEFAULT_THRESHOLDS.join(',')),
    )
    .option('--concurrency <n>', 'DetectFaces calls in flight', numberIn('--concurrency', 1, 64, true), 4)
    .option('--json', 'print JSON: the last line of stdout is one object')
    .action(async (flags: PreviewFlags) => {
      const recordsFile = recordsFileOf(flags);
      if (recordsFile === undefined) throw new UsageError('say which records file: --records <s3-uri>');
      const manifest = parseS3Uri(recordsFile);
      await withAws(async ({ aws }) => {
        const report = await preview(aws, {
          manifest,
          sample: flags.all ? undefined : flags.sample,
          seed: flags.seed ?? randomBytes(4).toString('hex'),
          thresholds: flags.thresholds,
          concurrency: flags.concurrency,
        });
        if (flags.json) console.log(JSON.stringify(report));
        else for (const line of describePreview(report)) console.log(line);
      });
    });
}
