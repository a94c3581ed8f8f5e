/**
 * An isolated rekognition-local for one test file: its own port and state directory, reading
 * S3Object images from the local stack's moto. Tests talk to it only through the real SDK.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RekognitionClient } from '@aws-sdk/client-rekognition';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createRekognitionLocal, type RekognitionLocal } from '../../infra/rekognition-local/app';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import type { TrafficSettings } from '../../infra/rekognition-local/traffic';
import { useLocalStack } from './local-stack';

export interface RunningRekognition {
  endpoint: string;
  stateDir: string;
  app: RekognitionLocal;
  /** No SDK retries, so each call shows what the service answered. */
  client: RekognitionClient;
  s3: S3Client;
  bucket: string;
  admin(method: string, route: string, body?: unknown): Promise<unknown>;
  putImage(key: string, faces: DeclaredFace[]): Promise<{ Bucket: string; Name: string }>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRekognitionLocal(
  options: { traffic?: TrafficSettings; currentFaceModelVersion?: string } = {},
): Promise<RunningRekognition> {
  const stack = useLocalStack();
  const region = stack.AWS_REGION ?? 'us-east-1';
  const bucket = stack.REINDEX_BUCKET ?? '';
  const s3 = new S3Client({ region, forcePathStyle: true });
  const stateDir = mkdtempSync(path.join(tmpdir(), 'rekognition-local-'));
  const create = () =>
    createRekognitionLocal({
      s3,
      region,
      currentFaceModelVersion: options.currentFaceModelVersion ?? '7.0',
      stateDir,
      traffic: options.traffic,
    });
  let app = create();
  let port = 0;
  const endpoint = await app.listen(0, '127.0.0.1');
  port = Number(new URL(endpoint).port);
  const newClient = () => new RekognitionClient({ region, endpoint, maxAttempts: 1 });
  const running: RunningRekognition = {
    endpoint,
    stateDir,
    app,
    client: newClient(),
    s3,
    bucket,
    async admin(method, route, body) {
      const response = await fetch(`${endpoint}${route}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
      return response.json();
    },
    async putImage(key, faces) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: syntheticPng(faces), ContentType: 'image/png' }));
      return { Bucket: bucket, Name: key };
    },
    async restart() {
      await app.close();
      app = create();
      running.app = app;
      await app.listen(port, '127.0.0.1');
      // The restart closed every connection; a client without retries would trip over a dead one.
      running.client.destroy();
      running.client = newClient();
    },
    async stop() {
      await app.close();
      running.client.destroy();
      s3.destroy();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return running;
}
