/**
 * `reindex report <run>`: a finished run seen whole. The summary the run wrote to S3, its result
 * rows (streamed from DynamoDB, never held) and its review DLQ messages (read, not consumed) become
 * figures (`--json`) and one self-contained HTML page (`--html`) whose gallery shows each DLQ image
 * with its old box and the boxes the new model found.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, NoSuchBucket, NoSuchKey } from '@aws-sdk/client-s3';
import type { Command } from 'commander';
import { type AwsClients, httpStatusOf } from '../aws/clients';
import type { Config } from '../domain/config';
import { imageFormat, MIME_TYPES } from '../domain/image-checks';
import { type ImageLocation, imageLocation, isWithin } from '../domain/image-locations';
import type { BoundingBox } from '../domain/matching';
import type { NewFaceSeen } from '../domain/outcomes';
import { GallerySampler, type ReportFigures, RowAggregator, type RowFigures, sortedByCount } from '../domain/report';
import { type GalleryEntry, renderReportHtml } from '../report/html';
import { reportKey } from '../shared';
import {
  COLLECTION_OPTION,
  forEachConcurrently,
  numberIn,
  runIdOf,
  progressBar,
  UsageError,
  withAws,
  withProgress,
} from './common';
import { writeLocalFile } from './files';
import { forEachReviewMessage, type ReviewMessage } from './review-dlq';
import { forEachRunRowsPage } from './run-rows';
import { describeTotals, readRunSummary } from './runs';

const IMAGES_IN_FLIGHT = 8;
/** A larger image is shown as a placeholder: the page must stay a file a browser opens at once. */
const MAX_EMBEDDED_IMAGE_BYTES = 8 * 1024 * 1024;

interface ReportFlags {
  collection?: string;
  html?: string;
  images?: ImageLocation[];
  galleryLimit: number;
  iou?: number;
  json?: boolean;
}

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'its folder does not exist',
  ENOTDIR: 'a part of its path is not a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  EISDIR: 'it is a folder',
};

function fileProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  return FILE_ERRORS[code] ?? (error instanceof Error ? error.message : String(error));
}

/** Checked before the work, so a typo in the path does not cost a scan of the results table. */
async function assertWritable(file: string): Promise<void> {
  const target = path.resolve(file);
  const existing = await stat(target).catch(() => undefined);
  if (existing?.isDirectory()) throw new UsageError(`cannot write the report to ${file}: it is a folder`);
  try {
    await access(existing ? target : path.dirname(target), constants.W_OK);
  } catch (error) {
    throw new UsageError(`cannot write the report to ${file}: ${fileProblem(error)}`);
  }
}

/** Streams the run's rows page by page into the aggregator; the table may hold other runs too. */
async function aggregateRows(aws: AwsClients, config: Config, runId: string, expected: number): Promise<RowAggregator> {
  const rows = new RowAggregator();
  await withProgress(progressBar('reading result rows', expected), (progress) =>
    forEachRunRowsPage(aws, { table: config.resultsTable, runId, attributes: ['IoU', 'MigratedAt'] }, (page) => {
      for (const item of page.rows) rows.add(item as unknown as RowFigures);
      progress.advance(page.rows.length);
    }),
  );
  return rows;
}

const isBox = (box: unknown): box is BoundingBox =>
  typeof box === 'object' &&
  box !== null &&
  ['Width', 'Height', 'Left', 'Top'].every((side) => Number.isFinite((box as Record<string, unknown>)[side]));

/** A message's field as text, whatever a hand-made message put there. */
const textOf = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

const imageId = (bucket: string, key: string) => `${bucket}\u0000${key}`;

/** What the gallery shows of one message; the image is filled in once fetched. */
function galleryEntry({ item }: ReviewMessage): Omit<GalleryEntry, 'image'> {
  const newFaces: NewFaceSeen[] = Array.isArray(item.newFaces)
    ? item.newFaces.filter((face) => isBox(face?.BoundingBox) && Number.isFinite(face.IoU))
    : [];
  return {
    reason: String(item.reason),
    detail: textOf(item.detail) ?? '',
    bucket: textOf(item.Bucket),
    key: textOf(item.Key),
    externalImageId: textOf(item.ExternalImageId),
    faceId: textOf(item.face?.FaceId),
    userId: textOf(item.face?.UserId),
    oldBox: isBox(item.face?.BoundingBoxes) ? item.face.BoundingBoxes : undefined,
    newFaces,
  };
}

/** One image as a data: URI, or why it cannot be shown; never an error. */
async function fetchImage(
  aws: AwsClients,
  Bucket: string,
  Key: string,
): Promise<{ dataUri: string } | { missing: string }> {
  try {
    const object = await aws.s3.send(new GetObjectCommand({ Bucket, Key }));
    if ((object.ContentLength ?? 0) > MAX_EMBEDDED_IMAGE_BYTES) {
      await object.Body?.transformToWebStream().cancel();
      return { missing: `too large to embed (${((object.ContentLength ?? 0) / 1024 / 1024).toFixed(1)} MB)` };
    }
    const bytes = (await object.Body?.transformToByteArray()) ?? new Uint8Array();
    const format = imageFormat(bytes);
    if (!format) return { missing: 'the object is not a JPEG or PNG image' };
    return { dataUri: `data:${MIME_TYPES[format]};base64,${Buffer.from(bytes).toString('base64')}` };
  } catch (error) {
    if (error instanceof NoSuchKey || httpStatusOf(error) === 404)
      return { missing: 'the image is not in S3 (NoSuchKey)' };
    if (error instanceof NoSuchBucket) return { missing: `the bucket ${Bucket} does not exist` };
    if (httpStatusOf(error) === 403) return { missing: 'access to the image is denied to these credentials' };
    return { missing: `the image could not be read: ${error instanceof Error ? error.message : String(error)}` };
  }
}

const OUTSIDE_LOCATIONS = 'not read: it lies outside the image locations (REINDEX_IMAGE_LOCATIONS, or --images)';

/**
 * Fetches each image the entries name once, a few at a time, and points every entry at its image.
 * A DLQ message may name any object: only those in the image locations are read, so a message
 * cannot put into the page an object the operator may read but never meant to show.
 */
async function withImages(
  aws: AwsClients,
  entries: Omit<GalleryEntry, 'image'>[],
  locations: readonly ImageLocation[],
): Promise<{ gallery: GalleryEntry[]; images: string[] }> {
  const named = entries.flatMap((entry) =>
    entry.bucket && entry.key
      ? [[imageId(entry.bucket, entry.key), { Bucket: entry.bucket, Key: entry.key }] as const]
      : [],
  );
  const wanted = [...new Map(named.filter(([, { Bucket, Key }]) => isWithin(locations, Bucket, Key))).values()];
  const fetched = new Map<string, { dataUri: string } | { missing: string }>();
  await withProgress(progressBar('fetching gallery images', wanted.length), (progress) =>
    forEachConcurrently(wanted, IMAGES_IN_FLIGHT, async ({ Bucket, Key }) => {
      fetched.set(imageId(Bucket, Key), await fetchImage(aws, Bucket, Key));
      progress.advance();
    }),
  );
  const images: string[] = [];
  const indexOf = new Map<string, number>();
  const gallery = entries.map((entry): GalleryEntry => {
    if (!entry.bucket || !entry.key) return { ...entry, image: { missing: 'the record names no image' } };
    const id = imageId(entry.bucket, entry.key);
    const image = fetched.get(id) ?? { missing: OUTSIDE_LOCATIONS };
    if ('missing' in image) return { ...entry, image };
    let index = indexOf.get(id);
    if (index === undefined) {
      index = images.push(image.dataUri) - 1;
      indexOf.set(id, index);
    }
    return { ...entry, image: { index } };
  });
  return { gallery, images };
}

async function writeReport(file: string, html: string): Promise<void> {
  try {
    await writeLocalFile(file, html);
  } catch (error) {
    throw new UsageError(`cannot write the report to ${file}: ${fileProblem(error)}`);
  }
}

function describeFigures(figures: ReportFigures): string[] {
  const reasons = Object.entries(figures.dlq.byReason)
    .map(([reason, value]) => `${reason} ${value}`)
    .join(', ');
  const { throughput } = figures;
  return [
    `run ${figures.runId} ${figures.summary.status}`,
    ...describeTotals(figures.summary).map((line) => `  ${line}`),
    `  result rows ${figures.rows}; IoU threshold ${figures.iou.threshold ?? 'unknown'}`,
    `  faces a minute: peak ${throughput.peakPerMinute.toFixed(0)}, mean ${throughput.meanPerMinute.toFixed(0)}`,
    `  review DLQ now ${figures.dlq.total}${reasons ? ` (${reasons})` : ''}`,
  ];
}

/** report: a run's figures, and the page a person looks at. */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      "a finished run's figures, and with --html one self-contained page: totals, DLQ reasons, IoU histogram, throughput, review gallery",
    )
    .argument('<workflow-id>', 'the run')
    .option('--html <file>', 'write the report page to this file')
    .option(
      '--gallery-limit <n>',
      'DLQ images shown in the gallery at most',
      numberIn('--gallery-limit', 0, 1_000, true),
      50,
    )
    .option(
      '--images <s3-uri...>',
      'where gallery images may be read from, s3://bucket/prefix/ (default: REINDEX_IMAGE_LOCATIONS)',
      (uri: string, earlier: ImageLocation[] | undefined) => {
        const location = imageLocation(uri);
        if (!location) throw new UsageError(`--images takes S3 locations such as s3://bucket/prefix/, not ${uri}`);
        return [...(earlier ?? []), location];
      },
    )
    .option(
      '--iou <threshold>',
      "the run's IoU threshold, to mark on the histogram (default: the run's own)",
      numberIn('--iou', 0.01, 1, false),
    )
    .option(...COLLECTION_OPTION)
    .option('--json', 'print the figures as JSON: the last line of stdout is one object')
    .action(async (workflowId: string, flags: ReportFlags) => {
      const runId = runIdOf(workflowId, flags.collection);
      if (flags.html) await assertWritable(flags.html);
      await withAws(async ({ config, aws }) => {
        const summary = await readRunSummary(aws, config, runId);
        if (!summary)
          throw new UsageError(
            `run ${runId} has no summary at s3://${config.bucket}/${reportKey(runId, 'json')}: the run is unknown or has not finished`,
          );
        // The summary is a file in S3: only a number in IoU's range is taken from it.
        const threshold =
          flags.iou ??
          (typeof summary.iouThreshold === 'number' && summary.iouThreshold > 0 && summary.iouThreshold <= 1
            ? summary.iouThreshold
            : undefined);

        const rows = await aggregateRows(aws, config, runId, summary.resultsWritten);

        const reasons = new Map<string, number>();
        const sampler = new GallerySampler<ReviewMessage>(flags.galleryLimit);
        const inDlq = await forEachReviewMessage(aws.sqs, config.reviewDlqUrl, { runId }, (message) => {
          const reason = String(message.item.reason);
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          sampler.offer(reason, message);
        });
        const byReason = sortedByCount(reasons);
        const picked = sampler.pick(Object.keys(byReason));

        const figures: ReportFigures = {
          runId,
          summary,
          rows: rows.rows,
          iou: rows.histogram(threshold),
          throughput: rows.throughput(),
          dlq: { total: inDlq, byReason },
          gallery: { shown: picked.items.length, leftOut: picked.leftOut },
        };
        let written: { file: string; bytes: number } | undefined;
        if (flags.html) {
          const { gallery, images } = await withImages(
            aws,
            picked.items.map(galleryEntry),
            flags.images ?? config.imageLocations,
          );
          const html = renderReportHtml({ figures, gallery, images, generatedAt: new Date().toISOString() });
          await writeReport(flags.html, html);
          written = { file: flags.html, bytes: Buffer.byteLength(html) };
        }
        if (flags.json) {
          console.log(JSON.stringify({ ...figures, html: written?.file }));
          return;
        }
        for (const line of describeFigures(figures)) console.log(line);
        if (written) {
          const leftOut =
            figures.gallery.leftOut > 0
              ? `, ${figures.gallery.leftOut} left out (--gallery-limit ${flags.galleryLimit})`
              : '';
          console.log(
            `wrote ${written.file} (${(written.bytes / 1024).toFixed(0)} KB): gallery of ${figures.gallery.shown} DLQ messages${leftOut}`,
          );
        }
      });
    });
}
