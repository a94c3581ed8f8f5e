/**
 * Measures the running rekognition-local through the SDK, as its README (infra/rekognition-local/README.md) reports it:
 * IndexFaces latency per face model version on a 1920-pixel sample photo, and how many synthetic
 * IndexFaces per second it answers, from image bytes and from S3 objects.
 * `npm run stack:up && npm run rekognition:measure`
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { CreateCollectionCommand, IndexFacesCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LOCAL_DIR, readStackEnv } from '../local/settings';
import { SAMPLE_PHOTOS } from './calibrate';
import { syntheticPng } from './synthetic-images';

const LATENCY_SAMPLES = 5;
const THROUGHPUT_SECONDS = 10;
const IN_FLIGHT = 64;

async function main(): Promise<void> {
  const stack = readStackEnv();
  const endpoint = stack?.AWS_ENDPOINT_URL_REKOGNITION;
  if (!stack || !endpoint) throw new Error('the local stack is not running: npm run stack:up');
  Object.assign(process.env, stack);
  const rekognition = new RekognitionClient({ maxAttempts: 1 });
  const s3 = new S3Client({ forcePathStyle: true });
  const admin = (body: unknown) => fetch(`${endpoint}/_admin/settings`, { method: 'PUT', body: JSON.stringify(body) });
  const bucket = stack.REINDEX_BUCKET;
  const newCollection = async (version: string) => {
    await admin({ currentFaceModelVersion: version });
    const CollectionId = `measure-${version.replace('.', '-')}-${Date.now()}`;
    await rekognition.send(new CreateCollectionCommand({ CollectionId }));
    return CollectionId;
  };

  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: 'measure/sample1.jpg', Body: readFileSync(SAMPLE_PHOTOS[0]!) }),
  );
  for (const version of ['6.0', '7.0']) {
    const CollectionId = await newCollection(version);
    const timings: number[] = [];
    for (let i = 0; i <= LATENCY_SAMPLES; i += 1) {
      const started = performance.now();
      await rekognition.send(
        new IndexFacesCommand({ CollectionId, Image: { S3Object: { Bucket: bucket, Name: 'measure/sample1.jpg' } } }),
      );
      // The first call also loads the models; it is not counted.
      if (i > 0) timings.push(performance.now() - started);
    }
    timings.sort((a, b) => a - b);
    console.log(
      `IndexFaces ${version} on a 1920x1280 photo: median ${Math.round(timings[Math.floor(timings.length / 2)] ?? 0)} ms of ${LATENCY_SAMPLES}`,
    );
  }

  const CollectionId = await newCollection('7.0');
  const image = syntheticPng([{ person: 'load', box: [0.3, 0.3, 0.3, 0.3] }]);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'measure/synthetic.png', Body: image }));
  const servicePid = Number(readFileSync(path.join(LOCAL_DIR, 'rekognition.pid'), 'utf8'));
  for (const [source, Image] of [
    ['image bytes', { Bytes: image.toString('base64') }],
    ['S3 objects on moto', { S3Object: { Bucket: bucket, Name: 'measure/synthetic.png' } }],
  ] as const) {
    const cpuBefore = cpuSeconds(servicePid);
    // autocannon sends the SDK's own request (JSON 1.1, X-Amz-Target) at far less cost per call
    // than the SDK client, so the service, not the load generator, is what runs out.
    const result = await autocannon({
      url: endpoint,
      method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'RekognitionService.IndexFaces' },
      body: JSON.stringify({ CollectionId, Image }),
      connections: IN_FLIGHT,
      duration: THROUGHPUT_SECONDS,
    });
    const cores = (cpuSeconds(servicePid) - cpuBefore) / THROUGHPUT_SECONDS;
    console.log(
      `synthetic IndexFaces from ${source}: ${Math.round(result.requests.average)} per second ` +
        `(${result.requests.total} calls, ${result.non2xx} not 2xx, ${result.errors} errors, ${IN_FLIGHT} in flight; ` +
        `service used ${cores.toFixed(2)} cores)`,
    );
  }
}

/** User plus system CPU time of a process so far, from /proc (in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

main().catch((error: unknown) => {
  console.error(`measure: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
