import { createHash } from 'node:crypto';
import { ReasonCode } from '../../src/domain/reasons';
import type { ReportFigures } from '../../src/domain/report';
import { escapeHtml, type GalleryEntry, type ReportPage, renderReportHtml } from '../../src/report/html';
import type { RunSummary } from '../../src/shared';

const HOSTILE = `<img src=x onerror="alert('x')">&`;

const summary: RunSummary = {
  workflowId: 'run-1',
  status: 'completed',
  images: 1200,
  faces: 1500,
  matched: 1400,
  unmatchedOld: 60,
  unmatchedNewDeleted: 30,
  unmatchedNewKept: 0,
  notProcessed: 0,
  dlq: 100,
  dlqByReason: { [ReasonCode.IouBelowThreshold]: 60, [ReasonCode.ImageNotFound]: 40 },
  invalidRecords: 0,
  resultsWritten: 1400,
  usersCreated: 0,
  facesAssociated: 0,
  orphansDeleted: 0,
  targetCollectionId: HOSTILE,
  sourceCollectionId: undefined,
  faceModelVersion: '7.0',
  iouThreshold: 0.5,
  durationMs: 90_000,
  report: undefined,
};

function figures(changes: Partial<ReportFigures> = {}): ReportFigures {
  return {
    runId: HOSTILE,
    summary,
    rows: 1400,
    iou: { binWidth: 0.05, counts: Array.from({ length: 20 }, (_, i) => (i >= 10 ? 140 : 0)), threshold: 0.5 },
    throughput: {
      start: '2026-11-28T05:00:00.000Z',
      barSeconds: 60,
      counts: [700, 700],
      peakPerMinute: 700,
      meanPerMinute: 700,
    },
    dlq: { total: 100, byReason: { [HOSTILE]: 60, [ReasonCode.ImageNotFound]: 40 } },
    gallery: { shown: 3, leftOut: 97 },
    ...changes,
  };
}

const entry = (changes: Partial<GalleryEntry>): GalleryEntry => ({
  reason: ReasonCode.IouBelowThreshold,
  detail: HOSTILE,
  bucket: 'photos',
  key: `people/${HOSTILE}.jpg`,
  externalImageId: HOSTILE,
  faceId: HOSTILE,
  userId: HOSTILE,
  oldBox: { Left: 0.1, Top: 0.1, Width: 0.2, Height: 0.2 },
  newFaces: [{ BoundingBox: { Left: 0.15, Top: 0.1, Width: 0.2, Height: 0.2 }, IoU: 0.6 }],
  image: { index: 0 },
  ...changes,
});

const IMAGE = 'data:image/png;base64,iVBORw0KGgo=';

function page(changes: Partial<ReportPage> = {}): string {
  return renderReportHtml({
    figures: figures(),
    gallery: [entry({}), entry({ faceId: 'second' }), entry({ image: { missing: HOSTILE } })],
    images: [IMAGE],
    generatedAt: '2026-11-28T06:00:00.000Z',
    ...changes,
  });
}

test('escapeHtml leaves no markup', () => {
  expect(escapeHtml(HOSTILE)).toBe('&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;');
  expect(escapeHtml(undefined)).toBe('');
});

test('no string from the data reaches the page as markup', () => {
  const html = page();

  expect(html).not.toContain('<img src=x');
  expect(html).not.toContain("alert('x')");
  expect(html.split(escapeHtml(HOSTILE)).length - 1).toBeGreaterThan(10);
});

test('a threshold that is no number, as an edited summary in S3 may hold, reaches the page as text', () => {
  const refresh = '<meta http-equiv="refresh" content="0;url=https://example.com">';
  const html = page({
    figures: figures({
      iou: { binWidth: 0.05, counts: Array.from({ length: 20 }, () => 1), threshold: refresh as unknown as number },
    }),
  });

  expect(html).not.toContain('<meta http-equiv="refresh"');
  expect(html).toContain(escapeHtml(refresh));
});

test('the page may load nothing and run only its own script', () => {
  const html = page();
  const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
  const hash = createHash('sha256').update(script).digest('base64');

  expect(html).toContain(
    `content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-${hash}'; form-action 'none'; base-uri 'none'"`,
  );
  expect(html).not.toMatch(/(src|href)="https?:/);
});

test('an image shown by several entries is in the file once', () => {
  const html = page();

  expect(html.split(IMAGE).length - 1).toBe(1);
  expect(html.match(/<img data-image="0"/g)).toHaveLength(2);
  expect(html).toContain('<strong>Image not shown</strong>');
});

test('the totals, the threshold and what the gallery left out are on the page', () => {
  const html = page();

  expect(html).toContain(
    '<div class="card total" data-total="images"><div class="label">Images</div><div class="value">1,200</div>',
  );
  expect(html).toContain('threshold 0.5</text>');
  expect(html).toContain('<b class="left-out" data-left-out="97">97 more</b>');
  expect(html.match(/class="iou-bin"/g)).toHaveLength(20);
});

test('a run with no rows and an empty DLQ says so instead of drawing empty charts', () => {
  const html = page({
    figures: figures({
      rows: 0,
      iou: { binWidth: 0.05, counts: new Array<number>(20).fill(0), threshold: undefined },
      throughput: { start: undefined, barSeconds: 60, counts: [], peakPerMinute: 0, meanPerMinute: 0 },
      dlq: { total: 0, byReason: {} },
      gallery: { shown: 0, leftOut: 0 },
    }),
    gallery: [],
    images: [],
  });

  expect(html).toContain('No face of this run was migrated.');
  expect(html).toContain('The review DLQ holds nothing of this run.');
  expect(html).toContain('Nothing to review');
  expect(html).toContain('threshold unknown (pass --iou to mark it)');
});

test('a gallery limit of nothing says how many it left out rather than that nothing needs review', () => {
  const html = page({ figures: figures({ gallery: { shown: 0, leftOut: 100 } }), gallery: [] });

  expect(html).not.toContain('Nothing to review');
  expect(html).toContain('0 DLQ messages shown');
  expect(html).toContain('data-left-out="100">100 more</b>');
});
