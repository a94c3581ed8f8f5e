/**
 * `npm run bench`: the performance measurements of docs/benchmarks.md, against a local stack of the
 * bench's own (infra/local/bench.sh). Each part writes bench/results/<part>.json with the machine
 * it ran on; the figures go into docs/benchmarks.md by hand, with what they mean.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { ROOT } from '../infra/local/settings';
import { createRunResources } from '../harness/runs';
import { alternatives } from './parts/alternatives';
import { drain } from './parts/drain';
import { fairness } from './parts/fairness';
import { headroom } from './parts/headroom';
import { quotaUse } from './parts/quota';
import { scale } from './parts/scale';
import { manyWorkers } from './parts/workers';
import { temporalClient } from './lib/stack';

const PARTS = ['quota', 'alternatives', 'headroom', 'scale', 'workers', 'drain', 'fairness'] as const;
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

const numbers = (value: string) => value.split(',').map(Number);

function machine() {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
}

async function main(): Promise<void> {
  const options = new Command('bench')
    .addOption(new Option('--parts <parts...>', 'which measurements').choices(PARTS).default([...PARTS]))
    .option('--runs <n>', 'runs of each measurement, for medians', Number, 3)
    .option('--images <n>', 'images per migration (quota, alternatives)', Number, 5_000)
    .option('--quotas <list>', 'IndexFaces quotas Q to measure', numbers, [20, 50, 100])
    .option('--alternatives-quota <q>', 'Q the alternatives are compared at', Number, 50)
    .option('--sequential-images <n>', 'images the sequential script indexes: its rate needs no more', Number, 500)
    .option('--slow-images <n>', 'images the original and the project index with slow calls', Number, 1_000)
    .option('--headroom-images <n>', 'images of the headroom migration', Number, 3_000)
    .option('--records <n>', 'records of the file the scale part splits', Number, 1_000_000)
    .option('--history-images <n>', 'images of the run whose parent history is measured per link', Number, 3_000)
    .option('--history-batch-size <n>', 'its batch size: small, for many batches', Number, 5)
    .option('--workers-images <n>', 'images of the two-worker migration', Number, 3_000)
    .option('--drain-images <n>', 'images of the migration whose results queue is watched', Number, 20_000)
    .option('--drain-faces <n>', 'faces in each of its images: a row each', Number, 3)
    .option('--drain-batch-size <n>', 'its batch size', Number, 1_000)
    .option('--drain-minutes <n>', 'end the run after this long if it has not ended, keeping what it came to', Number)
    .option('--fairness-large <n>', 'images of the large collection of the fairness plan', Number, 5_000)
    .option('--fairness-small <n>', 'images of each of its small collections', Number, 50)
    .option('--fairness-collections <n>', 'its small collections', Number, 10)
    .option('--fairness-quota <q>', 'the quota they share', Number, 10)
    .option('--label <label>', 'appended to the results file names, to keep measurements with other settings apart')
    .parse()
    .opts<{
      parts: (typeof PARTS)[number][];
      runs: number;
      images: number;
      quotas: number[];
      alternativesQuota: number;
      sequentialImages: number;
      slowImages: number;
      headroomImages: number;
      records: number;
      historyImages: number;
      historyBatchSize: number;
      workersImages: number;
      drainImages: number;
      drainFaces: number;
      drainBatchSize: number;
      drainMinutes?: number;
      fairnessLarge: number;
      fairnessSmall: number;
      fairnessCollections: number;
      fairnessQuota: number;
      label?: string;
    }>();
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resources = await createRunResources();
  const client = await temporalClient();
  const log = (line: string) => process.stdout.write(`bench: ${line}\n`);
  let loadBefore = loadavg();
  const save = (part: string, settings: unknown, results: unknown) => {
    const file = path.join(RESULTS_DIR, `${part}${options.label ? `-${options.label}` : ''}.json`);
    // The machine's load over the part says whether anything else ran beside the measurement.
    const load = { oneMinuteBefore: loadBefore[0], fifteenMinutesAfter: loadavg()[2] };
    writeFileSync(
      file,
      `${JSON.stringify({ part, at: new Date().toISOString(), machine: machine(), load, settings, results }, null, 2)}\n`,
    );
    log(`${part}: written to ${path.relative(ROOT, file)}`);
  };
  try {
    for (const part of options.parts) {
      const startedAt = Date.now();
      loadBefore = loadavg();
      log(`${part}: started`);
      switch (part) {
        case 'quota': {
          const settings = { images: options.images, quotas: options.quotas, runs: options.runs };
          save(part, settings, await quotaUse(resources, client, settings, log));
          break;
        }
        case 'alternatives': {
          const settings = {
            images: options.images,
            quota: options.alternativesQuota,
            runs: options.runs,
            sequentialImages: options.sequentialImages,
            slowImages: options.slowImages,
          };
          save(part, settings, await alternatives(resources, client, settings, log));
          break;
        }
        case 'headroom': {
          const settings = { images: options.headroomImages, runs: options.runs };
          save(part, settings, await headroom(resources, client, settings, log));
          break;
        }
        case 'scale': {
          const settings = {
            records: options.records,
            historyImages: options.historyImages,
            historyBatchSize: options.historyBatchSize,
          };
          save(part, settings, await scale(resources, client, settings, log));
          break;
        }
        case 'workers': {
          const settings = { images: options.workersImages, quota: options.alternativesQuota, runs: options.runs };
          save(part, settings, await manyWorkers(resources, client, settings, log));
          break;
        }
        case 'drain': {
          const settings = {
            images: options.drainImages,
            faces: options.drainFaces,
            batchSize: options.drainBatchSize,
            runs: options.runs,
            stopAfterMinutes: options.drainMinutes,
          };
          save(part, settings, await drain(resources, client, settings, log));
          break;
        }
        case 'fairness': {
          const settings = {
            largeImages: options.fairnessLarge,
            smallImages: options.fairnessSmall,
            smallCollections: options.fairnessCollections,
            quota: options.fairnessQuota,
            runs: options.runs,
          };
          save(part, settings, await fairness(resources, client, settings, log));
          break;
        }
      }
      log(`${part}: took ${Math.round((Date.now() - startedAt) / 1000)} s`);
    }
  } finally {
    await client.connection.close();
    await resources.release();
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
