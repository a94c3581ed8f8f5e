import { chooseIndexFacesRate, documentedIndexFacesQuota } from '../../src/domain/rates';

test('REINDEX_TPS is the rate, whatever the quota', () => {
  expect(chooseIndexFacesRate({ configured: 7, region: 'ap-south-1', quota: { tps: 100 } })).toEqual({
    tps: 7,
    reason: 'REINDEX_TPS',
  });
});

test("without REINDEX_TPS a worker takes half the account's quota, leaving the rest to the application", () => {
  const rate = chooseIndexFacesRate({ configured: undefined, region: 'eu-central-1', quota: { tps: 5 } });

  expect(rate.tps).toBe(2.5);
  expect(rate.reason).toBe(
    "half the account's IndexFaces quota of 5/s in eu-central-1 (Service Quotas), leaving the rest to your application; REINDEX_TPS sets another rate",
  );
});

test('a quota Service Quotas will not give is taken as the documented one of the region, and the worker says so and how to set it', () => {
  const rate = chooseIndexFacesRate({
    configured: undefined,
    region: 'ap-southeast-2',
    quota: { unreadable: 'AccessDeniedException: not authorized' },
  });

  expect(rate.tps).toBe(2.5);
  expect(rate.reason).toMatch(
    /^a default: half of 5\/s, Rekognition's documented IndexFaces quota in ap-southeast-2, since the account's own could not be read from Service Quotas \(AccessDeniedException: not authorized\); set REINDEX_TPS/,
  );
});

test('the documented quota is 50 a second in three regions and 5 in the others', () => {
  expect(['us-east-1', 'us-west-2', 'eu-west-1'].map(documentedIndexFacesQuota)).toEqual([50, 50, 50]);
  expect(['eu-central-1', 'ap-northeast-1', 'us-east-2'].map(documentedIndexFacesQuota)).toEqual([5, 5, 5]);
});
