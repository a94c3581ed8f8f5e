/**
 * What starting a run or a plan takes, shared by `start`, `watch`, `dlq redrive` and `start --plan`:
 * the records file checked before anything starts, the run's id, and where to look at it.
 */
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { CLI_SEARCH_ATTRIBUTE_TYPES, missingSearchAttributes } from '../search-attributes';
import type { AwsClients } from '../aws/clients';
import { HEAD_BYTES, recordsFileProblem } from '../records/reader';
import { UsageError } from './common';
import { describeS3Failure } from './files';

/** The id names a run that exists (or existed) already. */
export class RunExistsError extends UsageError {
  constructor(readonly workflowId: string) {
    super(`a run with the id ${workflowId} exists already`);
  }
}

/** Where a person looks at the run: the local stack's Web UI, or whatever TEMPORAL_UI_URL names. */
export function runUrl(client: Client, workflowId: string): string | undefined {
  const ui = process.env.TEMPORAL_UI_URL;
  return ui
    ? `${ui.replace(/\/$/, '')}/namespaces/${client.options.namespace}/workflows/${encodeURIComponent(workflowId)}`
    : undefined;
}

/**
 * The records file is there, readable, and a records file by its head: what is wrong with a file
 * as a whole (empty, UTF-16, compressed, not JSON) is said now, in one line, not in the DLQ of a
 * run that has started. Only the head is read: a file of any size costs one small GET.
 */
export async function assertRecordsFile(
  aws: AwsClients,
  { Bucket, Key }: { Bucket: string; Key: string },
): Promise<string | undefined> {
  const what = `the records file s3://${Bucket}/${Key}`;
  try {
    const { ContentLength = 0, ETag } = await aws.s3.send(new HeadObjectCommand({ Bucket, Key }));
    // S3 answers a range of an empty object with an error, so an empty one is not asked for its head.
    const head =
      ContentLength === 0
        ? Buffer.alloc(0)
        : Buffer.from(
            (await (
              await aws.s3.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=0-${HEAD_BYTES - 1}` }))
            ).Body?.transformToByteArray()) ?? [],
          );
    const problem = recordsFileProblem(head, ContentLength <= HEAD_BYTES);
    if (problem !== undefined) throw new UsageError(`${what} ${problem}`);
    return ETag;
  } catch (error) {
    throw describeS3Failure(error, what, 'read') ?? error;
  }
}

export function defaultWorkflowId(target: string, now = new Date()): string {
  return `reindex-${target}-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}

/**
 * The namespace has every search attribute a run sets: without one, each workflow task of the run
 * would be refused and the run would never move. Said now, with the command that registers them.
 */
export async function assertSearchAttributes(client: Client): Promise<void> {
  const missing = await missingSearchAttributes(client.connection, client.options.namespace);
  if (missing.length === 0) return;
  const names = missing.map(({ name, type }) => `--name ${name} --type ${CLI_SEARCH_ATTRIBUTE_TYPES[type]}`).join(' ');
  throw new UsageError(
    `namespace ${client.options.namespace} lacks the search attributes ${missing.map(({ name }) => name).join(', ')}: register them (temporal operator search-attribute create --namespace ${client.options.namespace} ${names})`,
  );
}
