/**
 * `reindex start|status|pause|resume|cancel`: a run of the reindexCollection workflow, seen from
 * the operator's terminal. Input errors (a bad flag, a records file that is not there or is no
 * records file, Temporal out of reach) are UsageErrors: one line on stderr and exit code 2.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import { GetObjectCommand, NoSuchBucket, NoSuchKey } from '@aws-sdk/client-s3';
import {
  type Client,
  type WorkflowExecutionDescription,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { type AwsClients, httpStatusOf } from '../aws/clients';
import type { Config } from '../domain/config';
import {
  type BreakerTrip,
  DEFAULT_PAUSE_AFTER_FAILURES,
  DEFAULT_RETRY_MINUTES,
  pauseSignal,
  progressQuery,
  reportKey,
  type PlannedRun,
  type PlanProgress,
  type PlanRunSettings,
  type ReindexCollectionInput,
  type ReindexOptions,
  resumeSignal,
  type RunProgress,
  type RunSummary,
  STARTING_SEARCH_ATTRIBUTES,
  startingSearchAttributes,
} from '../shared';
import type { reindexCollection } from '../workflows';
import {
  encrypts,
  numberIn,
  parseS3Uri,
  recordsFileOf,
  UsageError,
  withClients,
  withRecordsFileOption,
} from './common';
import {
  assertNotOldCollections,
  DEFAULT_MAX_COLLECTIONS,
  readCollectionsOfRecords,
  runsOfCollections,
  notSkipped,
  type SkippedCollection,
  skippedLine,
  skippedTargets,
} from './collections-of-records';
import {
  PLAN_WORKFLOW_TYPE,
  planLines,
  planProgress,
  plannedRuns,
  planTotalsLine,
  printPlanEnd,
  startPlan,
  waitForPlan,
} from './plan-runs';
import { assertRecordsFile, assertSearchAttributes, defaultWorkflowId, RunExistsError, runUrl } from './starting';
import { describeRate, rateInForce, setRate } from '../index-faces-rate';

export interface StartOptions {
  manifest: { Bucket: string; Key: string };
  target: string;
  source: string | undefined;
  /** The source collection's region, when it is not the worker's. */
  sourceRegion: string | undefined;
  options: ReindexOptions;
  tps: number | undefined;
  batchSize: number;
  batchesInFlight: number;
  imagesInFlight: number;
  retryMinutes: number;
  pauseAfterFailures: number;
  force: boolean;
  id: string | undefined;
  /** The deployment's workflow task queue (REINDEX_TASK_QUEUE). */
  taskQueue: string;
}

/** The settings of a run that are not its records file, target or source: a plan's runs share them. */
export function runSettingsOf(
  start: Omit<StartOptions, 'manifest' | 'target' | 'source' | 'id' | 'taskQueue' | 'tps'>,
): PlanRunSettings {
  return {
    ...(start.sourceRegion === undefined ? {} : { sourceRegion: start.sourceRegion }),
    options: start.options,
    force: start.force,
    batchSize: start.batchSize,
    batchesInFlight: start.batchesInFlight,
    imagesInFlightPerBatch: start.imagesInFlight,
    batchesPerExecution: 500,
    retryMinutes: start.retryMinutes,
    pauseAfterFailures: start.pauseAfterFailures,
  };
}

export async function startRun(
  client: Client,
  aws: AwsClients,
  start: StartOptions,
): Promise<{ workflowId: string; url: string | undefined }> {
  // The run reads the version looked at here: a file replaced before or while it is split fails the run.
  const manifestETag = await assertRecordsFile(aws, start.manifest);
  await assertSearchAttributes(client);
  // The rate is the task queue's, held by the Temporal server for every worker and run until reset.
  if (start.tps !== undefined) {
    await setRate(
      client.workflowService,
      { namespace: client.options.namespace, identity: client.options.identity, taskQueue: start.taskQueue },
      start.tps,
      `reindex start --tps ${start.tps}`,
    );
  }
  const workflowId = start.id ?? defaultWorkflowId(start.target);
  const input: ReindexCollectionInput = {
    ...runSettingsOf(start),
    manifest: start.manifest,
    ...(manifestETag === undefined ? {} : { manifestETag }),
    targetCollectionId: start.target,
    sourceCollectionId: start.source,
  };
  await client.workflow
    .start<typeof reindexCollection>('reindexCollection', {
      taskQueue: start.taskQueue,
      workflowId,
      // A run id names one run for good: a finished run's id started again would mix two runs' results.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      args: [input],
      staticSummary: `s3://${start.manifest.Bucket}/${start.manifest.Key} → ${start.target}`,
      staticDetails: [
        `**records** s3://${start.manifest.Bucket}/${start.manifest.Key}`,
        `**target** ${start.target}${start.source ? ` (from ${start.source})` : ''}`,
        `**IoU threshold** ${start.options.iouThreshold}, **quality filter** ${start.options.qualityFilter}, **unmatched new faces** ${start.options.unmatched}`,
      ].join('\n\n'),
      // Search attributes are never encrypted: an encrypted run under an id of the operator's own
      // keeps its target's name out of the clear, as its id does.
      typedSearchAttributes:
        start.id !== undefined && encrypts(client)
          ? [...STARTING_SEARCH_ATTRIBUTES]
          : startingSearchAttributes(start.target),
    })
    .catch((error: unknown) => {
      if (error instanceof WorkflowExecutionAlreadyStartedError) throw new RunExistsError(workflowId);
      throw error;
    });
  return { workflowId, url: runUrl(client, workflowId) };
}

/** The summary a run wrote to S3 at its end (a cancelled run too); undefined when there is none. */
export async function readRunSummary(
  aws: AwsClients,
  config: Config,
  workflowId: string,
): Promise<RunSummary | undefined> {
  const Key = reportKey(workflowId, 'json');
  const uri = `s3://${config.bucket}/${Key}`;
  let text: string;
  try {
    const { Body } = await aws.s3.send(new GetObjectCommand({ Bucket: config.bucket, Key }));
    text = (await Body?.transformToString()) ?? '';
  } catch (error) {
    if (error instanceof NoSuchBucket) throw new UsageError(`the bucket ${config.bucket} does not exist`);
    if (error instanceof NoSuchKey || httpStatusOf(error) === 404) return undefined;
    if (httpStatusOf(error) === 403) throw new UsageError(`the summary ${uri} may not be read with these credentials`);
    throw error;
  }
  try {
    const summary = JSON.parse(text) as RunSummary;
    if (typeof summary.images !== 'number' || typeof summary.dlqByReason !== 'object')
      throw new Error('not a run summary');
    return summary;
  } catch {
    throw new UsageError(`${uri} is not a run summary`);
  }
}

export type RunEnd =
  { status: 'completed' | 'cancelled'; summary: RunSummary | undefined } | { status: 'failed'; message: string };

/** Waits for the run to end, following continue-as-new. */
export async function waitForRun(client: Client, aws: AwsClients, config: Config, workflowId: string): Promise<RunEnd> {
  try {
    const summary = await client.workflow.getHandle<typeof reindexCollection>(workflowId).result();
    return { status: 'completed', summary };
  } catch (error) {
    if (error instanceof WorkflowFailedError) {
      const description = await client.workflow.getHandle(workflowId).describe();
      if (description.status.name === 'CANCELLED') {
        const summary = await readRunSummary(aws, config, workflowId);
        return { status: 'cancelled', summary: summary && { ...summary, status: 'cancelled' } };
      }
      // WorkflowFailedError → the workflow's failure (an ActivityFailure, say) → its cause, which says why.
      const failure = error.cause;
      const cause = failure?.cause instanceof Error ? failure.cause : failure;
      return { status: 'failed', message: cause?.message ?? error.message };
    }
    throw error;
  }
}

export interface RunStatus {
  workflowId: string;
  status: string;
  progress: RunProgress | undefined;
  /** Why a running run gave no progress: no worker answered its query, or its answer could not be read. */
  unanswered?: string;
  url: string | undefined;
}

/** Where the run is; `described` saves describing it again when the caller just did. */
export async function runStatus(
  client: Client,
  workflowId: string,
  described?: WorkflowExecutionDescription,
): Promise<RunStatus> {
  const handle = client.workflow.getHandle<typeof reindexCollection>(workflowId);
  const description = described ?? (await describeRun(client, workflowId));
  const url = runUrl(client, workflowId);
  if (description.status.name !== 'RUNNING')
    return { workflowId, status: description.status.name, progress: undefined, url };
  try {
    return { workflowId, status: 'RUNNING', progress: await handle.query(progressQuery), url };
  } catch (error) {
    // The run may have ended between the two calls; if it still runs, no worker answered, or this
    // client could not read the answer (another encryption key): the error says which.
    const now = await describeRun(client, workflowId);
    const unanswered =
      now.status.name === 'RUNNING'
        ? `the progress query got no answer (${error instanceof Error ? error.message : String(error)})`
        : undefined;
    return { workflowId, status: now.status.name, progress: undefined, unanswered, url };
  }
}

async function describeRun(client: Client, workflowId: string) {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new UsageError(`no run has the id ${workflowId}`);
    throw error;
  }
}

export async function signalRun(
  client: Client,
  workflowId: string,
  action: 'pause' | 'resume' | 'cancel',
): Promise<void> {
  const description = await describeRun(client, workflowId);
  if (description.status.name !== 'RUNNING')
    throw new UsageError(`run ${workflowId} is ${description.status.name.toLowerCase()}, not running`);
  const handle = client.workflow.getHandle(workflowId);
  if (action === 'cancel') await handle.cancel();
  else await handle.signal(action === 'pause' ? pauseSignal : resumeSignal);
}

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined) return 'unknown';
  const whole = Math.round(seconds);
  return whole < 120 ? `${whole} s` : whole < 7200 ? `${Math.round(whole / 60)} min` : `${(whole / 3600).toFixed(1)} h`;
}

/** Why a run paused itself, and what to do: fix the cause, then resume. */
function pausedByLine({ reason, images, batch, firstError }: BreakerTrip): string {
  return `paused itself: ${images} images in a row of batch ${batch + 1} failed with ${reason}; the first: ${firstError.replace(/\.$/, '')}. Fix the cause, then \`reindex resume\`: those images run again`;
}

const HELD_FOR_RESULTS = 'holding back new images until the results queue catches up';

/** The results queue as the run sees it: rows written, the longest a row waited, and the holds it cost. */
function resultsLine({
  resultsWritten,
  resultsMaxWaitMs,
  resultsHolds,
}: Pick<RunSummary, 'resultsWritten' | 'resultsMaxWaitMs' | 'resultsHolds'>): string {
  const wait =
    resultsMaxWaitMs === undefined ? '' : `, the longest waited ${formatEta(resultsMaxWaitMs / 1000)} in the queue`;
  return `result rows written ${resultsWritten}${wait}${resultsHolds ? `; new images waited for them ${resultsHolds} times` : ''}`;
}

/** One line of a followed run, for logs and pipes where no bar can be drawn. */
function progressLine({
  phase,
  paused,
  pausedBy,
  heldForResults,
  totals,
  imagesTotal,
  imagesPerSecond,
  etaSeconds,
  dlq,
}: RunProgress): string {
  const state = paused
    ? ` (${pausedBy ? pausedByLine(pausedBy) : 'paused'})`
    : heldForResults
      ? ` (${HELD_FOR_RESULTS})`
      : '';
  return `${phase}${state}: ${totals.images}/${imagesTotal ?? '?'} images, ${imagesPerSecond.toFixed(1)}/s, ETA ${formatEta(etaSeconds)}, DLQ ${dlq}`;
}

/**
 * Watches a run until it ends, through continue-as-new. On a terminal a progress bar redraws in
 * place; elsewhere a line (or a JSON object) is printed whenever the figures change.
 */
export async function followRun(client: Client, workflowId: string, intervalMs: number, json: boolean): Promise<void> {
  const drawn = !json && process.stderr.isTTY;
  const bar = drawn
    ? new SingleBar({
        format: `${workflowId} [{bar}] {value}/{total} images | {rate}/s | ETA {eta} | {phase}{paused} | DLQ {dlq}`,
        stream: process.stderr,
        hideCursor: true,
      })
    : undefined;
  bar?.start(0, 0, { rate: '0.0', eta: 'unknown', phase: 'starting', paused: '', dlq: 0 });
  let last = '';
  try {
    for (;;) {
      const status = await runStatus(client, workflowId);
      if (status.status !== 'RUNNING') {
        bar?.stop();
        const end = json
          ? JSON.stringify({ workflowId, status: status.status })
          : `${workflowId}: ${status.status.toLowerCase()}`;
        console.log(end);
        process.exitCode = status.status === 'COMPLETED' ? 0 : 1;
        return;
      }
      const progress = status.progress;
      if (!progress && status.unanswered && !bar) {
        const line = json
          ? JSON.stringify({ workflowId, status: status.status, unanswered: status.unanswered })
          : `waiting: ${status.unanswered}`;
        if (line !== last) console.log(line);
        last = line;
      }
      if (progress) {
        if (bar) {
          bar.setTotal(progress.imagesTotal ?? 0);
          bar.update(progress.totals.images, {
            rate: progress.imagesPerSecond.toFixed(1),
            eta: formatEta(progress.etaSeconds),
            phase: progress.phase,
            paused: progress.paused ? ' (paused)' : '',
            dlq: progress.dlq,
          });
        } else {
          const line = json ? JSON.stringify({ workflowId, status: status.status, progress }) : progressLine(progress);
          // The rate and elapsed time move on every answer; a line is news only when the work moved.
          const news = json
            ? JSON.stringify({ ...progress, imagesPerSecond: 0, etaSeconds: 0, elapsedMs: 0 })
            : line.replace(/, [\d.]+\/s, ETA [^,]+/, '');
          if (news !== last) console.log(line);
          last = news;
        }
      }
      await sleep(intervalMs);
    }
  } finally {
    bar?.stop();
  }
}

/** The figures of a summary or of progress as lines a person reads. */
export function describeTotals(
  figures: Pick<
    RunSummary,
    'images' | 'faces' | 'matched' | 'unmatchedOld' | 'unmatchedNewDeleted' | 'unmatchedNewKept' | 'dlq' | 'dlqByReason'
  >,
): string[] {
  const reasons = Object.entries(figures.dlqByReason)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  return [
    `images ${figures.images}, old faces ${figures.faces}`,
    `matched ${figures.matched}, old faces unmatched ${figures.unmatchedOld}`,
    `new faces nobody had: ${figures.unmatchedNewDeleted} deleted, ${figures.unmatchedNewKept} kept`,
    `in the review DLQ ${figures.dlq}${reasons ? ` (${reasons})` : ''}`,
  ];
}

/** How a run indexes and matches: the flags `start`, `dlq redrive` and `watch` share. */
export interface RunSettingsFlags {
  source?: string;
  sourceRegion?: string;
  iou: number;
  tps?: number;
  qualityFilter: 'NONE' | 'AUTO' | 'LOW' | 'MEDIUM' | 'HIGH';
  maxFaces?: number;
  batchSize: number;
  batchesInFlight: number;
  imagesInFlight: number;
  retryMinutes: number;
  pauseAfterFailures: number;
  unmatched: 'delete' | 'keep';
  rowsExpireDays?: number;
  force?: boolean;
}

export function addRunSettings(command: Command): Command {
  return (
    command
      .option('--source <collection>', "the old collection: its face model must be older than the target's")
      .option('--source-region <region>', "the old collection's region, when it is not the worker's AWS_REGION")
      .option(
        '--iou <threshold>',
        'old and new boxes must overlap at least this much to match',
        numberIn('--iou', 0.01, 1, false),
        0.5,
      )
      .option(
        '--tps <n>',
        "IndexFaces calls a second across all workers (sets the task queue's rate)",
        numberIn('--tps', 0.01, 10_000, false),
      )
      .addOption(
        new Option('--quality-filter <filter>', 'IndexFaces QualityFilter')
          .choices(['NONE', 'AUTO', 'LOW', 'MEDIUM', 'HIGH'])
          .default('AUTO'),
      )
      .option(
        '--max-faces <n>',
        'IndexFaces MaxFaces: at most this many faces an image',
        numberIn('--max-faces', 1, 100, true),
      )
      // A batch's chunk travels as one activity result, which Temporal caps at 2 MB.
      .option('--batch-size <n>', 'records per batch (child workflow)', numberIn('--batch-size', 1, 1_000, true), 500)
      .option('--batches-in-flight <n>', 'batches running at once', numberIn('--batches-in-flight', 1, 100, true), 4)
      .option(
        '--images-in-flight <n>',
        'images in flight within one batch',
        numberIn('--images-in-flight', 1, 500, true),
        16,
      )
      .option(
        '--retry-minutes <n>',
        "how long an image's failures other than throttling are retried before it goes to review as RETRIES_EXHAUSTED",
        numberIn('--retry-minutes', 1, 10_080, false),
        DEFAULT_RETRY_MINUTES,
      )
      .option(
        '--pause-after-failures <n>',
        'pause the run when this many images in a row fail for one reason (0: never)',
        numberIn('--pause-after-failures', 0, 10_000, true),
        DEFAULT_PAUSE_AFTER_FAILURES,
      )
      .addOption(
        new Option('--unmatched <what>', 'new faces no old face matched: delete them or keep them')
          .choices(['delete', 'keep'])
          .default('delete'),
      )
      .option(
        '--rows-expire-days <n>',
        "each result row expires from the results table this many days after it was written (the table's time to live on ExpiresAt); never, when absent",
        numberIn('--rows-expire-days', 1, 36_500, false),
      )
      .option(
        '--force',
        "migrate even when the target's face model is not newer than the source's, and with many collections those an earlier run migrated",
      )
  );
}

/** What the flags say of a run, beside its records file, target, id and task queue. */
export function settingsOf(flags: RunSettingsFlags): Omit<StartOptions, 'manifest' | 'target' | 'id' | 'taskQueue'> {
  return {
    source: flags.source,
    sourceRegion: flags.sourceRegion,
    options: {
      iouThreshold: flags.iou,
      qualityFilter: flags.qualityFilter,
      maxFaces: flags.maxFaces,
      unmatched: flags.unmatched,
      ...(flags.rowsExpireDays === undefined ? {} : { rowsExpireDays: flags.rowsExpireDays }),
    },
    tps: flags.tps,
    batchSize: flags.batchSize,
    batchesInFlight: flags.batchesInFlight,
    imagesInFlight: flags.imagesInFlight,
    retryMinutes: flags.retryMinutes,
    pauseAfterFailures: flags.pauseAfterFailures,
    force: flags.force ?? false,
  };
}

export function startOptions(
  flags: RunSettingsFlags,
  run: { manifest: { Bucket: string; Key: string }; target: string; id: string | undefined; taskQueue: string },
): StartOptions {
  return { ...run, ...settingsOf(flags) };
}

/** What an ended run did, a line each, as `start --wait` and `status` print it. */
function summaryLines(summary: RunSummary): string[] {
  return [
    ...describeTotals(summary),
    resultsLine(summary),
    `users created ${summary.usersCreated}, faces associated ${summary.facesAssociated}, orphans deleted ${summary.orphansDeleted}${summary.unattributedKept ? `, faces kept that nothing attributes to this tool ${summary.unattributedKept}` : ''}`,
    ...(summary.resultsInDlq
      ? [
          `${summary.resultsInDlq} result rows in the results DLQ: their faces are in the target without a row; \`reindex dlq requeue-results --run ${summary.workflowId}\` sends them back`,
        ]
      : []),
    `took ${(summary.durationMs / 1000).toFixed(1)} s; report ${summary.report?.json ?? 'not written'}`,
  ];
}

/** Prints that a run started and, with `wait`, waits for its end and prints its summary; sets the exit code. */
export async function followStartedRun(
  { config, aws, client }: { config: Config; aws: AwsClients; client: Client },
  started: { workflowId: string; url: string | undefined },
  { wait, json }: { wait?: boolean; json?: boolean },
): Promise<void> {
  if (!wait) {
    if (json) console.log(JSON.stringify(started));
    else console.log(`started ${started.workflowId}${started.url ? `\nfollow it at ${started.url}` : ''}`);
    return;
  }
  if (!json)
    console.log(
      `started ${started.workflowId}${started.url ? `; follow it at ${started.url}` : ''}; waiting for it to end`,
    );
  const end = await waitForRun(client, aws, config, started.workflowId);
  if (end.status === 'failed') {
    if (json) console.log(JSON.stringify({ workflowId: started.workflowId, status: 'failed', error: end.message }));
    else console.error(`reindex: run ${started.workflowId} failed: ${end.message}`);
    process.exitCode = 1;
    return;
  }
  const summary = end.summary ?? { workflowId: started.workflowId, status: end.status };
  if (json) {
    console.log(JSON.stringify(summary));
  } else {
    console.log(`run ${started.workflowId} ${end.status}`);
    for (const line of end.summary ? summaryLines(end.summary) : []) console.log(`  ${line}`);
  }
  process.exitCode = end.status === 'completed' ? 0 : 1;
}

interface StartFlags extends RunSettingsFlags {
  records?: string;
  manifest?: string;
  target?: string;
  plan?: string;
  collectionsInFlight: number;
  maxCollections: number;
  id?: string;
  wait?: boolean;
  json?: boolean;
}

/**
 * Starts the collections' runs in one plan run, leaving out those an earlier run completed into
 * unless forced; with --wait, follows it to its end.
 */
async function startPlanRun(
  { config, client }: { config: Config; client: Client },
  flags: StartFlags,
  planned: { runs: PlannedRun[]; label: string; skipped: SkippedCollection[] },
): Promise<void> {
  const skipped = planned.skipped.map(skippedLine);
  if (!flags.json) for (const line of skipped) console.log(line);
  if (planned.runs.length === 0) {
    if (flags.json) console.log(JSON.stringify({ started: false, skipped }));
    else console.log(`nothing to migrate: every collection of ${planned.label} was migrated before`);
    return;
  }
  if (flags.tps !== undefined) {
    await setRate(
      client.workflowService,
      { namespace: client.options.namespace, identity: client.options.identity, taskQueue: config.taskQueue },
      flags.tps,
      `reindex start --tps ${flags.tps}`,
    );
  }
  const collections = planned.runs;
  const started = await startPlan(client, {
    collections,
    settings: runSettingsOf(settingsOf(flags)),
    collectionsInFlight: flags.collectionsInFlight,
    id: flags.id,
    taskQueue: config.taskQueue,
    planFile: planned.label,
  });
  if (!flags.wait) {
    if (flags.json) console.log(JSON.stringify({ ...started, skipped }));
    else
      console.log(
        `started plan ${started.workflowId}: ${collections.length} collections${started.url ? `\nfollow it at ${started.url}` : ''}`,
      );
    return;
  }
  if (!flags.json)
    console.log(
      `started plan ${started.workflowId}: ${collections.length} collections${started.url ? `; follow it at ${started.url}` : ''}; waiting for it to end`,
    );
  printPlanEnd(started.workflowId, await waitForPlan(client, started.workflowId), flags.json ?? false);
}

/** The plan file's collections, less those migrated before. */
async function planOfFile({ config, aws }: { config: Config; aws: AwsClients }, file: string, force: boolean) {
  const runs = await plannedRuns(aws, file);
  const targets = runs.map(({ targetCollectionId }) => targetCollectionId);
  await assertNotOldCollections(aws, config, targets, undefined);
  const skipped = await skippedTargets(aws, config, targets, force);
  return { runs: notSkipped(runs, ({ targetCollectionId }) => targetCollectionId, skipped), label: file, skipped };
}

/** The collections a records file's records name, each into itself, less those migrated before. */
async function planOfRecords(
  { config, aws }: { config: Config; aws: AwsClients },
  manifest: { Bucket: string; Key: string },
  flags: StartFlags,
) {
  const etag = await assertRecordsFile(aws, manifest);
  const found = await readCollectionsOfRecords(aws, manifest, etag, flags.maxCollections);
  const targets = [...found.images.keys()];
  await assertNotOldCollections(aws, config, targets, flags.source);
  const skipped = await skippedTargets(aws, config, targets, flags.force ?? false);
  const label = `s3://${manifest.Bucket}/${manifest.Key}`;
  if (found.unnamed > 0 && !flags.json)
    console.log(`${found.unnamed} records of ${label} name no collection: they go to the review DLQ as INVALID_RECORD`);
  return { runs: runsOfCollections(found, { manifest, etag, source: flags.source, skipped }), label, skipped };
}

/** Where a plan's run is: each collection's, and while it runs whether it is paused or stopping. */
async function printPlanStatus(client: Client, workflowId: string, status: string, json: boolean): Promise<void> {
  const running = status === 'RUNNING';
  // A plan whose worker does not answer (none polls, say) still has a status: its collections are then unknown.
  const asked: { progress?: PlanProgress; unanswered?: string } = running
    ? await planProgress(client, workflowId).then(
        (progress) => ({ progress }),
        (error: unknown) => ({
          unanswered: `the plan's progress query got no answer (${error instanceof Error ? error.message : String(error)})`,
        }),
      )
    : {};
  const { progress } = asked;
  const end = running ? undefined : await waitForPlan(client, workflowId);
  if (json) {
    const ended = end === undefined ? {} : end.status === 'failed' ? { error: end.message } : { summary: end.summary };
    console.log(JSON.stringify({ workflowId, status, ...asked, ...ended }));
    return;
  }
  console.log(
    `${workflowId}: plan ${status.toLowerCase()}${progress?.paused ? ', paused' : ''}${progress?.stopping ? ', stopping' : ''}`,
  );
  if (asked.unanswered) console.log(`  ${asked.unanswered}`);
  if (end?.status === 'failed') console.log(`  ${end.message}`);
  const collections = progress?.collections ?? (end && end.status !== 'failed' ? end.summary.collections : []);
  for (const line of planLines(collections)) console.log(`  ${line}`);
  if (end && end.status !== 'failed') console.log(`  ${planTotalsLine(end.summary)}`);
}

/** start, status, pause, resume, cancel: a run's life from the operator's terminal. */
export function registerRunCommands(program: Command): void {
  addRunSettings(
    withRecordsFileOption(
      program
        .command('start')
        .description(
          'start migrating the faces of a records file into the target collection, or every collection of a plan',
        ),
    )
      .option(
        '--target <collection>',
        "the collection to index into, created on the newest face model if missing (default: each record's CollectionId, a run per collection)",
      )
      .option(
        '--plan <file>',
        'instead: every collection of the plan file `reindex plan --out` wrote (local or s3://), each into its target',
      )
      .option(
        '--collections-in-flight <n>',
        "with --plan, or without --target: collections' runs at once, the smallest first",
        numberIn('--collections-in-flight', 1, 100, true),
        4,
      )
      .option(
        '--max-collections <n>',
        'without --target: the most collections the records may name',
        numberIn('--max-collections', 1, 10_000, true),
        DEFAULT_MAX_COLLECTIONS,
      ),
  )
    .option('--id <workflow-id>', "the run's workflow id (default: reindex-<target>-<time>)")
    .option('--wait', 'wait for the run to end and print its summary')
    .option('--json', 'print JSON: the last line of stdout is one object')
    .action(async (flags: StartFlags) => {
      const recordsFile = recordsFileOf(flags);
      if (flags.plan !== undefined) {
        if (recordsFile !== undefined || flags.target !== undefined || flags.source !== undefined) {
          throw new UsageError(
            "--plan names each collection's records file, target and source: it goes without --records, --target and --source",
          );
        }
        const plan = flags.plan;
        await withClients(async (clients) =>
          startPlanRun(clients, flags, await planOfFile(clients, plan, flags.force ?? false)),
        );
        return;
      }
      if (recordsFile === undefined)
        throw new UsageError(
          "say what to migrate: --records <s3-uri> (with --target, or each record's CollectionId), or --plan <file>",
        );
      const manifest = parseS3Uri(recordsFile);
      if (flags.target === undefined) {
        await withClients(async (clients) =>
          startPlanRun(clients, flags, await planOfRecords(clients, manifest, flags)),
        );
        return;
      }
      const target = flags.target;
      await withClients(async (clients) => {
        const started = await startRun(
          clients.client,
          clients.aws,
          startOptions(flags, { manifest, target, id: flags.id, taskQueue: clients.config.taskQueue }),
        );
        await followStartedRun(clients, started, flags);
      });
    });

  program
    .command('status')
    .description('show where a run is: phase, totals, rate and ETA while it runs')
    .argument('<workflow-id>')
    .option(
      '--follow',
      'keep watching until the run ends: a live progress bar on a terminal, a line per change elsewhere',
    )
    .option(
      '--interval <seconds>',
      'with --follow: how often to ask the run',
      numberIn('--interval', 0.2, 3600, false),
      2,
    )
    .option('--json', 'print the status as JSON (with --follow: one object per line)')
    .action(async (workflowId: string, flags: { follow?: boolean; interval: number; json?: boolean }) => {
      await withClients(async ({ config, aws, client }) => {
        if (flags.follow) {
          await followRun(client, workflowId, flags.interval * 1000, flags.json ?? false);
          return;
        }
        const described = await describeRun(client, workflowId);
        if (described.type === PLAN_WORKFLOW_TYPE) {
          await printPlanStatus(client, workflowId, described.status.name, flags.json ?? false);
          return;
        }
        const status = await runStatus(client, workflowId, described);
        const running = status.status === 'RUNNING';
        // The rate is the queue's, not the run's: one that cannot be read takes nothing from the status.
        const rate = running
          ? await rateInForce(client.workflowService, client.options.namespace, config.taskQueue).catch(() => undefined)
          : undefined;
        const end = running ? undefined : await waitForRun(client, aws, config, workflowId);
        if (flags.json) {
          const ended =
            end === undefined ? {} : end.status === 'failed' ? { error: end.message } : { summary: end.summary };
          console.log(JSON.stringify({ ...status, ...(rate ? { rate } : {}), ...ended }));
          return;
        }
        console.log(`${workflowId}: ${status.status.toLowerCase()}${status.url ? ` (${status.url})` : ''}`);
        if (status.unanswered) console.log(`  ${status.unanswered}`);
        if (end?.status === 'failed') console.log(`  ${end.message}`);
        else if (end?.summary) for (const line of summaryLines(end.summary)) console.log(`  ${line}`);
        const progress = status.progress;
        if (!progress) return;
        console.log(
          `  phase ${progress.phase}${progress.paused ? ', paused' : ''}${progress.stopping ? ', stopping' : ''}`,
        );
        if (progress.pausedBy) console.log(`  ${pausedByLine(progress.pausedBy)}`);
        if (progress.heldForResults) console.log(`  ${HELD_FOR_RESULTS}`);
        console.log(
          `  batches ${progress.batches.done} of ${progress.batches.total} done, ${progress.batches.running} running`,
        );
        for (const line of describeTotals({ ...progress.totals, dlq: progress.dlq, dlqByReason: progress.dlqByReason }))
          console.log(`  ${line}`);
        console.log(`  ${resultsLine(progress)}`);
        console.log(`  ${progress.imagesPerSecond.toFixed(1)} images/s, ETA ${formatEta(progress.etaSeconds)}`);
        if (rate) console.log(`  IndexFaces rate in force: ${describeRate(rate)}`);
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
}
