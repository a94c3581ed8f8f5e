/**
 * `reindex purge <run>`: removes what a run that has ended left behind: its chunks, its redrive
 * records file and its report under `runs/<run>/`, its rows in the results DLQ, the key it signed
 * its rows with, and, with --with-review, its review-DLQ messages. The rows of the results table
 * are the migration's product and stay; `reindex forget` removes one person's.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Command } from 'commander';
import type { AwsClients } from '../aws/clients';
import { createLedger } from '../stores/ledger';
import { createResultsDlq } from '../stores/results-dlq';
import type { Config } from '../domain/config';
import { UsageError, withClients } from './common';
import { holdReviewMessages } from './review-dlq';
import { createRunObjects, type RunObjectKind } from '../stores/run-objects';

interface PurgeFlags {
  target?: string;
  withReview?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export interface Purged {
  runId: string;
  objects: Record<RunObjectKind, number>;
  /** Whether the run's row-signing key was deleted; undefined when its target is unknown. */
  runKey: boolean | undefined;
  resultsDlqRows: number;
  /** Review-DLQ messages of the run: removed with --with-review, counted and kept otherwise. */
  reviewMessages: { removed: number; kept: number };
  dryRun: boolean;
}

export async function purgeRun(aws: AwsClients, config: Config, runId: string, flags: PurgeFlags): Promise<Purged> {
  const dryRun = flags.dryRun ?? false;
  const runObjects = createRunObjects(aws.s3, config.bucket);
  const objects = await runObjects.list(runId);
  const target = flags.target ?? (await runObjects.reportedTarget(runId));

  // Before the key goes: the rows are read with it.
  const resultsDlq = await createResultsDlq({ sqs: aws.sqs, s3: aws.s3, config }).holdRows(runId);
  const resultsDlqRows = resultsDlq?.rows.length ?? 0;
  // Deleting none releases them all.
  await resultsDlq?.held.deleteAndRelease(dryRun ? [] : resultsDlq.rows.map(({ message }) => message.MessageId ?? ''));

  const review = await holdReviewMessages(aws.sqs, config.reviewDlqUrl, { runId });
  const reviewIds = review.messages.map((message) => message.messageId);
  await review.deleteAndRelease(flags.withReview && !dryRun ? reviewIds : []);

  const ledger = createLedger(aws.s3, config.bucket);
  let runKey: boolean | undefined;
  if (target !== undefined)
    runKey = dryRun ? (await ledger.runKey(target, runId)) !== undefined : await ledger.deleteRunKey(target, runId);
  if (!dryRun) await runObjects.delete(objects.map((object) => object.Key));

  const counted: Record<RunObjectKind, number> = { chunk: 0, 'redrive records': 0, report: 0 };
  for (const object of objects) counted[object.kind] += 1;
  const removedReview = flags.withReview ? reviewIds.length : 0;
  return {
    runId,
    objects: counted,
    runKey,
    resultsDlqRows,
    reviewMessages: { removed: removedReview, kept: reviewIds.length - removedReview },
    dryRun,
  };
}

function describe(purged: Purged): string[] {
  const verb = purged.dryRun ? 'would remove' : 'removed';
  const { chunk, report } = purged.objects;
  return [
    `${verb} of run ${purged.runId}: ${chunk} chunks, ${purged.objects['redrive records']} redrive records files, ${report} report files`,
    purged.runKey === undefined
      ? '  its row-signing key: not looked for, since the run left no report naming its target; give --target'
      : `  its row-signing key: ${purged.runKey ? (purged.dryRun ? 'would be removed' : 'removed') : 'none found'}`,
    `  results DLQ: ${purged.resultsDlqRows} rows`,
    purged.reviewMessages.kept > 0
      ? `  review DLQ: ${purged.reviewMessages.kept} messages kept; --with-review removes them too`
      : `  review DLQ: ${purged.reviewMessages.removed} messages`,
  ];
}

export function registerPurgeCommand(program: Command): void {
  program
    .command('purge')
    .description(
      'remove what a run that has ended left behind: chunks, redrive file, report, results-DLQ rows, signing key; its results rows stay',
    )
    .argument('<workflow-id>', 'the run')
    .option('--target <collection>', "the run's target, when the run left no report that names it")
    .option('--with-review', "also remove the run's review-DLQ messages")
    .option('--dry-run', 'say what would be removed, remove nothing')
    .option('--json', 'print one JSON object')
    .action(async (runId: string, flags: PurgeFlags) => {
      await withClients(async ({ config, aws, client }) => {
        try {
          const { status } = await client.workflow.getHandle(runId).describe();
          if (status.name === 'RUNNING')
            throw new UsageError(
              `run ${runId} is still running: it reads what purge would remove; cancel it or wait for its end`,
            );
        } catch (error) {
          // A run whose history Temporal no longer keeps ended long ago.
          if (!(error instanceof WorkflowNotFoundError)) throw error;
        }
        const purged = await purgeRun(aws, config, runId, flags);
        const found =
          Object.values(purged.objects).some((count) => count > 0) ||
          purged.runKey === true ||
          purged.resultsDlqRows > 0 ||
          purged.reviewMessages.kept + purged.reviewMessages.removed > 0;
        if (!found) throw new UsageError(`nothing of run ${runId} is left in ${config.bucket} or the queues`);
        if (flags.json) console.log(JSON.stringify(purged));
        else for (const line of describe(purged)) console.log(line);
      });
    });
}
