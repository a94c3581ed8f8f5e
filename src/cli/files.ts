/**
 * The files a command reads and writes, named by the operator as a local path or an S3 URI. Each is
 * opened before the long work starts, so a wrong name is exit code 2 at once, not after an hour.
 * Lines written to S3 go to a temporary file first and are uploaded when complete: the object
 * appears whole or not at all, at any size (multipart above one part).
 */
import { once } from 'node:events';
import { createReadStream, type WriteStream } from 'node:fs';
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { httpStatusOf } from '../aws/clients';
import { parseS3Uri, UsageError } from './common';

export const isS3 = (location: string) => location.startsWith('s3://');

/** The usage error a 404 or 403 from S3 means, named for what the operator gave; undefined for any other failure. */
export function describeS3Failure(error: unknown, what: string, use: 'read' | 'accessed'): UsageError | undefined {
  const status = httpStatusOf(error);
  if (status === 404) return new UsageError(`${what} does not exist`);
  if (status === 403) return new UsageError(`${what} may not be ${use} with these credentials`);
  return undefined;
}

export interface Input {
  body: Readable;
  /** Its length in bytes, for a progress bar. */
  size: number;
}

/** Opens a local file or an S3 object to read, with its size; one clear line when it is not there. */
export async function openSizedInput(s3: S3Client, location: string, what: string): Promise<Input> {
  if (isS3(location)) {
    const { Bucket, Key } = parseS3Uri(location);
    try {
      const { Body, ContentLength } = await s3.send(new GetObjectCommand({ Bucket, Key }));
      return { body: Body as Readable, size: ContentLength ?? 0 };
    } catch (error) {
      throw describeS3Failure(error, `${what} ${location}`, 'read') ?? error;
    }
  }
  try {
    const file = await open(location, 'r');
    const { size } = await file.stat().catch(async (error: unknown) => {
      await file.close();
      throw error;
    });
    return { body: file.createReadStream(), size };
  } catch (error) {
    throw new UsageError(
      `${what} ${location} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/** Opens a local file or an S3 object to read; one clear line when it is not there. */
export async function openInput(s3: S3Client, location: string, what: string): Promise<Readable> {
  return (await openSizedInput(s3, location, what)).body;
}

export interface LineSink {
  /** Where the lines end up, as the operator named it. */
  readonly location: string;
  /** Resolves when the line is buffered; waits while the disk catches up. */
  write(line: string): Promise<void>;
  /** Completes the file (uploads it, for S3). */
  close(): Promise<void>;
  /** Leaves nothing behind: the work failed. */
  discard(): Promise<void>;
}

/** Under this size an S3 object is one PutObject; above it, parts of this size (S3 allows 10,000). */
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

async function upload(
  s3: S3Client,
  file: string,
  { Bucket, Key }: { Bucket: string; Key: string },
  partBytes: number,
): Promise<void> {
  const { size } = await stat(file);
  // S3 takes at most 10,000 parts; the uploader holds `queueSize` parts in memory at once.
  const partSize = Math.max(partBytes, Math.ceil(size / 10_000));
  await new Upload({
    client: s3,
    params: { Bucket, Key, Body: createReadStream(file) },
    partSize,
    queueSize: 4,
    leavePartsOnError: false,
  }).done();
}

/**
 * Files this tool writes hold faces, users and image names: readable by their owner only, and
 * created new, so a file or link planted at the name is refused rather than written through.
 */
const OWNER_ONLY = 0o600;

async function lineWriter(file: string): Promise<WriteStream> {
  return (await open(file, 'wx', OWNER_ONLY)).createWriteStream();
}

/**
 * Writes `text` to a local file: beside its name first, created new and readable by its owner
 * only, then renamed over it, so the file appears whole or not at all.
 */
export async function writeLocalFile(file: string, text: string): Promise<void> {
  const partial = `${file}.partial`;
  const handle = await open(partial, 'wx', OWNER_ONLY);
  try {
    await handle.writeFile(text);
  } catch (error) {
    await handle.close();
    await rm(partial, { force: true });
    throw error;
  }
  await handle.close();
  await rename(partial, file);
}

/**
 * Opens a file of lines at `location`. A local file is written beside its name and renamed when
 * complete; an S3 object is checked for its bucket now and uploaded on `close`.
 */
export async function openLineSink(
  s3: S3Client,
  location: string,
  what: string,
  partBytes = DEFAULT_PART_BYTES,
): Promise<LineSink> {
  let file: string;
  let finish: () => Promise<void>;
  let cleanup: () => Promise<void>;
  if (isS3(location)) {
    const target = parseS3Uri(location);
    try {
      await s3.send(new HeadBucketCommand({ Bucket: target.Bucket }));
    } catch (error) {
      throw describeS3Failure(error, `the bucket ${target.Bucket} of ${what}`, 'accessed') ?? error;
    }
    const directory = await mkdtemp(path.join(tmpdir(), 'reindex-'));
    file = path.join(directory, path.basename(target.Key));
    finish = () => upload(s3, file, target, partBytes);
    cleanup = () => rm(directory, { recursive: true, force: true });
  } else {
    file = `${location}.partial`;
    finish = () => rename(file, location);
    cleanup = () => rm(file, { force: true });
  }
  let stream: WriteStream;
  try {
    stream = await lineWriter(file);
  } catch (error) {
    await cleanup();
    throw new UsageError(
      `${what} ${location} cannot be written: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  let failure: Error | undefined;
  stream.on('error', (error) => {
    failure = error;
  });
  const closeStream = async () => {
    if (!stream.closed) {
      stream.end();
      await once(stream, 'close');
    }
    if (failure) throw failure;
  };
  return {
    location,
    async write(line) {
      if (failure) throw failure;
      if (!stream.write(`${line}\n`)) await once(stream, 'drain');
    },
    async close() {
      try {
        await closeStream();
        await finish();
      } finally {
        if (isS3(location)) await cleanup();
      }
    },
    async discard() {
      await closeStream().catch(() => undefined);
      await cleanup();
    },
  };
}
