/**
 * A plan's run seen from the terminal: `reindex start --plan <file>` starts one reindexPlan
 * workflow for every collection of a plan file that `reindex plan --out` wrote, and `status`,
 * `--wait`, `pause`, `resume` and `cancel` take the plan's id as they take a run's. Each
 * collection's run is a workflow of its own, `<plan>/<target>`, which the same commands take too.
 */
import { text } from 'node:stream/consumers';
import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import type { AwsClients } from '../aws/clients';
import { PlanError, parsePlan } from '../domain/plans';
import {
  planProgressQuery,
  type PlannedRun,
  type PlannedRunState,
  type PlanProgress,
  type PlanRunSettings,
  type PlanSummary,
  type ReindexPlanInput,
} from '../shared';
import type { reindexPlan } from '../workflows';
import { parseS3Uri, UsageError } from './common';
import { isS3, openInput } from './files';
import { assertRecordsFile, assertSearchAttributes, defaultWorkflowId, RunExistsError, runUrl } from './starting';

/** The workflow type of a plan's run, which `status` tells from a collection's. */
export const PLAN_WORKFLOW_TYPE = 'reindexPlan';

/** The collections of the plan file at `location` (a local path or an S3 URI), each ready to start. */
export async function plannedRuns(aws: AwsClients, location: string): Promise<PlannedRun[]> {
  let plan: ReturnType<typeof parsePlan>;
  try {
    plan = parsePlan(await text(await openInput(aws.s3, location, 'the plan file')));
  } catch (error) {
    throw error instanceof PlanError ? new UsageError(`the plan file ${location}: ${error.message}`) : error;
  }
  const runs: PlannedRun[] = [];
  for (const collection of plan.collections) {
    // The worker reads each records file from S3, at the version looked at here.
    if (!isS3(collection.records))
      throw new UsageError(
        `the plan file ${location}: the records file of ${collection.collectionId} is ${collection.records}, not in S3; write the plan with --out s3://…`,
      );
    const manifest = parseS3Uri(collection.records);
    const manifestETag = await assertRecordsFile(aws, manifest);
    runs.push({
      targetCollectionId: collection.target,
      manifest,
      ...(manifestETag === undefined ? {} : { manifestETag }),
      sourceCollectionId: collection.collectionId,
      ...(collection.callsCounted ? { images: collection.indexFacesCalls } : {}),
    });
  }
  return runs;
}

export async function startPlan(
  client: Client,
  start: {
    collections: PlannedRun[];
    settings: PlanRunSettings;
    collectionsInFlight: number;
    id: string | undefined;
    taskQueue: string;
    planFile: string;
  },
): Promise<{ workflowId: string; url: string | undefined }> {
  await assertSearchAttributes(client);
  const workflowId = start.id ?? defaultWorkflowId('plan');
  const input: ReindexPlanInput = {
    collections: start.collections,
    settings: start.settings,
    collectionsInFlight: start.collectionsInFlight,
  };
  await client.workflow
    .start<typeof reindexPlan>(PLAN_WORKFLOW_TYPE, {
      taskQueue: start.taskQueue,
      workflowId,
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      args: [input],
      staticSummary: `${start.planFile}: ${start.collections.length} collections`,
      staticDetails: start.collections
        .map(
          ({ manifest, targetCollectionId, sourceCollectionId }) =>
            `**${sourceCollectionId ?? ''}** → ${targetCollectionId} (s3://${manifest.Bucket}/${manifest.Key})`,
        )
        .join('\n\n'),
    })
    .catch((error: unknown) => {
      if (error instanceof WorkflowExecutionAlreadyStartedError) throw new RunExistsError(workflowId);
      throw error;
    });
  return { workflowId, url: runUrl(client, workflowId) };
}

export type PlanEnd =
  { status: 'completed' | 'cancelled'; summary: PlanSummary } | { status: 'failed'; message: string };

export async function waitForPlan(client: Client, workflowId: string): Promise<PlanEnd> {
  try {
    const summary = await client.workflow.getHandle<typeof reindexPlan>(workflowId).result();
    return { status: summary.status, summary };
  } catch (error) {
    if (!(error instanceof WorkflowFailedError)) throw error;
    const cause = error.cause;
    return { status: 'failed', message: cause?.message ?? error.message };
  }
}

export async function planProgress(client: Client, workflowId: string): Promise<PlanProgress> {
  return client.workflow.getHandle(workflowId).query(planProgressQuery);
}

/** One line a collection: where its run is, and its figures once it has ended. */
export function planLines(collections: PlannedRunState[]): string[] {
  return collections.map(({ targetCollectionId, workflowId, state, summary, error }) => {
    const figures = summary
      ? `: images ${summary.images}, matched ${summary.matched}, DLQ ${summary.dlq}`
      : error
        ? `: ${error}`
        : '';
    return `${targetCollectionId} ${state}${figures} (${workflowId})`;
  });
}

/** The figures of a finished plan, the collections' summed. */
export function planTotalsLine({ totals, durationMs }: PlanSummary): string {
  return `images ${totals.images}, faces ${totals.faces}, matched ${totals.matched}, DLQ ${totals.dlq}, result rows ${totals.resultsWritten}, users created ${totals.usersCreated}; took ${(durationMs / 1000).toFixed(1)} s`;
}

/** Prints a plan's end as `start --wait` does; the exit code is 0 only when every collection completed. */
export function printPlanEnd(workflowId: string, end: PlanEnd, json: boolean): void {
  if (end.status === 'failed') {
    if (json) console.log(JSON.stringify({ workflowId, status: 'failed', error: end.message }));
    else console.error(`reindex: plan ${workflowId} failed: ${end.message}`);
    process.exitCode = 1;
    return;
  }
  if (json) console.log(JSON.stringify(end.summary));
  else {
    console.log(`plan ${workflowId} ${end.status}`);
    for (const line of [...planLines(end.summary.collections), planTotalsLine(end.summary)]) console.log(`  ${line}`);
  }
  process.exitCode = end.summary.collections.every(({ state }) => state === 'completed') ? 0 : 1;
}
