/**
 * `reindex dlq list|show|redrive`: the review DLQ seen by run and reason. Reading leaves the queue as
 * it was; `redrive` starts a new run from chosen messages and deletes them only once that run exists,
 * with its records file in S3, so a message is never lost between the queue and the run.
 */
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BatchGetCommand, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Client } from '@temporalio/client';
import { type Command, Option } from 'commander';
import { type AwsClients, httpStatusOf } from '../aws/clients';
import { sendMessages } from '../aws/sqs';
import { checkedRecords } from '../records/pipeline';
import { readRecords } from '../records/reader';
import { createResultsDlq } from '../stores/results-dlq';
import type { Config } from '../domain/config';
import { printable, printableJson } from '../domain/identifiers';
import { addReasonCounts, ReasonCode, type ReasonCounts } from '../domain/reasons';
import { faceIdsOfMessage, faceIdsOfRecords, planRedrive } from '../domain/redrive';
import { redriveRecordsKey } from '../shared';
import type { drainResultsQueue } from '../workflows';
import { numberIn, UsageError, withAws, withClients } from './common';
import { openInput, writeLocalFile } from './files';
import { holdReviewMessages, type ReviewFilter, type ReviewMessage } from './review-dlq';
import {
  addRunSettings,
  followStartedRun,
  readRunSummary,
  type RunSettingsFlags,
  startOptions,
  startRun,
} from './runs';
import { RunExistsError } from './starting';

interface FilterFlags {
  run?: string;
  reason?: ReasonCode[];
}

const reasonOption = () =>
  new Option('--reason <code...>', 'only messages with these reasons').choices(Object.values(ReasonCode));

function filterOf(flags: FilterFlags): ReviewFilter {
  return { runId: flags.run, reasons: flags.reason };
}

function describeFilter(flags: FilterFlags): string {
  return (
    [flags.run && `of run ${flags.run}`, flags.reason && `with reason ${flags.reason.join(' or ')}`]
      .filter(Boolean)
      .join(' ') || 'at all'
  );
}

function imageOf({ item }: ReviewMessage): string {
  return item.Bucket && item.Key ? `s3://${item.Bucket}/${item.Key}` : `record ${item.recordIndex ?? '?'}`;
}

function countByReason(messages: ReviewMessage[]): ReasonCounts {
  const counts: ReasonCounts = {};
  for (const { item } of messages) addReasonCounts(counts, item.reason);
  return counts;
}

/**
 * Reads a records file (JSON Lines or a JSON array) from S3 or a local path; every entry must be
 * JSON. A record its checks refuse is kept as written: the redrive's run refuses it with its reason.
 */
async function readRecordsFile(aws: AwsClients, location: string): Promise<unknown[]> {
  const body = await openInput(aws.s3, location, 'the records file');
  const records: unknown[] = [];
  try {
    for await (const outcome of checkedRecords(readRecords(body))) {
      if (outcome.kind === 'malformed')
        throw new UsageError(`${location}: entry ${outcome.index + 1} is not JSON: ${outcome.detail.slice(0, 80)}`);
      records.push(outcome.value);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`cannot read ${location}: ${(error as Error).message}`);
  }
  return records;
}

/**
 * The run id a redrive of these records gets: the same records, the same run, so a retried redrive starts nothing new.
 */
function redriveRunId(run: string, recordsText: string): string {
  return `${run}-redrive-${createHash('sha256').update(recordsText).digest('hex').slice(0, 12)}`;
}

/** The old faces that have a row in the results table: migrated, by this run or an earlier redrive. */
async function migratedFaces(aws: AwsClients, table: string, faceIds: string[]): Promise<Set<string>> {
  const migrated = new Set<string>();
  for (let start = 0; start < faceIds.length; start += BATCH_GET_KEYS) {
    let keys: Record<string, unknown>[] | undefined = faceIds
      .slice(start, start + BATCH_GET_KEYS)
      .map((OldFaceId) => ({ OldFaceId }));
    while (keys?.length) {
      const { Responses, UnprocessedKeys }: BatchGetCommandOutput = await aws.dynamodb.send(
        new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ProjectionExpression: 'OldFaceId' } } }),
      );
      for (const row of Responses?.[table] ?? []) migrated.add(String(row.OldFaceId));
      keys = UnprocessedKeys?.[table]?.Keys;
    }
  }
  return migrated;
}

/** A run that holds the redrive's records: one that runs or ran to its end; a failed one does not. */
async function assertRunHolds(client: Client, workflowId: string): Promise<void> {
  const { status } = await client.workflow.getHandle(workflowId).describe();
  if (status.name !== 'RUNNING' && status.name !== 'COMPLETED') {
    throw new UsageError(
      `run ${workflowId} of these records exists and is ${status.name.toLowerCase()}; pass --id to redrive them in a new run`,
    );
  }
}

/** BatchGetItem takes at most 100 keys. */
const BATCH_GET_KEYS = 100;

interface RedriveFlags extends FilterFlags, RunSettingsFlags {
  messageId?: string[];
  target?: string;
  records?: string;
  dryRun?: boolean;
  out?: string;
  id?: string;
  wait?: boolean;
  json?: boolean;
}

async function redrive(
  clients: { config: Config; aws: AwsClients; client: Client },
  flags: RedriveFlags,
): Promise<void> {
  const { config, aws, client } = clients;
  const held = await holdReviewMessages(aws.sqs, config.reviewDlqUrl, filterOf(flags));
  try {
    const chosen = flags.messageId
      ? held.messages.filter((message) => flags.messageId?.includes(message.messageId))
      : held.messages;
    if (chosen.length === 0)
      throw new UsageError(`no message in the review DLQ ${flags.messageId ? 'has those ids' : describeFilter(flags)}`);
    const runs = new Set(chosen.map((message) => message.item.runId));
    if (runs.size > 1 && !flags.target) {
      throw new UsageError(
        `the chosen messages come from ${runs.size} runs, each with its own target: choose one with --run, or name the target with --target`,
      );
    }
    // A face with a row was migrated since its message was sent (by an interrupted redrive, say):
    // it goes, and is not indexed again.
    const migrated = await migratedFaces(aws, config.resultsTable, [...new Set(chosen.flatMap(faceIdsOfMessage))]);
    const done = chosen.filter((message) => {
      const ids = faceIdsOfMessage(message);
      return ids.length > 0 && ids.every((id) => migrated.has(id));
    });
    const doneIds = new Set(done.map((message) => message.messageId));
    const plan = planRedrive(chosen.filter((message) => !doneIds.has(message.messageId)));
    // In a stable order, so the same messages make the same records file and the same run id.
    let records = plan.records
      .map(({ record }) => record)
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    let covered = plan.records.flatMap(({ messageIds }) => messageIds);
    if (flags.records) {
      // An operator's fixed copy answers for a message only if it holds every face the message names.
      records = await readRecordsFile(aws, flags.records);
      const faceIds = faceIdsOfRecords(records);
      const redrivable = new Set([...covered, ...plan.fixable]);
      covered = chosen
        .filter((message) => redrivable.has(message.messageId))
        .filter((message) => {
          const ids = faceIdsOfMessage(message);
          return ids.length > 0 && ids.every((id) => faceIds.has(id));
        })
        .map((message) => message.messageId);
    }
    const kept = chosen.length - covered.length - done.length;
    const recordsText = records.map((record) => JSON.stringify(record)).join('\n') + '\n';

    if (flags.dryRun) {
      if (flags.out)
        await writeLocalFile(flags.out, recordsText).catch((error: Error) => {
          throw new UsageError(`cannot write ${flags.out}: ${error.message}`);
        });
      const result = {
        messages: chosen.length,
        redrivable: covered.length,
        records: records.length,
        notRedrivable: plan.notRedrivable,
        out: flags.out,
      };
      if (flags.json) console.log(JSON.stringify(result));
      else {
        console.log(
          `would redrive ${covered.length} of ${chosen.length} messages as ${records.length} records${flags.out ? `, written to ${flags.out}` : ''}`,
        );
        for (const { messageId, why } of plan.notRedrivable) console.log(`  not redrivable ${messageId}: ${why}`);
      }
      return;
    }
    if (covered.length === 0 && done.length === 0) {
      throw new UsageError(
        `none of the ${chosen.length} chosen messages can be redriven${plan.notRedrivable[0] ? ` (${plan.notRedrivable[0].why})` : ''}`,
      );
    }
    if (covered.length === 0) {
      const removed = await held.deleteAndRelease(doneIds);
      console.log(
        flags.json
          ? JSON.stringify({ removed: removed.deleted, alreadyMigrated: done.length })
          : `removed ${removed.deleted} messages whose faces were migrated already; nothing to redrive`,
      );
      return;
    }

    const [firstRun = 'dlq'] = runs;
    const original = await readRunSummary(aws, config, firstRun);
    const target = flags.target ?? original?.targetCollectionId;
    if (!target)
      throw new UsageError(
        'name the collection to index into with --target: the run the messages came from left no summary',
      );
    const workflowId = flags.id ?? redriveRunId(firstRun, recordsText);
    const manifest = { Bucket: config.bucket, Key: redriveRecordsKey(workflowId) };
    // Written once: if an earlier attempt of this redrive started the run, the run is reading this file.
    await aws.s3
      .send(new PutObjectCommand({ ...manifest, Body: recordsText, IfNoneMatch: '*' }))
      .catch((error: unknown) => {
        if (httpStatusOf(error) !== 412) throw error;
      });
    let started: { workflowId: string; url: string | undefined };
    try {
      const settings = startOptions(
        { ...flags, source: flags.source ?? original?.sourceCollectionId },
        { manifest, target, id: workflowId, taskQueue: config.taskQueue },
      );
      started = await startRun(client, aws, {
        ...settings,
        options: { ...settings.options, indexingScope: workflowId },
      });
    } catch (error) {
      // The same records started this run before the redrive was interrupted: the run has them, unless it failed.
      if (!(error instanceof RunExistsError) || flags.id) throw error;
      await assertRunHolds(client, workflowId);
      started = { workflowId, url: undefined };
    }
    const removed = await held.deleteAndRelease([...covered, ...doneIds]);
    if (!flags.json) {
      console.log(
        `redrove ${covered.length} messages as ${records.length} records (s3://${manifest.Bucket}/${manifest.Key}); removed ${removed.deleted} from the review DLQ`,
      );
      if (done.length > 0) console.log(`  ${done.length} of them named faces migrated already, and were only removed`);
      if (kept > 0)
        console.log(
          `  left in the review DLQ: ${kept}${plan.notRedrivable.length ? ` (${plan.notRedrivable.map((entry) => entry.why).join('; ')})` : ''}`,
        );
      if (removed.failed > 0)
        console.log(
          `  could not remove ${removed.failed}: they will show again; a second redrive finds their faces migrated and only removes them`,
        );
    }
    await followStartedRun(clients, started, flags);
  } finally {
    await held.release();
  }
}

interface RequeueFlags {
  run?: string;
  dryRun?: boolean;
  wait?: boolean;
  json?: boolean;
}

/**
 * Sends the results DLQ's rows back to the results queue, deletes them from the DLQ only once they
 * are there (a copy drained twice is written once), and starts a drain to write them.
 */
async function requeueResults(
  { config, aws, client }: { config: Config; aws: AwsClients; client: Client },
  flags: RequeueFlags,
): Promise<void> {
  const found = await createResultsDlq({ sqs: aws.sqs, s3: aws.s3, config }).holdRows(flags.run);
  if (found === undefined)
    throw new UsageError(
      `the results queue ${config.resultsQueueUrl} has no dead-letter queue (RedrivePolicy): there is nothing to send back`,
    );
  try {
    const rows = found.rows.map(({ row }) => row);
    const others = found.held.messages.length - rows.length;
    const ofWhat = `${flags.run ? ` of run ${flags.run}` : ''}`;
    if (flags.dryRun || rows.length === 0) {
      console.log(
        flags.json
          ? JSON.stringify({ rows: rows.length, otherMessages: others })
          : `${flags.dryRun ? 'would send back' : 'nothing to send back:'} ${rows.length} result rows${ofWhat} (the results DLQ holds ${others} other messages)`,
      );
      return;
    }
    // Sent as they came, signature and all: the drain checks them as it checked them first.
    await sendMessages(
      aws.sqs,
      config.resultsQueueUrl,
      found.rows.map(({ message }) => ({
        MessageBody: message.Body ?? '',
        MessageAttributes: message.MessageAttributes,
      })),
    );
    const removed = await found.held.deleteAndRelease(found.rows.map(({ message }) => message.MessageId ?? ''));
    const workflowId = `requeue-results-${createHash('sha256')
      .update(found.rows.map(({ message }) => message.MessageId).join(','))
      .digest('hex')
      .slice(0, 12)}`;
    const handle = await client.workflow.start<typeof drainResultsQueue>('drainResultsQueue', {
      taskQueue: config.taskQueue,
      workflowId,
      args: [],
    });
    const drained = flags.wait ? await handle.result() : undefined;
    if (flags.json) {
      console.log(
        JSON.stringify({
          rows: rows.length,
          removed: removed.deleted,
          drain: workflowId,
          ...(drained ? { written: drained.written } : {}),
        }),
      );
      return;
    }
    console.log(
      `sent back ${rows.length} result rows${ofWhat} to the results queue; drain ${workflowId} writes them${drained ? `: ${drained.written} rows written` : ''}`,
    );
    if (removed.failed > 0)
      console.log(
        `  could not remove ${removed.failed} from the results DLQ: a second requeue sends them again, and they are written once`,
      );
  } finally {
    await found.held.release();
  }
}

export function registerDlqCommands(program: Command): void {
  const dlq = program
    .command('dlq')
    .description(
      'review what runs could not migrate (the review DLQ by run and reason), and send back rows the results DLQ holds',
    );

  dlq
    .command('list')
    .description("count the review DLQ's messages by reason and list them; the queue stays as it was")
    .option('--run <workflow-id>', 'only messages of this run')
    .addOption(reasonOption())
    .option(
      '--limit <n>',
      'list at most this many messages (counts cover all)',
      numberIn('--limit', 0, 1_000_000, true),
      50,
    )
    .option('--json', 'print JSON: counts and the listed messages')
    .action(async (flags: FilterFlags & { limit: number; json?: boolean }) => {
      await withAws(async ({ config, aws }) => {
        const held = await holdReviewMessages(aws.sqs, config.reviewDlqUrl, filterOf(flags));
        await held.release();
        const listed = held.messages.slice(0, flags.limit);
        const byReason = countByReason(held.messages);
        if (flags.json) {
          console.log(JSON.stringify({ total: held.messages.length, byReason, messages: listed }));
          return;
        }
        console.log(`${held.messages.length} messages in the review DLQ ${describeFilter(flags)}`);
        for (const [reason, count] of Object.entries(byReason)) console.log(`  ${reason} ${count}`);
        for (const message of listed) {
          const face = message.item.face ? ` face ${message.item.face.FaceId}` : '';
          console.log(
            printable(
              `${message.messageId}  ${message.item.runId}  ${message.item.reason}  ${imageOf(message)}${face}  ${message.item.detail}`,
            ),
          );
        }
        if (listed.length < held.messages.length)
          console.log(`(listed ${listed.length} of ${held.messages.length}; --limit lists more)`);
      });
    });

  dlq
    .command('show')
    .description('print one message of the review DLQ in full')
    .argument('<message-id>')
    .action(async (messageId: string) => {
      await withAws(async ({ config, aws }) => {
        const held = await holdReviewMessages(aws.sqs, config.reviewDlqUrl, {});
        await held.release();
        const message = held.messages.find((candidate) => candidate.messageId === messageId);
        if (!message) throw new UsageError(`no message of the review DLQ has the id ${messageId}`);
        console.log(printableJson(message));
      });
    });

  dlq
    .command('requeue-results')
    .description(
      'send the result rows the results DLQ holds back to the results queue, and drain them into the results table',
    )
    .option('--run <workflow-id>', 'only rows of this run')
    .option('--dry-run', 'send nothing: count the rows that would go')
    .option('--wait', 'wait until the drain has written them')
    .option('--json', 'print JSON')
    .action(async (flags: RequeueFlags) => {
      await withClients((clients) => requeueResults(clients, flags));
    });

  addRunSettings(
    dlq
      .command('redrive')
      .description(
        'start a new run from chosen messages (after their images or boxes were fixed); they leave the DLQ once the run has them',
      )
      .option('--run <workflow-id>', 'messages of this run')
      .addOption(reasonOption())
      .option('--message-id <id...>', 'only these messages')
      .option('--target <collection>', "the collection to index into (default: the target of the messages' run)")
      .option(
        '--records <file>',
        'a fixed copy of the records (a path or s3://): a message is redriven only if it holds every face the message names',
      )
      .option('--dry-run', 'start nothing, delete nothing: say what would be redriven')
      .option(
        '--out <file>',
        'with --dry-run: write the records a redrive would use here, to fix and pass back with --records',
      ),
  )
    .option(
      '--id <workflow-id>',
      "the new run's id (default: derived from the messages, so a repeated redrive starts no second run)",
    )
    .option('--wait', 'wait for the new run to end and print its summary')
    .option('--json', 'print JSON: the last line of stdout is one object')
    .action(async (flags: RedriveFlags) => {
      if (flags.out && !flags.dryRun) throw new UsageError('--out goes with --dry-run');
      if (!flags.run && !flags.messageId && !flags.reason)
        throw new UsageError('choose the messages with --run, --reason or --message-id');
      await withClients((clients) => redrive(clients, flags));
    });
}
