/**
 * Starts rekognition-local. Settings from the environment:
 *   REKOGNITION_LOCAL_HOST, REKOGNITION_LOCAL_PORT   where to listen (127.0.0.1:4567)
 *   REKOGNITION_LOCAL_STATE_DIR                      where state persists (in memory when unset)
 *   REKOGNITION_LOCAL_FACE_MODEL_VERSION             version of new collections (7.0)
 *   REKOGNITION_LOCAL_TRAFFIC                        JSON: quotas, latency, faultRate (see traffic.ts)
 *   AWS_REGION, AWS_ENDPOINT_URL[_S3], credentials   the S3 that S3Object images are read from
 */
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { createRekognitionLocal } from './app';
import { FACE_MODEL_VERSIONS } from './service';
import { trafficSettingsSchema } from './traffic';

const environment = z.object({
  REKOGNITION_LOCAL_HOST: z.string().default('127.0.0.1'),
  REKOGNITION_LOCAL_PORT: z.coerce.number().int().min(0).max(65535).default(4567),
  REKOGNITION_LOCAL_STATE_DIR: z.string().optional(),
  REKOGNITION_LOCAL_FACE_MODEL_VERSION: z.enum(FACE_MODEL_VERSIONS).default('7.0'),
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
  const service = createRekognitionLocal({
    s3: new S3Client({
      region: settings.AWS_REGION,
      forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
    }),
    region: settings.AWS_REGION,
    currentFaceModelVersion: settings.REKOGNITION_LOCAL_FACE_MODEL_VERSION,
    stateDir: settings.REKOGNITION_LOCAL_STATE_DIR,
    traffic: settings.REKOGNITION_LOCAL_TRAFFIC,
  });
  const url = await service.listen(settings.REKOGNITION_LOCAL_PORT, settings.REKOGNITION_LOCAL_HOST);
  console.log(`rekognition-local listening on ${url}`);
  const stop = () => void service.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error(`rekognition-local: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
