/**
 * What every `reindex` command shares: the usage error that ends in exit code 2, the clients a
 * command opens and closes, the collections it names, number flags with bounds, and the progress
 * bar on stderr.
 */
import {
  AccessDeniedException,
  DescribeCollectionCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-rekognition';
import { Client, Connection } from '@temporalio/client';
import { type ClientConnectConfig, loadClientConnectConfig } from '@temporalio/envconfig';
import { SingleBar } from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../aws/clients';
import { type Config, loadConfig } from '../domain/config';
import { loadDataConverter } from '../encryption/data-converter';

/** A mistake in what the operator asked for: one line on stderr, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses `s3://bucket/key`. */
export function parseS3Uri(uri: string): { Bucket: string; Key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) throw new UsageError(`"${uri}" is not an S3 URI of the form s3://bucket/key`);
  return { Bucket: match[1], Key: match[2] };
}

/** A Temporal client; with an encryption key set, it encrypts what it sends and decrypts what it reads. */
export async function connectTemporal({
  connectionOptions,
  namespace = 'default',
}: ClientConnectConfig): Promise<Client> {
  const address = connectionOptions.address ?? '127.0.0.1:7233';
  // A bad key is a ConfigError of its own, not a Temporal out of reach.
  const dataConverter = loadDataConverter(namespace);
  try {
    const connection = await Connection.connect({ ...connectionOptions, connectTimeout: '5s' });
    return new Client({ connection, namespace, dataConverter });
  } catch (error) {
    throw new UsageError(
      `cannot reach Temporal at ${address}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** Whether the client encrypts the payloads it sends. */
export function encrypts(client: Client): boolean {
  return client.options.loadedDataConverter.payloadCodecs.length > 0;
}

/** A collection the command names: its face count and model; one line and exit code 2 when it cannot be used. */
export async function describeCollection(
  aws: AwsClients,
  CollectionId: string,
  role: 'source' | 'target',
): Promise<{ faceCount: number; faceModelVersion: string }> {
  try {
    const { FaceCount = 0, FaceModelVersion = '' } = await aws.rekognition.send(
      new DescribeCollectionCommand({ CollectionId }),
    );
    return { faceCount: FaceCount, faceModelVersion: FaceModelVersion };
  } catch (error) {
    if (error instanceof ResourceNotFoundException)
      throw new UsageError(`the ${role} collection ${CollectionId} does not exist`);
    if (error instanceof AccessDeniedException)
      throw new UsageError(`these credentials may not use the ${role} collection ${CollectionId}`);
    throw error;
  }
}

/** Runs a command with the configuration and the AWS clients, and closes them after. */
export async function withAws<T>(work: (clients: { config: Config; aws: AwsClients }) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const aws = createAwsClients(config);
  try {
    return await work({ config, aws });
  } finally {
    destroyAwsClients(aws);
  }
}

/** Runs a command with the configuration, the AWS clients and a Temporal client, and closes them after. */
export async function withClients<T>(
  work: (clients: { config: Config; aws: AwsClients; client: Client }) => Promise<T>,
): Promise<T> {
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

/** A commander parser for a number flag within bounds. */
export function numberIn(name: string, min: number, max: number, integer: boolean) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max || (integer && !Number.isInteger(parsed))) {
      throw new InvalidArgumentError(
        `${name} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`,
      );
    }
    return parsed;
  };
}

/** What a records file flag says: an S3 URI. */
export const RECORDS_FILE_HELP = 'the records file: s3://bucket/key, a JSON array or JSON Lines';

/** `--records`, and `--manifest`, its older name, which still works but is not listed in the help. */
export function withRecordsFileOption(command: Command): Command {
  return command
    .option('--records <s3-uri>', RECORDS_FILE_HELP)
    .addOption(new Option('--manifest <s3-uri>', 'the older name of --records').hideHelp());
}

/** The records file the flags name, by either name; both, naming two files, is a usage error. */
export function recordsFileOf(flags: { records?: string; manifest?: string }): string | undefined {
  if (flags.records !== undefined && flags.manifest !== undefined && flags.records !== flags.manifest) {
    throw new UsageError('--manifest is the older name of --records: give the records file once');
  }
  return flags.records ?? flags.manifest;
}

/** The option that narrows a command given a plan's id to one collection's run of it. */
export const COLLECTION_OPTION = [
  '--collection <collection>',
  "with a plan's id: that target collection's run of the plan",
] as const;

/** A plan runs each collection as `<plan>/<target>`; `--collection` names that run. */
export function runIdOf(workflowId: string, collection: string | undefined): string {
  return collection === undefined ? workflowId : `${workflowId}/${collection}`;
}

export interface Progress {
  /** Counts `by` more done; `total` when it became known (a listing learns it as it goes). */
  advance(by?: number, fields?: Record<string, string | number>): void;
  setTotal(total: number): void;
  stop(): void;
}

/**
 * A progress bar on stderr, so stdout stays the command's result (and `--json` stays parseable).
 * It draws only on a terminal: in a pipe, a script or a test it stays silent.
 */
export function progressBar(
  label: string,
  total = 0,
  format = `${label} [{bar}] {value}/{total} {percentage}% | {rate}/s | ETA {eta_formatted}`,
): Progress {
  const bar = new SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 50, noTTYOutput: false });
  const started = Date.now();
  let done = 0;
  bar.start(total, 0, { rate: '0.0' });
  return {
    advance(by = 1, fields = {}) {
      done += by;
      const seconds = (Date.now() - started) / 1000;
      bar.update(done, { rate: seconds > 0 ? (done / seconds).toFixed(1) : '0.0', ...fields });
    },
    setTotal(newTotal) {
      bar.setTotal(newTotal);
    },
    stop() {
      bar.stop();
    },
  };
}

/**
 * Runs `work` with a progress bar that stops however the work ends: a bar left drawing would keep the process alive.
 */
export async function withProgress<T>(bar: Progress, work: (bar: Progress) => Promise<T>): Promise<T> {
  try {
    return await work(bar);
  } finally {
    bar.stop();
  }
}

/**
 * Runs `work` on each item with at most `concurrency` in flight, starting them in the items' order.
 * Items are pulled only when a slot is free, so an endless async iterable stays in flat memory. The
 * first failure (of `work` or of the iterable) stops new work; it is thrown once the work in flight
 * has settled, and the iterable is closed as a `for await` loop would close it.
 */
export async function forEachConcurrently<T>(
  items: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`concurrency must be a whole number from 1, not ${concurrency}`);
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  let running = 0;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const oneSettled = () => new Promise<void>((resolve) => (wake = resolve));
  const start = (item: T) => {
    running += 1;
    // Started at once, in order; a `work` that throws before its first await fails like one that rejects.
    void new Promise<void>((resolve) => resolve(work(item)))
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => {
        running -= 1;
        wake?.();
      });
  };

  let exhausted = false;
  try {
    while (!failure) {
      if (running >= concurrency) {
        await oneSettled();
        continue;
      }
      const next = await iterator.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      // A task failed while the next item was being read: it is not started.
      if (failure) break;
      start(next.value);
    }
  } catch (error) {
    // The iterable itself failed: it is finished, nothing to close.
    failure ??= { error };
    exhausted = true;
  }
  if (failure && !exhausted) {
    try {
      await iterator.return?.();
    } catch {
      // The first failure is the one reported.
    }
  }
  while (running > 0) await oneSettled();
  if (failure) throw failure.error;
}
