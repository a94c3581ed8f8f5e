/**
 * `reindex prepare`: the records file of an old collection, built from ListFaces. Each face's image
 * is found in S3 by its ExternalImageId, by a key template or by a CSV mapping; the faces are
 * grouped into one record per image; a face that cannot be placed is written to the unplaced
 * file with its cause, never dropped.
 *
 * Memory: ListFaces returns a collection's faces in no order of images, so grouping needs them
 * all. Rather than hold them, the faces (and the mapping's rows) are spread over partition files
 * on disk by a hash of the key that joins them, and each partition is grouped on its own: memory
 * holds about `facesInMemory` faces at a time, whatever the collection's size. Disk needs about
 * twice the records file's size, under the system's temporary directory (TMPDIR).
 */
import { createReadStream } from 'node:fs';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DescribeCollectionCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import type { S3Client } from '@aws-sdk/client-s3';
import { type Command, Option } from 'commander';
import {
  addMappingEntry,
  type ExternalImageIdPlacement,
  FACE_KEYS,
  type FaceKey,
  type KeyTemplate,
  type ListedFace,
  listedFace,
  type MappingEntry,
  parseKeyTemplate,
  partitionOf,
  type Placed,
  PlacementError,
  placeByExternalImageId,
  placeByMapping,
  placeByTemplate,
  recordOf,
  type S3Location,
  UnplacedCause,
} from '../domain/image-locations';
import { SIDE_FILE_SUFFIXES } from '../domain/intake';
import { type Mapping, readMapping } from '../records/mapping';
import { checkRecord } from '../domain/records';
import type { AwsClients } from '../aws/clients';
import type { Config } from '../domain/config';
import { numberIn, progressBar, UsageError, withAws } from './common';
import { type LineSink, openInput, openLineSink } from './files';
import { facePages } from '../aws/rekognition';

export type Placement =
  | { mode: 'external-image-id'; placement: ExternalImageIdPlacement }
  | { mode: 'template'; template: KeyTemplate }
  | { mode: 'mapping'; file: string; key: FaceKey | undefined };

export interface PrepareInput {
  source: string;
  /** Written as each record's CollectionId when given. */
  target: string | undefined;
  placement: Placement;
  /** A local path or an S3 URI, for the records and for the faces that could not be placed. */
  out: string;
  unplaced: string;
  format: 'jsonl' | 'json';
  facesInMemory: number;
}

export interface PrepareSummary {
  source: string;
  images: number;
  faces: number;
  placed: number;
  unplaced: number;
  unplacedByCause: Partial<Record<UnplacedCause, number>>;
  output: string;
  unplacedOutput: string;
}

/** The default of --faces-in-memory: a few hundred MB of heap while grouping. */
export const DEFAULT_FACES_IN_MEMORY = 200_000;
/** Open partition files stay below the usual limit of open files; past it partitions grow instead. */
const MAX_PARTITIONS = 1000;
const SPILL_BUFFER_BYTES = 32 * 1024;

// ---------------------------------------------------------------------------------------------
// Partitions on disk

/** Values spread over files by a hash of their key, so one file at a time is what memory holds. */
class Partitions<T> {
  private readonly buffers: string[][];
  private readonly buffered: number[];

  constructor(
    private readonly directory: string,
    private readonly name: string,
    readonly count: number,
  ) {
    this.buffers = Array.from({ length: count }, () => []);
    this.buffered = Array<number>(count).fill(0);
  }

  private file(partition: number): string {
    return path.join(this.directory, `${this.name}-${partition}.jsonl`);
  }

  async add(key: string, value: T): Promise<void> {
    const partition = partitionOf(key, this.count);
    const line = JSON.stringify(value);
    this.buffers[partition]?.push(line);
    this.buffered[partition] = (this.buffered[partition] ?? 0) + line.length;
    if ((this.buffered[partition] ?? 0) >= SPILL_BUFFER_BYTES) await this.flush(partition);
  }

  private async flush(partition: number): Promise<void> {
    const lines = this.buffers[partition] ?? [];
    if (lines.length === 0) return;
    this.buffers[partition] = [];
    this.buffered[partition] = 0;
    await appendFile(this.file(partition), `${lines.join('\n')}\n`);
  }

  async finish(): Promise<void> {
    for (let partition = 0; partition < this.count; partition += 1) await this.flush(partition);
  }

  async *read(partition: number): AsyncGenerator<T> {
    const stream = createReadStream(this.file(partition));
    // A partition no key fell into has no file.
    const opened = await new Promise<boolean>((resolve) => {
      stream.once('open', () => resolve(true));
      stream.once('error', () => resolve(false));
    });
    if (!opened) return;
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) yield JSON.parse(line) as T;
  }
}

// ---------------------------------------------------------------------------------------------
// The source collection

/** Where the source collection is: its client's region, and the profile its credentials come from. */
export interface SourceAccount {
  region: string;
  profile: string | undefined;
}

function sourceFailure(error: unknown, source: string, { region, profile }: SourceAccount): unknown {
  const name = (error as Error | undefined)?.name;
  if (name === 'ResourceNotFoundException')
    return new UsageError(`the collection ${source} does not exist in ${region}`);
  if (name === 'AccessDeniedException')
    return new UsageError(`these credentials may not read the collection ${source}: ${(error as Error).message}`);
  if (name === 'CredentialsProviderError') {
    return new UsageError(
      profile
        ? `the profile ${profile} gives no credentials: it is in neither ~/.aws/config nor ~/.aws/credentials, or it is incomplete`
        : `no credentials for the source collection: ${(error as Error).message}`,
    );
  }
  return error;
}

/**
 * The source's own client when it lies in another region or account. The SDK would warn on
 * stderr that a profile overrides the environment's keys: here that is the point (the keys are
 * the target account's), so its logger stays as silent as the SDK's default one.
 */
export function sourceClient({ region, profile }: SourceAccount): RekognitionClient {
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  return new RekognitionClient({ region, ...(profile ? { profile } : {}), logger: silent });
}

async function countFaces(rekognition: RekognitionClient, source: string): Promise<number> {
  const { FaceCount } = await rekognition.send(new DescribeCollectionCommand({ CollectionId: source }));
  return FaceCount ?? 0;
}

// ---------------------------------------------------------------------------------------------
// The mapping file

/** Opens the mapping file and reads its header: a file without the columns it needs fails here. */
export async function openMapping(s3: S3Client, file: string, chosenKey: FaceKey | undefined): Promise<Mapping> {
  const input = await openInput(s3, file, 'the mapping file');
  return readMapping(input, chosenKey, {
    name: file,
    unreadable: (error) =>
      new UsageError(
        `the mapping file ${file} cannot be read: ${error instanceof Error ? error.message : String(error)}`,
      ),
  });
}

// ---------------------------------------------------------------------------------------------
// Prepare

interface PlacedFace {
  face: ListedFace;
  location: S3Location;
}

class Unplaced {
  count = 0;
  readonly byCause: Partial<Record<UnplacedCause, number>> = {};

  constructor(private readonly sink: LineSink) {}

  async add(face: ListedFace, cause: UnplacedCause, detail: string): Promise<void> {
    this.count += 1;
    this.byCause[cause] = (this.byCause[cause] ?? 0) + 1;
    await this.sink.write(JSON.stringify({ ...face, cause, detail }));
  }
}

/** The records file's writer: JSON Lines, or one JSON array with a record a line. */
function recordWriter(sink: LineSink, format: PrepareInput['format']) {
  let pending: string | undefined;
  return {
    async write(record: Record<string, unknown>) {
      const line = JSON.stringify(record);
      if (format === 'jsonl') return sink.write(line);
      await sink.write(pending === undefined ? '[' : `${pending},`);
      pending = line;
    },
    async finish() {
      if (format === 'json') await sink.write(pending === undefined ? '[]' : `${pending}\n]`);
    },
  };
}

/**
 * Lists `source`, places every face and writes the records file. `rekognition` reads the source
 * (its own region or account if need be); `s3` reads the mapping and writes the outputs.
 */
export async function prepareRecords(
  { rekognition, s3 }: { rekognition: RekognitionClient; s3: S3Client },
  input: PrepareInput,
  account: SourceAccount,
): Promise<PrepareSummary> {
  const faceCount = await countFaces(rekognition, input.source).catch((error: unknown) => {
    throw sourceFailure(error, input.source, account);
  });
  const records = await openLineSink(s3, input.out, 'the records file');
  const unplacedSink = await openLineSink(s3, input.unplaced, 'the unplaced faces file').catch(
    async (error: unknown) => {
      await records.discard();
      throw error;
    },
  );
  const directory = await mkdtemp(path.join(tmpdir(), 'reindex-prepare-'));
  const partitions = Math.min(MAX_PARTITIONS, Math.max(1, Math.ceil(faceCount / input.facesInMemory)));
  const unplaced = new Unplaced(unplacedSink);
  const placed = new Partitions<PlacedFace>(directory, 'placed', partitions);
  const summary = {
    source: input.source,
    images: 0,
    faces: 0,
    placed: 0,
    output: input.out,
    unplacedOutput: input.unplaced,
  };
  try {
    const place = async (face: ListedFace, placement: Placed) => {
      if (!placement.placed) await unplaced.add(face, placement.cause, placement.detail);
      else await placed.add(face.ImageId ?? '', { face, location: placement.location });
    };

    // Mapping rows first: a bad mapping file fails before the long listing.
    let mapping: { key: FaceKey; rows: Partitions<MappingEntry>; faces: Partitions<ListedFace> } | undefined;
    if (input.placement.mode === 'mapping') {
      const { key, entries } = await openMapping(s3, input.placement.file, input.placement.key);
      mapping = {
        key,
        rows: new Partitions(directory, 'mapping', partitions),
        faces: new Partitions(directory, 'faces', partitions),
      };
      for await (const entry of entries) await mapping.rows.add(entry.key, entry);
      await mapping.rows.finish();
    }

    const listing = progressBar(`listing ${input.source}`, faceCount);
    try {
      for await (const page of facePages(rekognition, input.source)) {
        for (const face of page.map(listedFace)) {
          summary.faces += 1;
          const { placement } = input;
          if (!face.FaceId) await unplaced.add(face, UnplacedCause.NoFaceId, 'the face has no FaceId');
          else if (!face.ImageId)
            await unplaced.add(face, UnplacedCause.NoImageId, 'the face has no ImageId: its image cannot be told');
          else if (placement.mode === 'external-image-id')
            await place(face, placeByExternalImageId(placement.placement, face));
          else if (placement.mode === 'template') await place(face, placeByTemplate(placement.template, face));
          else if (mapping && face[mapping.key]) await mapping.faces.add(face[mapping.key] ?? '', face);
          else if (mapping) await place(face, placeByMapping(undefined, mapping.key, face));
        }
        listing.advance(page.length);
      }
    } catch (error) {
      throw sourceFailure(error, input.source, account);
    } finally {
      listing.stop();
    }

    if (mapping) {
      const mappingKey = mapping.key;
      await mapping.faces.finish();
      for (let partition = 0; partition < partitions; partition += 1) {
        const entries = new Map<string, MappingEntry>();
        for await (const entry of mapping.rows.read(partition)) addMappingEntry(entries, entry, mappingKey);
        for await (const face of mapping.faces.read(partition)) {
          const entry = entries.get(face[mappingKey] ?? '');
          await place(
            entry?.userId ? { ...face, UserId: entry.userId } : face,
            placeByMapping(entry, mappingKey, face),
          );
        }
      }
    }
    await placed.finish();

    const writer = recordWriter(records, input.format);
    const grouping = progressBar('grouping faces by image', partitions);
    try {
      for (let partition = 0; partition < partitions; partition += 1) {
        // One record per image and location: faces of one image placed apart (a key per FaceId) stay apart.
        const images = new Map<string, { location: S3Location; faces: ListedFace[] }>();
        for await (const { face, location } of placed.read(partition)) {
          const image = `${face.ImageId ?? ''}\n${location.Bucket}\n${location.Key}`;
          const group = images.get(image) ?? { location, faces: [] };
          group.faces.push(face);
          images.set(image, group);
        }
        for (const { location, faces } of images.values()) {
          const record = recordOf(location, faces, input.target);
          const check = checkRecord(record);
          if (check.ok) {
            await writer.write(record);
            summary.images += 1;
            summary.placed += faces.length;
          } else {
            for (const face of faces) await unplaced.add(face, UnplacedCause.InvalidRecord, check.problems.join('; '));
          }
        }
        grouping.advance();
      }
    } finally {
      grouping.stop();
    }
    await writer.finish();
    await records.close();
    await unplacedSink.close();
    return { ...summary, unplaced: unplaced.count, unplacedByCause: unplaced.byCause };
  } catch (error) {
    await Promise.all([records.discard(), unplacedSink.discard()]);
    throw error instanceof PlacementError ? new UsageError(error.message) : error;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The command

/**
 * Where the images are and whose credentials read the old collections: the options `prepare` and `plan --out` share.
 */
export interface PlacementOptions {
  keyFrom?: 'external-image-id';
  bucket?: string;
  prefix: string;
  suffix: string;
  keyTemplate?: string;
  mapping?: string;
  mappingKey?: FaceKey;
  unplaced?: string;
  sourceRegion?: string;
  sourceProfile?: string;
  facesInMemory: number;
}

interface PrepareOptions extends PlacementOptions {
  source: string;
  out: string;
  format: 'jsonl' | 'json';
  target?: string;
  json?: boolean;
}

/** The flags that say where the images are. */
export type PlacementFlags = Pick<
  PlacementOptions,
  'keyFrom' | 'bucket' | 'prefix' | 'suffix' | 'keyTemplate' | 'mapping' | 'mappingKey'
>;

/** One placement of the images, checked; `missing` is the line for flags that name none. */
export function placementOf(
  options: PlacementFlags,
  missing = 'say where the images are with one of --key-from external-image-id, --key-template or --mapping',
): Placement {
  const chosen = [
    options.keyFrom && '--key-from',
    options.keyTemplate && '--key-template',
    options.mapping && '--mapping',
  ].filter(Boolean);
  if (chosen.length !== 1)
    throw new UsageError(chosen.length === 0 ? missing : `${chosen.join(' and ')} exclude each other: choose one`);
  if (!options.keyFrom && (options.bucket || options.prefix || options.suffix))
    throw new UsageError('--bucket, --prefix and --suffix go with --key-from');
  if (!options.mapping && options.mappingKey) throw new UsageError('--mapping-key goes with --mapping');
  if (options.keyFrom) {
    if (!options.bucket) throw new UsageError('--key-from external-image-id needs --bucket');
    return {
      mode: 'external-image-id',
      placement: { bucket: options.bucket, prefix: options.prefix, suffix: options.suffix },
    };
  }
  if (options.keyTemplate) {
    try {
      return { mode: 'template', template: parseKeyTemplate(options.keyTemplate) };
    } catch (error) {
      throw error instanceof PlacementError ? new UsageError(error.message) : error;
    }
  }
  return { mode: 'mapping', file: options.mapping ?? '', key: options.mappingKey };
}

function printSummary(summary: PrepareSummary): void {
  const causes = Object.entries(summary.unplacedByCause).map(([cause, count]) => `${cause} ${count}`);
  console.log(`records file  ${summary.output}`);
  console.log(`source        ${summary.source}`);
  console.log(`images        ${summary.images}`);
  console.log(`faces         ${summary.faces}`);
  console.log(`placed        ${summary.placed}`);
  console.log(`unplaced      ${summary.unplaced}${causes.length > 0 ? ` (${causes.join(', ')})` : ''}`);
  console.log(`unplaced file ${summary.unplacedOutput}`);
}

/** The options of PlacementOptions, on `command`. */
export function withPlacementOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--key-from <field>', "each image's key is its faces' ExternalImageId").choices(['external-image-id']),
    )
    .option('--bucket <bucket>', 'with --key-from: the bucket of the images')
    .option(
      '--prefix <prefix>',
      'with --key-from: put before the ExternalImageId, taken literally (give "photos/" for a folder)',
      '',
    )
    .option('--suffix <suffix>', 'with --key-from: put after the ExternalImageId, e.g. .jpg', '')
    .option(
      '--key-template <template>',
      'each image at s3://bucket/key with {FaceId}, {ImageId} or {ExternalImageId} filled in',
    )
    .option(
      '--mapping <csv>',
      'a CSV (local or s3://) with a FaceId, ImageId or ExternalImageId column, an S3Uri column and an optional UserId column',
    )
    .addOption(
      new Option('--mapping-key <column>', 'the key column of the mapping, when it has more than one').choices([
        ...FACE_KEYS,
      ]),
    )
    .option('--unplaced <location>', 'where faces that could not be placed are listed (default: <out>.unplaced.jsonl)')
    .option('--source-region <region>', "the old collection's region, when it is not AWS_REGION")
    .option('--source-profile <profile>', "a profile with the old collection's account's credentials")
    .option(
      '--faces-in-memory <n>',
      'faces grouped in memory at a time; a larger collection is spread over partitions on disk',
      numberIn('--faces-in-memory', 1, 100_000_000, true),
      DEFAULT_FACES_IN_MEMORY,
    );
}

/**
 * Runs `work` with a client of the old collections' account and region:
 * the worker's own unless --source-region or --source-profile names another.
 */
export async function withSourceClient<T>(
  options: PlacementOptions,
  { config, aws }: { config: Config; aws: AwsClients },
  work: (rekognition: RekognitionClient, account: SourceAccount) => Promise<T>,
): Promise<T> {
  const separateSource = options.sourceRegion !== undefined || options.sourceProfile !== undefined;
  const account = { region: options.sourceRegion ?? config.aws.region, profile: options.sourceProfile };
  const rekognition = separateSource ? sourceClient(account) : aws.rekognition;
  try {
    return await work(rekognition, account);
  } finally {
    if (separateSource) rekognition.destroy();
  }
}

export function registerPrepareCommand(program: Command): void {
  withPlacementOptions(
    program
      .command('prepare')
      .description('build the records file of an old collection from ListFaces, one record per image')
      .requiredOption('--source <collection>', 'the old collection to read')
      .requiredOption('--out <location>', 'where the records file goes: s3://bucket/key or a local path')
      .addOption(
        new Option('--format <format>', 'JSON Lines, or the original JSON array')
          .choices(['jsonl', 'json'])
          .default('jsonl'),
      )
      .option('--target <collection>', "written as every record's CollectionId"),
  )
    .option('--json', 'print the summary as JSON')
    .action(async (options: PrepareOptions) => {
      const placement = placementOf(options);
      await withAws(async (clients) => {
        await withSourceClient(options, clients, async (rekognition, account) => {
          const summary = await prepareRecords(
            { rekognition, s3: clients.aws.s3 },
            {
              source: options.source,
              target: options.target,
              placement,
              out: options.out,
              unplaced: options.unplaced ?? `${options.out}${SIDE_FILE_SUFFIXES.unplaced}`,
              format: options.format,
              facesInMemory: options.facesInMemory,
            },
            account,
          );
          if (options.json) console.log(JSON.stringify(summary));
          else printSummary(summary);
        });
      });
    });
}
