/** Assembles rekognition-local from its parts; main.ts starts it, tests start their own. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { createDetection, type Detector } from './detection';
import { createRekognitionServer } from './server';
import { RekognitionService } from './service';
import { Store } from './store';
import { Traffic, type TrafficSettings } from './traffic';

export interface RekognitionLocalOptions {
  s3: S3Client;
  region: string;
  currentFaceModelVersion: string;
  /** Where state persists; in memory only when undefined. */
  stateDir: string | undefined;
  traffic?: TrafficSettings;
  neuralDetector?: Detector;
}

export interface RekognitionLocal {
  server: Server;
  store: Store;
  traffic: Traffic;
  listen(port: number, host: string): Promise<string>;
  /** Stops listening and writes a snapshot, so the next start loads quickly. */
  close(): Promise<void>;
}

export function createRekognitionLocal(options: RekognitionLocalOptions): RekognitionLocal {
  const store = new Store(options.stateDir);
  const traffic = new Traffic();
  if (options.traffic) traffic.configure(options.traffic);
  const service = new RekognitionService(store, options.s3, createDetection(options.neuralDetector), {
    region: options.region,
    currentFaceModelVersion: options.currentFaceModelVersion,
  });
  const server = createRekognitionServer(service, store, traffic);
  return {
    server,
    store,
    traffic,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`));
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          store.snapshot();
          resolve();
        });
      }),
  };
}
