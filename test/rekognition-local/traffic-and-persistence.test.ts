import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import {
  CreateCollectionCommand,
  DescribeCollectionCommand,
  IndexFacesCommand,
  InternalServerError,
  ListCollectionsCommand,
  ListFacesCommand,
  ProvisionedThroughputExceededException,
  RekognitionClient,
  ThrottlingException,
} from '@aws-sdk/client-rekognition';
import { Store } from '../../infra/rekognition-local/store';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type RunningRekognition, startRekognitionLocal } from '../../harness/rekognition-local';

let rekognition: RunningRekognition;

beforeAll(async () => {
  rekognition = await startRekognitionLocal();
});

afterEach(async () => {
  await rekognition.admin('PUT', '/_admin/settings', { quotas: {}, latency: {}, throttleRate: 0, faultRate: 0 });
  await rekognition.admin('DELETE', '/_admin/counters');
});

afterAll(async () => {
  await rekognition.stop();
});

/** The status of a JSON POST to `url` that names `host` in its Host header: fetch will not set it. */
function fetchWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sent = request(
      url,
      { method: 'POST', headers: { Host: host, 'Content-Type': 'application/json' } },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    sent.on('error', reject);
    sent.end('{}');
  });
}

async function createCollection(): Promise<string> {
  const collectionId = `traffic-${randomUUID()}`;
  await rekognition.client.send(new CreateCollectionCommand({ CollectionId: collectionId }));
  return collectionId;
}

const image = { Bytes: syntheticPng([{ person: 'ana', box: [0.3, 0.3, 0.3, 0.3] }]) };

interface Counters {
  [operation: string]: {
    calls: number;
    succeeded: number;
    throttled: number;
    errors: number;
    averagePerSecond: number;
  };
}

test('over its IndexFaces quota the service answers ProvisionedThroughputExceededException, and counts it', async () => {
  const collectionId = await createCollection();
  await rekognition.admin('PUT', '/_admin/settings', { quotas: { IndexFaces: { tps: 5, burst: 5 } } });

  const outcomes = await Promise.allSettled(
    Array.from({ length: 20 }, () =>
      rekognition.client.send(new IndexFacesCommand({ CollectionId: collectionId, Image: image })),
    ),
  );

  const throttled = outcomes.filter((outcome) => outcome.status === 'rejected');
  expect(outcomes.length - throttled.length).toBeGreaterThanOrEqual(5);
  expect(throttled.length).toBeGreaterThanOrEqual(10);
  for (const outcome of throttled) {
    expect(outcome.reason).toBeInstanceOf(ProvisionedThroughputExceededException);
  }
  const counters = (await rekognition.admin('GET', '/_admin/counters')) as Counters;
  expect(counters.IndexFaces).toMatchObject({
    calls: 20,
    throttled: throttled.length,
    succeeded: 20 - throttled.length,
    errors: 0,
  });
  const described = await rekognition.client.send(new DescribeCollectionCommand({ CollectionId: collectionId }));
  expect(described.FaceCount).toBe(20 - throttled.length);
});

test('a steady stream of calls gets the configured rate, no more, and the counters say so', async () => {
  const collectionId = await createCollection();
  const tps = 20;
  await rekognition.admin('PUT', '/_admin/settings', { quotas: { IndexFaces: { tps, burst: 1 } } });

  const started = performance.now();
  const deadline = started + 2_000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < deadline) {
        await rekognition.client
          .send(new IndexFacesCommand({ CollectionId: collectionId, Image: image }))
          .catch(() => undefined);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;

  const counters = (await rekognition.admin('GET', '/_admin/counters')) as Counters;
  const { succeeded, throttled, calls } = counters.IndexFaces!;
  // A token bucket can never hand out more than its burst plus the rate over the time elapsed.
  expect(succeeded).toBeLessThanOrEqual(1 + tps * seconds);
  expect(succeeded).toBeGreaterThan(0.7 * tps * seconds);
  expect(throttled).toBe(calls - succeeded);
  // What a benchmark reads back: the achieved rate between the first and last success.
  expect(counters.IndexFaces?.averagePerSecond).toBeGreaterThan(0.7 * tps);
  expect(counters.IndexFaces?.averagePerSecond).toBeLessThanOrEqual(tps * 1.05);
});

test('reset is refused without a JSON body, or to a Host that is not this machine, and then deletes nothing', async () => {
  const collectionId = await createCollection();
  const reset = (headers: Record<string, string>, body?: string) =>
    fetch(`${rekognition.endpoint}/_admin/reset`, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });

  expect((await reset({})).status).toBe(400);
  // A form of a web page posts text/plain, which needs no preflight.
  expect((await reset({ 'Content-Type': 'text/plain' }, '{}')).status).toBe(400);
  const rebound = await fetchWithHost(`${rekognition.endpoint}/_admin/reset`, 'evil.example');
  expect(rebound).toBe(403);

  const collections = await rekognition.client.send(new ListCollectionsCommand({}));
  expect(collections.CollectionIds).toContain(collectionId);
});

test('reset empties every collection and the counters', async () => {
  const collectionId = await createCollection();
  await rekognition.client.send(new IndexFacesCommand({ CollectionId: collectionId, Image: image }));

  await rekognition.admin('POST', '/_admin/reset', {});

  const collections = await rekognition.client.send(new ListCollectionsCommand({}));
  expect(collections.CollectionIds).toEqual([]);
  expect(await rekognition.admin('GET', '/_admin/counters')).toEqual({ ListCollections: expect.any(Object) as object });
});

test('the SDK treats the quota errors as throttling and gets through on retry', async () => {
  const collectionId = await createCollection();
  await rekognition.admin('PUT', '/_admin/settings', {
    quotas: { IndexFaces: { tps: 20, burst: 1, error: 'ThrottlingException' } },
  });
  const retrying = new RekognitionClient({ region: 'us-east-1', endpoint: rekognition.endpoint, maxAttempts: 10 });
  try {
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        retrying.send(new IndexFacesCommand({ CollectionId: collectionId, Image: image })),
      ),
    );
    expect(results.every((result) => result.FaceRecords?.length === 1)).toBe(true);
    expect(Math.max(...results.map((result) => result.$metadata.attempts ?? 1))).toBeGreaterThan(1);
  } finally {
    retrying.destroy();
  }
  await rekognition.admin('PUT', '/_admin/settings', {
    quotas: { IndexFaces: { tps: 0.001, burst: 1, error: 'ThrottlingException' } },
  });
  await rekognition.client.send(new IndexFacesCommand({ CollectionId: collectionId, Image: image }));
  const refused = rekognition.client.send(new IndexFacesCommand({ CollectionId: collectionId, Image: image }));
  await expect(refused).rejects.toThrow(ThrottlingException);
  await expect(refused).rejects.toMatchObject({ $fault: 'server', $metadata: { httpStatusCode: 500 } });
});

test('injected faults are InternalServerError (5xx) and change nothing', async () => {
  const collectionId = await createCollection();
  await rekognition.admin('PUT', '/_admin/settings', { faultRate: 1 });

  const failed = rekognition.client.send(new IndexFacesCommand({ CollectionId: collectionId, Image: image }));
  await expect(failed).rejects.toThrow(InternalServerError);
  await expect(failed).rejects.toMatchObject({ $metadata: { httpStatusCode: 500 } });

  await rekognition.admin('PUT', '/_admin/settings', { faultRate: 0 });
  const faces = await rekognition.client.send(new ListFacesCommand({ CollectionId: collectionId }));
  expect(faces.Faces).toEqual([]);
});

test('random throttling answers ThrottlingException to about its share of calls, counts them, and indexes nothing for them', async () => {
  const collectionId = await createCollection();
  await rekognition.admin('PUT', '/_admin/settings', { throttleRate: 0.3 });

  const answers = await Promise.allSettled(
    Array.from({ length: 200 }, () =>
      rekognition.client.send(new IndexFacesCommand({ CollectionId: collectionId, Image: image })),
    ),
  );

  const throttled = answers.filter((answer) => answer.status === 'rejected');
  // Named, so that a refusal of another kind shows which.
  const refusals = throttled.map((answer) => `${(answer.reason as Error).name}: ${(answer.reason as Error).message}`);
  expect(refusals.filter((refusal) => !refusal.startsWith('ThrottlingException:'))).toEqual([]);
  // 30% of 200 is 60; four standard deviations either side.
  expect(throttled.length).toBeGreaterThan(34);
  expect(throttled.length).toBeLessThan(86);
  const counters = (await rekognition.admin('GET', '/_admin/counters')) as Counters;
  expect(counters.IndexFaces).toMatchObject({
    calls: 200,
    throttled: throttled.length,
    succeeded: 200 - throttled.length,
  });
  await rekognition.admin('PUT', '/_admin/settings', { throttleRate: 0 });
  const faces = await rekognition.client.send(new ListFacesCommand({ CollectionId: collectionId, MaxResults: 4096 }));
  expect(faces.Faces).toHaveLength(200 - throttled.length);
});

test('bad admin settings are refused with a reason and leave the settings as they were', async () => {
  const before = await rekognition.admin('GET', '/_admin/settings');
  const refused = await fetch(`${rekognition.endpoint}/_admin/settings`, {
    method: 'PUT',
    body: JSON.stringify({ faultRate: 2, currentFaceModelVersion: '9.9' }),
  });
  expect(refused.status).toBe(400);
  expect(JSON.stringify(await refused.json())).toMatch(
    /faultRate[\s\S]*currentFaceModelVersion|currentFaceModelVersion[\s\S]*faultRate/,
  );
  expect(await rekognition.admin('GET', '/_admin/settings')).toEqual(before);
});

test('collections and faces survive a restart', async () => {
  const collectionId = await createCollection();
  const indexed = await rekognition.client.send(
    new IndexFacesCommand({ CollectionId: collectionId, Image: image, ExternalImageId: 'ana' }),
  );

  await rekognition.restart();

  const faces = await rekognition.client.send(new ListFacesCommand({ CollectionId: collectionId }));
  expect(faces.Faces?.map((face) => [face.FaceId, face.ExternalImageId])).toEqual([
    [indexed.FaceRecords?.[0]?.Face?.FaceId, 'ana'],
  ]);
});

describe('the store after a crash', () => {
  const faceOf = (FaceId: string) => ({
    FaceId,
    ImageId: randomUUID(),
    BoundingBox: { Width: 0.1, Height: 0.1, Left: 0.1, Top: 0.1 },
    Confidence: 99,
    IndexFacesModelVersion: '7.0',
    descriptor: [1],
  });

  function crashedStore(directory: string): Store {
    const store = new Store(directory);
    store.commit({
      kind: 'createCollection',
      collection: { CollectionId: 'c', CollectionArn: 'arn', FaceModelVersion: '7.0', CreationTimestamp: 0 },
    });
    store.commit({ kind: 'putFaces', collectionId: 'c', faces: [faceOf('f1')] });
    return store;
  }

  test('every acknowledged change is there after a crash, and a torn last line is dropped', () => {
    const directory = path.join(rekognition.stateDir, `crash-${randomUUID()}`);
    crashedStore(directory);
    appendFileSync(path.join(directory, 'journal.jsonl'), '{"sequence":3,"change":{"kind":"putFa');

    const reopened = new Store(directory);
    expect(Object.keys(reopened.collection('c')?.faces ?? {})).toEqual(['f1']);
    reopened.commit({ kind: 'putFaces', collectionId: 'c', faces: [faceOf('f2')] });
    expect(Object.keys(new Store(directory).collection('c')?.faces ?? {})).toEqual(['f1', 'f2']);
  });

  test('a crash between snapshot and journal truncation applies nothing twice', () => {
    const directory = path.join(rekognition.stateDir, `snapshot-${randomUUID()}`);
    const store = crashedStore(directory);
    const journal = path.join(directory, 'journal.jsonl');
    const lines = [
      '{"sequence":1,"change":{"kind":"createCollection","collection":{"CollectionId":"c","CollectionArn":"arn","FaceModelVersion":"7.0","CreationTimestamp":0}}}',
    ];
    store.snapshot();
    appendFileSync(journal, `${lines.join('\n')}\n`);

    const reopened = new Store(directory);
    expect(Object.keys(reopened.collection('c')?.faces ?? {})).toEqual(['f1']);
  });
});
