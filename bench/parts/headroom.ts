/**
 * Headroom: no quota and no latency, so the stack itself is the limit. Images a second through the
 * whole stack and CPU milliseconds per image in each process; one more run profiles the worker.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { RunResources } from '../../harness/runs';
import { LOG_DIR, migrate, writeImages } from '../lib/migration';
import { summarizeProfile } from '../lib/profile';
import { median, wholeRate } from '../lib/rates';
import { setTraffic } from '../lib/stack';

interface HeadroomRun {
  images: number;
  wallSeconds: number;
  imagesPerSecond: number;
  indexFacesPerSecond: number;
  cpuMsPerImage: Record<string, number>;
  workerPeakRssMiB: number | undefined;
}

/** High enough never to be the limit, as REINDEX_TPS must be a number. */
export const NO_RATE_LIMIT = 100_000;

export async function headroom(
  resources: RunResources,
  client: Client,
  { images, runs }: { images: number; runs: number },
  log: (line: string) => void,
) {
  const manifest = await writeImages(resources, images);
  await setTraffic({ quota: undefined, latency: undefined });
  const measured: HeadroomRun[] = [];
  for (let run = 0; run < runs; run += 1) {
    const migration = await migrate({ resources, client, manifest, tps: NO_RATE_LIMIT });
    const result: HeadroomRun = {
      images,
      wallSeconds: migration.wallSeconds,
      imagesPerSecond: images / migration.wallSeconds,
      indexFacesPerSecond: wholeRate(migration.samples),
      cpuMsPerImage: Object.fromEntries(
        Object.entries(migration.cpuSeconds).map(([name, seconds]) => [name, (seconds * 1000) / images]),
      ),
      workerPeakRssMiB: migration.workerPeakRssMiB[0],
    };
    log(`headroom, run ${run + 1}: ${JSON.stringify(result)}`);
    measured.push(result);
  }
  const profileDir = path.join(LOG_DIR, 'worker-profile');
  rmSync(profileDir, { recursive: true, force: true });
  mkdirSync(profileDir, { recursive: true });
  await migrate({
    resources,
    client,
    manifest,
    tps: NO_RATE_LIMIT,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
  });
  // One profile per thread: the main thread runs the activities, a worker thread the workflows.
  const profiles = readdirSync(profileDir)
    .filter((file) => file.endsWith('.cpuprofile'))
    .map((file) => summarizeProfile(path.join(profileDir, file)))
    .sort((a, b) => b.busySeconds - a.busySeconds);
  log(
    `headroom, worker profile: ${JSON.stringify(profiles.map((profile) => ({ busySeconds: profile.busySeconds, byOwner: profile.byOwner.slice(0, 8) })))}`,
  );
  const processes = Object.keys(measured[0]?.cpuMsPerImage ?? {});
  return {
    images,
    medianImagesPerSecond: median(measured.map((run) => run.imagesPerSecond)),
    medianIndexFacesPerSecond: median(measured.map((run) => run.indexFacesPerSecond)),
    medianCpuMsPerImage: Object.fromEntries(
      processes.map((name) => [name, median(measured.map((run) => run.cpuMsPerImage[name] ?? 0))]),
    ),
    runs: measured,
    workerProfiles: profiles,
  };
}
