/**
 * An isolated rekognition-local for one test file: its own process, port and state directory, as
 * the stack runs it, reading S3Object images from the local stack's moto. Tests talk to it only
 * through the real SDK and its admin HTTP surface.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RekognitionClient } from '@aws-sdk/client-rekognition';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { DeclaredFace } from '../infra/rekognition-local/images';
import { syntheticPng } from '../infra/rekognition-local/synthetic-images';
import { useLocalStack } from './local-stack';
import { freePort } from './ports';

const MAIN = path.resolve(__dirname, '../infra/rekognition-local/main.ts');

export interface RunningRekognition {
  endpoint: string;
  stateDir: string;
  /** No SDK retries, so each call shows what the service answered. */
  client: RekognitionClient;
  s3: S3Client;
  bucket: string;
  admin(method: string, route: string, body?: unknown): Promise<unknown>;
  putImage(key: string, faces: DeclaredFace[]): Promise<{ Bucket: string; Name: string }>;
  /** Stops the process as `stack:down` does and starts it again on the same state. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function waitUntilHealthy(endpoint: string, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 150; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`rekognition-local exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`${endpoint}/_admin/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error('rekognition-local did not start within 15 s');
}

function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * `faceIds`: what IndexFaces answers for a face indexed again (REKOGNITION_LOCAL_FACE_IDS);
 * the service's default when absent.
 */
export async function startRekognitionLocal({
  faceIds,
}: { faceIds?: 'reuse' | 'fresh' } = {}): Promise<RunningRekognition> {
  const stack = useLocalStack();
  const region = stack.AWS_REGION ?? 'us-east-1';
  const bucket = stack.REINDEX_BUCKET ?? '';
  const s3 = new S3Client({ region, forcePathStyle: true });
  const stateDir = mkdtempSync(path.join(tmpdir(), 'rekognition-local-'));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const launch = async () => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', MAIN], {
      env: {
        ...process.env,
        REKOGNITION_LOCAL_PORT: String(port),
        REKOGNITION_LOCAL_STATE_DIR: stateDir,
        ...(faceIds === undefined ? {} : { REKOGNITION_LOCAL_FACE_IDS: faceIds }),
        AWS_ENDPOINT_URL_S3: stack.AWS_ENDPOINT_URL,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitUntilHealthy(endpoint, child);
    return child;
  };
  const newClient = () => new RekognitionClient({ region, endpoint, maxAttempts: 1 });
  let child = await launch();
  const running: RunningRekognition = {
    endpoint,
    stateDir,
    client: newClient(),
    s3,
    bucket,
    async admin(method, route, body) {
      const response = await fetch(`${endpoint}${route}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
      });
      return response.json();
    },
    async putImage(key, faces) {
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: syntheticPng(faces), ContentType: 'image/png' }),
      );
      return { Bucket: bucket, Name: key };
    },
    async restart() {
      await stopped(child);
      child = await launch();
      // The restart closed every connection; a client without retries would trip over a dead one.
      running.client.destroy();
      running.client = newClient();
    },
    async stop() {
      await stopped(child);
      running.client.destroy();
      s3.destroy();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return running;
}
