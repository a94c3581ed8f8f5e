/**
 * The `reindex` command line. Every command reads the one typed configuration; a bad setting or a
 * bad argument is one line on stderr and exit code 2.
 */
import type { Client } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type AwsClients, createAwsClients, destroyAwsClients } from './activities/aws-clients';
import { checkDeployment } from './cli/check';
import { connectTemporal, describeTotals, parseS3Uri, runStatus, signalRun, startRun, UsageError, waitForRun } from './cli/runs';
import { type Config, ConfigError, loadConfig } from './domain/config';

const USAGE_ERROR = 2;

const program = new Command('reindex')
  .description('Migrate an Amazon Rekognition face collection to the newest face model, durably, on Temporal.')
  .configureOutput({ outputError: (message, write) => write(`reindex: ${message.trim().replaceAll('\n', ' ')}\n`) })
  .exitOverride();

program
  .command('check')
  .description('check that Temporal, Rekognition and every configured bucket, queue and table answer')
  .option('--json', 'print the results as JSON')
  .action(async (options: { json?: boolean }) => {
    const config = loadConfig();
    const aws = createAwsClients(config);
    try {
      const results = await checkDeployment(config, aws, loadClientConnectConfig());
      if (options.json) {
        console.log(JSON.stringify(results, null, 2));
      } else {
        for (const { resource, ok, detail } of results) console.log(`${ok ? 'ok  ' : 'FAIL'} ${resource}: ${detail}`);
      }
      process.exitCode = results.every((result) => result.ok) ? 0 : 1;
    } finally {
      destroyAwsClients(aws);
    }
  });

/** Runs a command with the configuration, the AWS clients and a Temporal client, and closes them after. */
async function withClients<T>(work: (clients: { config: Config; aws: AwsClients; client: Client }) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const client = await connectTemporal(loadClientConnectConfig());
  const aws = createAwsClients(config);
  try {
    return await work({ config, aws, client });
  } finally {
    destroyAwsClients(aws);
    await client.connection.close();
  }
}

function numberIn(name: string, min: number, max: number, integer: boolean) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max || (integer && !Number.isInteger(parsed))) {
      throw new InvalidArgumentError(`${name} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
    }
    return parsed;
  };
}

interface StartFlags {
  manifest: string;
  target: string;
  source?: string;
  iou: number;
  tps?: number;
  qualityFilter: 'NONE' | 'AUTO' | 'LOW' | 'MEDIUM' | 'HIGH';
  maxFaces?: number;
  batchSize: number;
  batchesInFlight: number;
  imagesInFlight: number;
  unmatched: 'delete' | 'keep';
  force?: boolean;
  id?: string;
  wait?: boolean;
  json?: boolean;
}

program
  .command('start')
  .description('start migrating the faces of a records file into the target collection')
  .requiredOption('--manifest <s3-uri>', 'the records file: s3://bucket/key, a JSON array or JSON Lines')
  .requiredOption('--target <collection>', 'the collection to index into; created on the newest face model if missing')
  .option('--source <collection>', 'the old collection: its face model must be older than the target\'s')
  .option('--iou <threshold>', 'old and new boxes must overlap at least this much to match', numberIn('--iou', 0.01, 1, false), 0.5)
  .option('--tps <n>', 'IndexFaces calls a second across all workers (sets the task queue\'s rate)', numberIn('--tps', 0.01, 10_000, false))
  .addOption(new Option('--quality-filter <filter>', 'IndexFaces QualityFilter').choices(['NONE', 'AUTO', 'LOW', 'MEDIUM', 'HIGH']).default('AUTO'))
  .option('--max-faces <n>', 'IndexFaces MaxFaces: at most this many faces an image', numberIn('--max-faces', 1, 100, true))
  // A batch's chunk travels as one activity result, which Temporal caps at 2 MB.
  .option('--batch-size <n>', 'records per batch (child workflow)', numberIn('--batch-size', 1, 1_000, true), 500)
  .option('--batches-in-flight <n>', 'batches running at once', numberIn('--batches-in-flight', 1, 100, true), 4)
  .option('--images-in-flight <n>', 'images in flight within one batch', numberIn('--images-in-flight', 1, 500, true), 16)
  .addOption(new Option('--unmatched <what>', 'new faces no old face matched: delete them or keep them').choices(['delete', 'keep']).default('delete'))
  .option('--force', 'migrate even when the target\'s face model is not newer than the source\'s')
  .option('--id <workflow-id>', 'the run\'s workflow id (default: reindex-<target>-<time>)')
  .option('--wait', 'wait for the run to end and print its summary')
  .option('--json', 'print JSON: the last line of stdout is one object')
  .action(async (flags: StartFlags) => {
    const manifest = parseS3Uri(flags.manifest);
    await withClients(async ({ config, aws, client }) => {
      const started = await startRun(client, aws, {
        manifest,
        target: flags.target,
        source: flags.source,
        options: { iouThreshold: flags.iou, qualityFilter: flags.qualityFilter, maxFaces: flags.maxFaces, unmatched: flags.unmatched },
        tps: flags.tps,
        batchSize: flags.batchSize,
        batchesInFlight: flags.batchesInFlight,
        imagesInFlight: flags.imagesInFlight,
        force: flags.force ?? false,
        id: flags.id,
      });
      if (!flags.wait) {
        if (flags.json) console.log(JSON.stringify(started));
        else console.log(`started ${started.workflowId}${started.url ? `\nfollow it at ${started.url}` : ''}`);
        return;
      }
      if (!flags.json) console.log(`started ${started.workflowId}${started.url ? `; follow it at ${started.url}` : ''}; waiting for it to end`);
      const end = await waitForRun(client, aws, config, started.workflowId);
      if (end.status === 'failed') {
        if (flags.json) console.log(JSON.stringify({ workflowId: started.workflowId, status: 'failed', error: end.message }));
        else console.error(`reindex: run ${started.workflowId} failed: ${end.message}`);
        process.exitCode = 1;
        return;
      }
      const summary = end.summary ?? { workflowId: started.workflowId, status: end.status };
      if (flags.json) {
        console.log(JSON.stringify(summary));
      } else {
        console.log(`run ${started.workflowId} ${end.status}`);
        if (end.summary) {
          for (const line of describeTotals(end.summary)) console.log(`  ${line}`);
          console.log(`  users created ${end.summary.usersCreated}, faces associated ${end.summary.facesAssociated}, orphans deleted ${end.summary.orphansDeleted}`);
          console.log(`  took ${(end.summary.durationMs / 1000).toFixed(1)} s; report ${end.summary.report?.json ?? 'not written'}`);
        }
      }
      process.exitCode = end.status === 'completed' ? 0 : 1;
    });
  });

program
  .command('status')
  .description('show where a run is: phase, totals, rate and ETA while it runs')
  .argument('<workflow-id>')
  .option('--json', 'print the status as JSON')
  .action(async (workflowId: string, flags: { json?: boolean }) => {
    await withClients(async ({ client }) => {
      const status = await runStatus(client, workflowId);
      if (flags.json) {
        console.log(JSON.stringify(status));
        return;
      }
      console.log(`${workflowId}: ${status.status.toLowerCase()}${status.url ? ` (${status.url})` : ''}`);
      const progress = status.progress;
      if (!progress) return;
      console.log(`  phase ${progress.phase}${progress.paused ? ', paused' : ''}${progress.stopping ? ', stopping' : ''}`);
      console.log(`  batches ${progress.batches.done} of ${progress.batches.total} done, ${progress.batches.running} running`);
      for (const line of describeTotals({ ...progress.totals, dlq: progress.dlq, dlqByReason: progress.dlqByReason })) console.log(`  ${line}`);
      const eta = progress.etaSeconds === undefined ? 'unknown' : `${Math.round(progress.etaSeconds)} s`;
      console.log(`  ${progress.imagesPerSecond.toFixed(1)} images/s, ETA ${eta}`);
    });
  });

for (const [action, description] of [
  ['pause', 'stop starting IndexFaces calls; calls in flight finish'],
  ['resume', 'go on where a paused run stopped'],
  ['cancel', 'stop a run for good: work in flight finishes, results are drained, the target reconciled'],
] as const) {
  program
    .command(action)
    .description(description)
    .argument('<workflow-id>')
    .action(async (workflowId: string) => {
      await withClients(async ({ client }) => {
        await signalRun(client, workflowId, action);
        console.log(`${action === 'cancel' ? 'cancellation requested for' : `${action}d`} ${workflowId}`);
      });
    });
}

program.parseAsync().catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // Help and version end with code 0; every usage error ends with 2.
    process.exitCode = error.exitCode === 0 ? 0 : USAGE_ERROR;
  } else if (error instanceof ConfigError || error instanceof UsageError) {
    console.error(`reindex: ${error.message}`);
    process.exitCode = USAGE_ERROR;
  } else {
    console.error(`reindex: ${(error instanceof Error ? error.message : String(error)).replaceAll('\n', ' ')}`);
    process.exitCode = 1;
  }
});
