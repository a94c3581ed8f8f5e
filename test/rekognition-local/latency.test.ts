import { Traffic, trafficSettingsSchema } from '../../infra/rekognition-local/traffic';

function quantile(sorted: number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))] ?? Number.NaN;
}

test('latency follows the configured median and 99th percentile, with a long tail', () => {
  const traffic = new Traffic();
  traffic.configure(trafficSettingsSchema.parse({ latency: { IndexFaces: { medianMs: 150, p99Ms: 600 } } }));

  const delays = Array.from({ length: 50_000 }, () => traffic.delayFor('IndexFaces')).sort((a, b) => a - b);

  expect(quantile(delays, 0.5)).toBeGreaterThan(140);
  expect(quantile(delays, 0.5)).toBeLessThan(160);
  expect(quantile(delays, 0.99)).toBeGreaterThan(540);
  expect(quantile(delays, 0.99)).toBeLessThan(660);
  expect(Math.min(...delays)).toBeGreaterThan(0);
});

test('an operation without its own latency takes the "*" default, and none means no delay', () => {
  const traffic = new Traffic();
  expect(traffic.delayFor('ListFaces')).toBe(0);
  traffic.configure(trafficSettingsSchema.parse({ latency: { '*': { medianMs: 20, p99Ms: 20 } } }));
  expect(traffic.delayFor('ListFaces')).toBe(20);
});

test('a token bucket admits its burst at once, then the rate', () => {
  let now = 0;
  const traffic = new Traffic(() => now);
  traffic.configure(trafficSettingsSchema.parse({ quotas: { IndexFaces: { tps: 10, burst: 3 } } }));
  const admitted = () => {
    try {
      traffic.admit('IndexFaces');
      return true;
    } catch {
      return false;
    }
  };

  expect([admitted(), admitted(), admitted(), admitted()]).toEqual([true, true, true, false]);
  now += 100;
  expect([admitted(), admitted()]).toEqual([true, false]);
  now += 1000;
  expect(Array.from({ length: 5 }, admitted).filter(Boolean)).toHaveLength(3);
  expect(traffic.report().IndexFaces).toMatchObject({ calls: 11, throttled: 4 });
});
