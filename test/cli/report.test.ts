/**
 * `reindex report` after a real run on the local stack: photos of people whose faces the new model
 * finds, old boxes that match, miss, or point at nothing, a missing image and a broken record. The
 * page is opened in headless Chromium (Debian's package, driven by playwright-core) and checked as
 * a person reads it: the totals are the run's, the reason bars are the DLQ's, the histogram holds
 * every matched face, and the gallery shows each DLQ face on its image with its boxes.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { type Browser, chromium } from 'playwright-core';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { forEachReviewMessage } from '../../src/cli/review-dlq';
import type { ReviewItem } from '../../src/domain/outcomes';
import type { ReportFigures } from '../../src/domain/report';
import { ReasonCode } from '../../src/domain/reasons';
import type { RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { createRunResources, type RunResources } from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';

type Box = [number, number, number, number];

const SAMPLES = path.resolve(__dirname, '../../node_modules/@vladmandic/face-api/demo');
/** Where the faces are in face-api's sample photos, as its SSD detector finds them. */
const FACES: Record<string, Box[]> = {
  sample1: [
    [0.769, 0.156, 0.106, 0.188],
    [0.437, 0.329, 0.097, 0.178],
    [0.216, 0.278, 0.093, 0.186],
  ],
  sample2: [
    [0.754, 0.112, 0.101, 0.178],
    [0.188, 0.093, 0.08, 0.189],
    [0.469, 0.16, 0.079, 0.172],
  ],
  sample3: [
    [0.56, 0.159, 0.115, 0.222],
    [0.305, 0.244, 0.104, 0.201],
    [0.789, 0.216, 0.088, 0.207],
  ],
  sample4: [
    [0.346, 0.036, 0.097, 0.178],
    [0.134, 0.127, 0.084, 0.17],
    [0.515, 0.124, 0.088, 0.157],
    [0.665, 0.1, 0.076, 0.167],
  ],
  sample5: [
    [0.196, 0.615, 0.09, 0.215],
    [0.733, 0.279, 0.086, 0.193],
    [0.311, 0.297, 0.087, 0.178],
    [0.579, 0.141, 0.083, 0.169],
    [0.41, 0.078, 0.081, 0.152],
  ],
  sample6: [
    [0.775, 0.171, 0.11, 0.192],
    [0.13, 0.304, 0.109, 0.189],
    [0.615, 0.198, 0.098, 0.182],
    [0.355, 0.209, 0.083, 0.199],
  ],
};

/** A box moved right by `share` of its width: IoU about (1 - share) / (1 + share) with where it was. */
const shifted = ([left, top, width, height]: Box, share: number): Box => [left + share * width, top, width, height];

interface Photo {
  sample: string;
  /** The faces the new model finds: declared in the object's metadata. */
  found: Box[];
  /** The old faces of the record. */
  old: Box[];
}

const PHOTOS: Photo[] = [
  {
    sample: 'sample1',
    found: FACES.sample1 ?? [],
    old: (FACES.sample1 ?? []).map((box, i) => shifted(box, [0, 0.05, 0.1][i] ?? 0)),
  },
  // The third old box sits beside its face: IOU_BELOW_THRESHOLD, and the new face nobody had is deleted.
  {
    sample: 'sample2',
    found: FACES.sample2 ?? [],
    old: (FACES.sample2 ?? []).map((box, i) => shifted(box, [0.15, 0, 0.8][i] ?? 0)),
  },
  {
    sample: 'sample3',
    found: FACES.sample3 ?? [],
    old: (FACES.sample3 ?? []).map((box, i) => shifted(box, [0.05, 0.1, 0][i] ?? 0)),
  },
  // An old face where the new model sees none: IOU_BELOW_THRESHOLD against all four.
  { sample: 'sample4', found: FACES.sample4 ?? [], old: [...(FACES.sample4 ?? []), [0.45, 0.62, 0.1, 0.18]] },
  { sample: 'sample5', found: FACES.sample5 ?? [], old: (FACES.sample5 ?? []).map((box, i) => shifted(box, 0.04 * i)) },
  // The new model finds nobody: NO_FACE_DETECTED for both old faces.
  { sample: 'sample6', found: [], old: (FACES.sample6 ?? []).slice(0, 2) },
];
/** The little of the DOM the checks read in the page; the project compiles without the DOM library. */
interface Shown {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  complete?: boolean;
  naturalWidth?: number;
  querySelector(selector: string): Shown | null;
  querySelectorAll(selector: string): ArrayLike<Shown>;
}
declare const document: { images: ArrayLike<Shown> };
declare const window: { injected?: number };

/** A key a browser would run as markup if the page did not escape it. */
const HOSTILE_KEY = `<img src=x onerror="window.injected=1">.jpg`;

let resources: RunResources;
let worker: RunningWorker;
let browser: Browser;
let dir: string;
let summary: RunSummary;
let recordsUri: string;

const reindex = (...args: string[]) => runCli(args, worker.cliEnv);
const uuid = () => randomUUID();

async function writePhotosAndRecords(): Promise<string> {
  const { config, aws } = resources;
  const prefix = `tests/report-${uuid()}`;
  const lines: string[] = [];
  for (const photo of PHOTOS) {
    const Key = `${prefix}/${photo.sample}.jpg`;
    const declared: DeclaredFace[] = photo.found.map((box, i) => ({ person: `${photo.sample}-${i}`, box }));
    await aws.s3.send(
      new PutObjectCommand({
        Bucket: config.bucket,
        Key,
        Body: await readFile(path.join(SAMPLES, `${photo.sample}.jpg`)),
        ContentType: 'image/jpeg',
        Metadata: { 'rekognition-faces': JSON.stringify(declared) },
      }),
    );
    const Faces = photo.old.map(([Left, Top, Width, Height]) => ({
      FaceId: uuid(),
      ImageId: uuid(),
      BoundingBoxes: { Left, Top, Width, Height },
    }));
    lines.push(JSON.stringify({ Bucket: config.bucket, Key, ExternalImageId: photo.sample, Faces }));
  }
  const lost = { FaceId: uuid(), ImageId: uuid(), BoundingBoxes: { Left: 0.4, Top: 0.3, Width: 0.2, Height: 0.3 } };
  lines.push(JSON.stringify({ Bucket: config.bucket, Key: `${prefix}/${HOSTILE_KEY}`, Faces: [lost] }));
  lines.push(JSON.stringify({ Bucket: config.bucket, Key: `${prefix}/nobody.png`, Faces: [] }));
  const Key = `${prefix}/records.jsonl`;
  await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key, Body: lines.join('\n') }));
  return `s3://${config.bucket}/${Key}`;
}

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  dir = await mkdtemp(path.join(tmpdir(), 'reindex-report-'));
  recordsUri = await writePhotosAndRecords();
  const target = resources.ownCollection(`report-${uuid()}`);
  const started = await reindex(
    'start',
    '--manifest',
    recordsUri,
    '--target',
    target,
    '--quality-filter',
    'NONE',
    '--wait',
    '--json',
  );
  expect(started.stderr).toBe('');
  summary = JSON.parse(lastLine(started.stdout)) as RunSummary;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // This machine's network is closed: Chromium's own background traffic would only fail.
    args: [
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await resources?.release();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the run is the one the report is built for', () => {
  expect(summary).toMatchObject({
    status: 'completed',
    images: 7,
    faces: 22,
    matched: 17,
    unmatchedOld: 4,
    unmatchedNewDeleted: 1,
    dlq: 6,
    dlqByReason: {
      [ReasonCode.IouBelowThreshold]: 2,
      [ReasonCode.NoFaceDetected]: 2,
      [ReasonCode.ImageNotFound]: 1,
      [ReasonCode.InvalidRecord]: 1,
    },
  });
});

test('the page in a browser shows the run: totals, DLQ reasons, IoU, throughput and a gallery of every DLQ face', async () => {
  const html = path.join(dir, 'report.html');
  const made = await reindex('report', summary.workflowId, '--html', html);
  expect(made.stderr).toBe('');
  expect(made.code).toBe(0);
  expect(lastLine(made.stdout)).toMatch(
    new RegExp(`^wrote ${html.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+ KB\\): gallery of 6 DLQ messages$`),
  );

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning')
      problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('dialog', (dialog) => problems.push(`dialog: ${dialog.message()}`));
  page.on('request', (request) => requests.push(request.url()));
  const url = `file://${html}`;
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => Array.from(document.images).every((image) => image.complete));

  // Totals: what the cards say is what the run's summary says.
  const totals = await page.$$eval('[data-total]', (cards: Shown[]) =>
    Object.fromEntries(
      cards.map((card) => [card.dataset.total ?? '', card.querySelector('.value')?.textContent ?? '']),
    ),
  );
  expect(totals).toEqual(
    Object.fromEntries(
      Object.entries({
        images: summary.images,
        faces: summary.faces,
        matched: summary.matched,
        unmatched: summary.unmatchedOld,
        'new-deleted': summary.unmatchedNewDeleted,
        'new-kept': summary.unmatchedNewKept,
        dlq: summary.dlq,
      }).map(([key, value]) => [key, value.toLocaleString('en-US')]),
    ),
  );

  // The run's messages in the DLQ, read after the report: it left them there.
  const review: ReviewItem[] = [];
  await forEachReviewMessage(
    resources.aws.sqs,
    resources.config.reviewDlqUrl,
    { runId: summary.workflowId },
    ({ item }) => {
      review.push(item);
    },
  );
  expect(review).toHaveLength(6);
  const dlqByReason: Record<string, number> = {};
  for (const item of review) dlqByReason[item.reason] = (dlqByReason[item.reason] ?? 0) + 1;

  // DLQ reasons: each bar's label and number, as shown.
  const bars = await page.$$eval('.reason-bar', (groups: Shown[]) =>
    groups.map((group) => [
      group.querySelector('.bar-label')?.textContent ?? '',
      group.querySelector('.bar-value')?.textContent ?? '',
    ]),
  );
  expect(Object.fromEntries(bars.map(([label, value]) => [label, Number(value)]))).toEqual(dlqByReason);
  expect(await page.locator('.reason-bar rect').count()).toBe(Object.keys(dlqByReason).length);

  // IoU histogram: the numbers over the bars add up to the matched faces; the threshold is marked.
  const binLabels = await page.$$eval('.iou-bin .bin-count', (labels: Shown[]) =>
    labels.map((label) => Number(label.textContent)),
  );
  expect(binLabels.reduce((sum, value) => sum + value, 0)).toBe(summary.matched);
  const bins = await page.$$eval('.iou-bin', (groups: Shown[]) =>
    groups.map((bin) => ({ from: Number(bin.dataset.from), count: Number(bin.dataset.count) })),
  );
  expect(bins).toHaveLength(20);
  expect(await page.locator('.threshold text').textContent()).toBe('threshold 0.5');
  // Every matched face has IoU at or above the threshold: no bar left of the line holds one.
  expect(bins.filter((bin) => bin.from < 0.5).reduce((sum, bin) => sum + bin.count, 0)).toBe(0);

  // Throughput: the bars hold every migrated face.
  const timeline = await page.$$eval('.time-bar', (timeBars: Shown[]) =>
    timeBars.map((bar) => Number(bar.dataset.count)),
  );
  expect(timeline.length).toBeGreaterThan(0);
  expect(timeline.reduce((sum, value) => sum + value, 0)).toBe(summary.matched);

  // Gallery: one entry per DLQ message, each image loaded, each with its old box and the new boxes.
  const entries = await page.$$eval('.entry', (articles: Shown[]) =>
    articles.map((article) => {
      const image = article.querySelector('img');
      return {
        reason: article.querySelector('.chip')?.textContent ?? '',
        faceId: article.querySelector('.facts code')?.textContent ?? null,
        loaded: image ? image.complete === true && (image.naturalWidth ?? 0) > 0 : null,
        oldBoxes: article.querySelectorAll('rect.box.old').length,
        newBoxes: article.querySelectorAll('rect.box.new').length,
        iouTags: Array.from(article.querySelectorAll('.tag.new')).map((tag) => tag.textContent),
        placeholder: article.querySelector('.shot.missing .why')?.textContent ?? null,
        where: article.querySelector('.where')?.textContent ?? '',
      };
    }),
  );
  const sortKey = (entry: { reason: string; faceId: string | null }) => `${entry.reason} ${entry.faceId ?? ''}`;
  const shown = review.map((item) => {
    // A refused record keeps no image: only its position, reason and face ids.
    if (item.reason === ReasonCode.InvalidRecord) {
      return {
        reason: item.reason,
        faceId: null,
        loaded: null,
        oldBoxes: 0,
        newBoxes: 0,
        iouTags: [],
        placeholder: 'the record names no image',
        where: 'no image named',
      };
    }
    const hasImage = item.reason !== ReasonCode.ImageNotFound;
    return {
      reason: item.reason,
      faceId: item.face?.FaceId ?? null,
      loaded: hasImage ? true : null,
      oldBoxes: hasImage && item.face ? 1 : 0,
      newBoxes: hasImage ? (item.newFaces?.length ?? 0) : 0,
      iouTags: hasImage ? (item.newFaces ?? []).map((face) => `IoU ${face.IoU.toFixed(2)}`) : [],
      placeholder: hasImage ? null : 'the image is not in S3 (NoSuchKey)',
      where: `s3://${item.Bucket}/${item.Key}`,
    };
  });
  expect([...entries].sort((a, b) => sortKey(a).localeCompare(sortKey(b)))).toEqual(
    [...shown].sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
  );
  // As designed: the two IOU_BELOW_THRESHOLD images show 3 and 4 new faces; NO_FACE_DETECTED shows none.
  expect(entries.map((entry) => `${entry.reason}:${entry.oldBoxes}+${entry.newBoxes}`).sort()).toEqual([
    'IMAGE_NOT_FOUND:0+0',
    'INVALID_RECORD:0+0',
    'IOU_BELOW_THRESHOLD:1+3',
    'IOU_BELOW_THRESHOLD:1+4',
    'NO_FACE_DETECTED:1+0',
    'NO_FACE_DETECTED:1+0',
  ]);
  // The hostile key is shown as text and never ran.
  expect(entries.some((entry) => entry.where.endsWith(HOSTILE_KEY))).toBe(true);
  expect(await page.evaluate(() => window.injected)).toBeUndefined();

  expect(problems).toEqual([]);
  expect(requests.filter((request) => request !== url && !request.startsWith('data:'))).toEqual([]);

  const screenshot = path.join(dir, 'report.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  const png = await readFile(screenshot);
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(png.readUInt32BE(16)).toBe(1280);
  expect(png.readUInt32BE(20)).toBeGreaterThan(1800);
  expect((await stat(screenshot)).size).toBeGreaterThan(200 * 1024);
  await page.close();
}, 60_000);

test('--json prints the figures; --gallery-limit caps the gallery and says how many were left out', async () => {
  const html = path.join(dir, 'small.html');
  const outcome = await reindex('report', summary.workflowId, '--html', html, '--gallery-limit', '2', '--json');

  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  const figures = JSON.parse(lastLine(outcome.stdout)) as ReportFigures & { html: string };
  expect(figures).toMatchObject({
    runId: summary.workflowId,
    rows: summary.matched,
    gallery: { shown: 2, leftOut: 4 },
    html,
  });
  // The summary in S3 is written before the run knows where it put it.
  expect(figures.summary).toEqual({ ...summary, report: undefined });
  expect(figures.iou.counts.reduce((sum, value) => sum + value, 0)).toBe(summary.matched);
  expect(figures.iou.threshold).toBe(0.5);
  expect(figures.dlq).toEqual({ total: 6, byReason: summary.dlqByReason });
  const page = await readFile(html, 'utf8');
  expect(page.match(/<article class="entry/g)).toHaveLength(2);
  expect(page).toContain('data-left-out="4"');
});

test.each([
  [
    'an unknown run',
    () => ['report', `no-such-run-${uuid()}`, '--html', path.join(dir, 'x.html')],
    /^reindex: run no-such-run-[0-9a-f-]+ has no summary at s3:\/\/[^ ]+\/runs\/no-such-run-[0-9a-f-]+\/report\/summary\.json: the run is unknown or has not finished\n$/,
  ],
  [
    'a folder that does not exist',
    () => ['report', summary.workflowId, '--html', path.join(dir, 'no-such-folder', 'r.html')],
    /^reindex: cannot write the report to .*no-such-folder\/r\.html: its folder does not exist\n$/,
  ],
  [
    'a path that is a folder',
    () => ['report', summary.workflowId, '--html', dir],
    /^reindex: cannot write the report to .*: it is a folder\n$/,
  ],
  [
    'a gallery limit that is no number',
    () => ['report', summary.workflowId, '--gallery-limit', 'many'],
    /^reindex: error: option '--gallery-limit <n>' argument 'many' is invalid\. --gallery-limit must be a whole number from 0 to 1000\n$/,
  ],
])('%s is one line on stderr and exit code 2', async (_, args, message) => {
  await mkdir(dir, { recursive: true });
  const outcome = await reindex(...args());

  expect(outcome.stderr).toMatch(message);
  expect(outcome.code).toBe(2);
});

test('a DLQ message naming an object outside the image locations does not bring it into the page', async () => {
  const { config, aws } = resources;
  // A photo the operator may read, but that no run of this report is about.
  const secret = syntheticPng([{ person: 'someone-else', box: [0.3, 0.3, 0.4, 0.4] }]);
  const secretKey = `private/${uuid()}.png`;
  await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key: secretKey, Body: secret }));
  const forged: ReviewItem = {
    reason: ReasonCode.IouBelowThreshold,
    detail: 'forged by whoever may send to the review DLQ',
    runId: summary.workflowId,
    Bucket: config.bucket,
    Key: secretKey,
    ExternalImageId: undefined,
    face: { FaceId: uuid(), BoundingBoxes: { Left: 0.1, Top: 0.1, Width: 0.2, Height: 0.2 } },
  };
  await aws.sqs.send(new SendMessageCommand({ QueueUrl: config.reviewDlqUrl, MessageBody: JSON.stringify(forged) }));
  // The folder of the records file holds the run's photos.
  const imagesOfTheRun = recordsUri.replace(/records\.jsonl$/, '');
  const html = path.join(dir, 'locations.html');

  const made = await reindex(
    'report',
    summary.workflowId,
    '--html',
    html,
    '--images',
    imagesOfTheRun,
    '--gallery-limit',
    '100',
  );

  expect(made).toMatchObject({ code: 0, stderr: '' });
  const page = await readFile(html, 'utf8');
  expect(page).not.toContain(secret.toString('base64').slice(0, 200));
  expect(page).toContain('not read: it lies outside the image locations (REINDEX_IMAGE_LOCATIONS, or --images)');
  // The run's own images, inside the location, are still there.
  expect(page.match(/data:image\/jpeg;base64,/g)?.length).toBeGreaterThan(0);
});
