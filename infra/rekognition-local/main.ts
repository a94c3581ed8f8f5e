/**
 * Starts rekognition-local. Settings from the environment:
 *   REKOGNITION_LOCAL_HOST, REKOGNITION_LOCAL_PORT   where to listen (127.0.0.1:4567)
 *   REKOGNITION_LOCAL_STATE_DIR                      where state persists (in memory when unset)
 *   REKOGNITION_LOCAL_FACE_MODEL_VERSION             version of new collections (7.0)
 *   REKOGNITION_LOCAL_FACE_IDS                       reuse (as AWS) or fresh: a face indexed again (service.ts)
 *   REKOGNITION_LOCAL_MAX_FACES_PER_COLLECTION       faces a collection may hold (20,000,000)
 *   REKOGNITION_LOCAL_TRAFFIC                        JSON: quotas, latency, throttleRate, faultRate (see traffic.ts)
 *   AWS_REGION, AWS_ENDPOINT_URL[_S3], credentials   the S3 that S3Object images are read from
 */
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { createDetection } from './detection';
import { createNeuralDetector } from './neural';
import { createRekognitionServer } from './server';
import {
  DEFAULT_MAX_FACES_PER_COLLECTION,
  FACE_ID_BEHAVIOURS,
  FACE_MODEL_VERSIONS,
  RekognitionService,
} from './service';
import { Store } from './store';
import { Traffic, trafficSettingsSchema } from './traffic';

const environment = z.object({
  REKOGNITION_LOCAL_HOST: z.string().default('127.0.0.1'),
  REKOGNITION_LOCAL_PORT: z.coerce.number().int().min(0).max(65535).default(4567),
  REKOGNITION_LOCAL_STATE_DIR: z.string().optional(),
  REKOGNITION_LOCAL_FACE_MODEL_VERSION: z.enum(FACE_MODEL_VERSIONS).default('7.0'),
  REKOGNITION_LOCAL_FACE_IDS: z.enum(FACE_ID_BEHAVIOURS).default('reuse'),
  REKOGNITION_LOCAL_MAX_FACES_PER_COLLECTION: z.coerce
    .number()
    .int()
    .positive()
    .default(DEFAULT_MAX_FACES_PER_COLLECTION),
  REKOGNITION_LOCAL_TRAFFIC: z
    .string()
    .transform((text) => JSON.parse(text) as unknown)
    .pipe(trafficSettingsSchema)
    .optional(),
  AWS_REGION: z.string().default('us-east-1'),
});

async function main(): Promise<void> {
  const parsed = environment.safeParse(process.env);
  if (!parsed.success) {
    console.error(`rekognition-local: ${z.prettifyError(parsed.error).replaceAll('\n', ' ')}`);
    process.exit(2);
  }
  const settings = parsed.data;
  const store = new Store(settings.REKOGNITION_LOCAL_STATE_DIR);
  const traffic = new Traffic();
  if (settings.REKOGNITION_LOCAL_TRAFFIC) traffic.configure(settings.REKOGNITION_LOCAL_TRAFFIC);
  const s3 = new S3Client({
    region: settings.AWS_REGION,
    forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
  });
  const service = new RekognitionService(store, s3, createDetection(createNeuralDetector()), {
    region: settings.AWS_REGION,
    currentFaceModelVersion: settings.REKOGNITION_LOCAL_FACE_MODEL_VERSION,
    faceIds: settings.REKOGNITION_LOCAL_FACE_IDS,
    maxFacesPerCollection: settings.REKOGNITION_LOCAL_MAX_FACES_PER_COLLECTION,
  });
  const server = createRekognitionServer(service, store, traffic);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.REKOGNITION_LOCAL_PORT, settings.REKOGNITION_LOCAL_HOST, resolve);
  });
  console.log(
    `rekognition-local listening on http://${settings.REKOGNITION_LOCAL_HOST}:${settings.REKOGNITION_LOCAL_PORT}`,
  );
  // A clean stop writes a snapshot, so the next start replays no journal.
  const stop = () => {
    server.closeAllConnections();
    server.close(() => {
      store.snapshot();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error(`rekognition-local: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
