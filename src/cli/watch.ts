/**
 * `reindex watch`: the original's drop-a-file start. S3 notifies the intake queue of every records
 * file uploaded under a prefix; watch starts one run per file. A run's id is derived from the
 * upload, so a notification delivered twice, or read by two watchers, starts one run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteMessageCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { AwsClients } from '../aws/clients';
import type { Config } from '../domain/config';
import { intakeRunId, parseIntakeMessage, type UploadedFile } from '../domain/intake';
import { UsageError, withClients } from './common';
import { addRunSettings, type RunSettingsFlags, startOptions, startRun } from './runs';
import { RunExistsError } from './starting';

/** Long enough to start the runs of one message; a watcher that dies leaves it to the next one. */
const VISIBILITY_SECONDS = 120;
const RETRY_AFTER_MS = 10_000;

type Clients = { config: Config; aws: AwsClients; client: Client };

interface WatchFlags extends RunSettingsFlags {
  target: string;
  prefix: string;
  once?: boolean;
  json?: boolean;
}

type FileOutcome = { started: string } | { exists: string } | { refused: string };

function report(flags: WatchFlags, event: Record<string, unknown>, text: string): void {
  console.log(flags.json ? JSON.stringify(event) : text);
}

async function startFor(clients: Clients, flags: WatchFlags, file: UploadedFile): Promise<FileOutcome> {
  const workflowId = intakeRunId(file);
  try {
    await startRun(
      clients.client,
      clients.aws,
      startOptions(flags, {
        manifest: { Bucket: file.Bucket, Key: file.Key },
        target: flags.target,
        id: workflowId,
        taskQueue: clients.config.taskQueue,
      }),
    );
    return { started: workflowId };
  } catch (error) {
    if (error instanceof RunExistsError) return { exists: workflowId };
    // The file is gone or unreadable: no retry of this notification can start it.
    if (error instanceof UsageError) return { refused: error.message };
    throw error;
  }
}

/** Starts the runs of one intake message's files, then deletes the message. */
async function handle(clients: Clients, flags: WatchFlags, queueUrl: string, message: Message): Promise<void> {
  const parsed = parseIntakeMessage(message.Body ?? '', flags.prefix);
  if ('malformed' in parsed) {
    console.error(`reindex: intake message ${message.MessageId} dropped: ${parsed.malformed}`);
  } else if ('files' in parsed) {
    for (const file of parsed.files) {
      const uri = `s3://${file.Bucket}/${file.Key}`;
      const outcome = await startFor(clients, flags, file);
      if ('started' in outcome)
        report(flags, { file: uri, started: outcome.started }, `started ${outcome.started} for ${uri}`);
      else if ('exists' in outcome)
        report(flags, { file: uri, exists: outcome.exists }, `${uri} started ${outcome.exists} already`);
      else report(flags, { file: uri, refused: outcome.refused }, `${uri} not started: ${outcome.refused}`);
    }
  }
  await clients.aws.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
}

async function watch(clients: Clients, flags: WatchFlags, stopped: () => boolean): Promise<void> {
  const queueUrl = clients.config.intakeQueueUrl;
  if (!queueUrl) throw new UsageError('REINDEX_INTAKE_QUEUE_URL is not set: watch needs the intake queue');
  if (!flags.json)
    console.log(
      `watching ${queueUrl} for records files under ${flags.prefix || 'any prefix'}; runs go into ${flags.target}`,
    );
  while (!stopped()) {
    try {
      const { Messages = [] } = await clients.aws.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: flags.once ? 1 : 20,
          VisibilityTimeout: VISIBILITY_SECONDS,
        }),
      );
      if (Messages.length === 0 && flags.once) return;
      for (const message of Messages) await handle(clients, flags, queueUrl, message);
    } catch (error) {
      // Temporal or AWS out of reach for a moment: a message not deleted shows again after its visibility timeout.
      if (flags.once) throw error;
      console.error(
        `reindex: watch goes on after an error (${error instanceof Error ? error.message : String(error)}); retrying in ${RETRY_AFTER_MS / 1000} s`,
      );
      await sleep(RETRY_AFTER_MS);
    }
  }
}

export function registerWatchCommand(program: Command): void {
  addRunSettings(
    program
      .command('watch')
      .description('start a run for every records file uploaded under a prefix (S3 notifications on the intake queue)')
      .requiredOption('--target <collection>', 'the collection every run indexes into')
      .option('--prefix <prefix>', 'only records files whose key starts with this', 'records/')
      .option('--once', 'stop when the intake queue is empty instead of waiting for more')
      .option('--json', 'print one JSON object per file'),
  ).action(async (flags: WatchFlags) => {
    let stop = false;
    const onSignal = () => {
      stop = true;
    };
    // Ctrl-C lets the files of the message in hand start; the next receive does not come.
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await withClients((clients) => watch(clients, flags, () => stop));
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}
