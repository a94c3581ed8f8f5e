import { GallerySampler, iouBin, MAX_TIMELINE_BARS, RowAggregator, sortedByCount } from '../../src/domain/report';

const at = (seconds: number) => new Date(Date.UTC(2026, 10, 28, 5, 0, 0) + seconds * 1000).toISOString();

test.each([
  [0, 0],
  [0.049, 0],
  [0.05, 1],
  [0.15, 3],
  [0.5, 10],
  [0.999, 19],
  [1, 19],
])('IoU %d falls in bin %d of 0.05', (value, bin) => {
  expect(iouBin(value)).toBe(bin);
});

test('the histogram counts every row with an IoU; rows without one count as rows only', () => {
  const rows = new RowAggregator();
  for (const IoU of [0.52, 0.55, 0.81, 0.86, 0.86, 1]) rows.add({ IoU, MigratedAt: at(0) });
  rows.add({ IoU: undefined, MigratedAt: at(0) });

  const histogram = rows.histogram(0.5);
  expect(rows.rows).toBe(7);
  expect(histogram.threshold).toBe(0.5);
  expect(histogram.counts).toHaveLength(20);
  expect(histogram.counts.reduce((sum, count) => sum + count, 0)).toBe(6);
  expect(histogram.counts[10]).toBe(1);
  expect(histogram.counts[11]).toBe(1);
  expect(histogram.counts[16]).toBe(1);
  expect(histogram.counts[17]).toBe(2);
  expect(histogram.counts[19]).toBe(1);
});

test('a run of seconds gets a bar a second, with the rate a minute', () => {
  const rows = new RowAggregator();
  for (let i = 0; i < 30; i += 1) rows.add({ IoU: 0.9, MigratedAt: at(i < 10 ? 0 : 2) });

  expect(rows.throughput()).toEqual({
    start: at(0),
    barSeconds: 1,
    counts: [10, 0, 20],
    peakPerMinute: 1200,
    meanPerMinute: 600,
  });
});

test('a run of two hours gets five-minute bars that start on the clock', () => {
  const rows = new RowAggregator();
  for (let second = 90; second < 2 * 3600 + 90; second += 10) rows.add({ IoU: 0.9, MigratedAt: at(second) });

  const throughput = rows.throughput();
  expect(throughput.barSeconds).toBe(300);
  expect(throughput.start).toBe(at(0));
  expect(throughput.counts).toHaveLength(25);
  expect(throughput.counts.reduce((sum, count) => sum + count, 0)).toBe(720);
  expect(throughput.meanPerMinute).toBeCloseTo(6, 1);
});

test('a month of rows keeps few buckets and loses no row', () => {
  const rows = new RowAggregator();
  const month = 30 * 86_400;
  for (let second = 0; second < month; second += 40) rows.add({ IoU: 0.9, MigratedAt: at(second) });

  const throughput = rows.throughput();
  expect(throughput.counts.length).toBeLessThanOrEqual(MAX_TIMELINE_BARS);
  expect(throughput.barSeconds).toBe(86_400);
  expect(throughput.counts.reduce((sum, count) => sum + count, 0)).toBe(month / 40);
});

test('rows without a time leave the timeline empty', () => {
  const rows = new RowAggregator();
  rows.add({ IoU: 0.7, MigratedAt: 'yesterday' });

  expect(rows.throughput()).toMatchObject({ start: undefined, counts: [] });
});

test('the gallery shares its places among the reasons, round-robin, in the order given', () => {
  const sampler = new GallerySampler<string>(5);
  for (let i = 0; i < 10; i += 1) sampler.offer('INVALID_RECORD', `invalid-${i}`);
  sampler.offer('IOU_BELOW_THRESHOLD', 'iou-0');
  sampler.offer('IOU_BELOW_THRESHOLD', 'iou-1');
  sampler.offer('IOU_BELOW_THRESHOLD', 'iou-2');
  sampler.offer('NO_FACE_DETECTED', 'none-0');

  expect(sampler.pick(['INVALID_RECORD', 'IOU_BELOW_THRESHOLD', 'NO_FACE_DETECTED'])).toEqual({
    items: ['invalid-0', 'invalid-1', 'iou-0', 'iou-1', 'none-0'],
    leftOut: 9,
  });
});

test('a gallery limit of nothing shows nothing and counts everything as left out', () => {
  const sampler = new GallerySampler<string>(0);
  sampler.offer('IMAGE_NOT_FOUND', 'a');

  expect(sampler.pick([])).toEqual({ items: [], leftOut: 1 });
});

test('counts are ordered most frequent first, ties by name', () => {
  expect(
    Object.entries(
      sortedByCount(
        new Map([
          ['B', 1],
          ['C', 3],
          ['A', 1],
        ]),
      ),
    ),
  ).toEqual([
    ['C', 3],
    ['A', 1],
    ['B', 1],
  ]);
});
