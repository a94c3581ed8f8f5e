/** After every suite: the workflows bundled for the run are removed, and the workers' rekognition-locals stopped. */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { workerRekognitions } from './global-setup';
import { WORKFLOWS_BUNDLE_VARIABLE } from './workflows-bundle';

export default async function globalTeardown(): Promise<void> {
  const bundle = process.env[WORKFLOWS_BUNDLE_VARIABLE];
  await Promise.all([
    bundle ? rm(path.dirname(bundle), { recursive: true, force: true }) : undefined,
    ...workerRekognitions()
      .splice(0)
      .map((rekognition) => rekognition.stop()),
  ]);
}
