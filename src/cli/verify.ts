/**
 * `reindex verify`: after a run, proof that the new collection finds the same people as the old one.
 * A sample of the run's rows is drawn while the results table is scanned (memory holds the sample,
 * not the table); for each, SearchFaces runs in the old collection with the old FaceId and in the
 * new collection with the new FaceId, and the people each search finds are compared. Parity is the
 * share of sampled faces for which they are the same.
 */
import { randomBytes } from 'node:crypto';
import { DescribeTableCommand, ResourceNotFoundException as TableNotFoundException } from '@aws-sdk/client-dynamodb';
import {
  type Face,
  InvalidParameterException,
  ListFacesCommand,
  SearchFacesCommand,
} from '@aws-sdk/client-rekognition';
import type { Command } from 'commander';
import type { AwsClients } from '../aws/clients';
import type { ResultRow } from '../domain/outcomes';
import {
  compareFindings,
  type FaceComparison,
  identitiesOf,
  identityOf,
  type Parity,
  parityOf,
  type SearchFinding,
} from '../domain/parity';
import { reservoir, seededRandom } from '../domain/sampling';
import {
  COLLECTION_OPTION,
  describeCollection,
  forEachConcurrently,
  numberIn,
  runIdOf,
  progressBar,
  UsageError,
  withAws,
  withProgress,
} from './common';
import { forEachRunRowsPage } from './run-rows';

/** SearchFaces returns at most this many matches, and ListFaces takes at most this many FaceIds. */
const MOST_FACES_PER_CALL = 4096;

type SampledRow = Pick<ResultRow, 'OldFaceId' | 'FaceId' | 'SourceCollectionId' | 'CollectionId'>;

export interface VerifyOptions {
  runId: string;
  resultsTable: string;
  sample: number;
  seed: string;
  source: string | undefined;
  target: string | undefined;
  /** SearchFaces' FaceMatchThreshold: matches less similar than this are nobody. */
  threshold: number;
  concurrency: number;
}

export interface VerifyReport extends Parity {
  runId: string;
  sourceCollectionId: string;
  targetCollectionId: string;
  threshold: number;
  seed: string;
  /** The run's rows in the results table; `compared` of them were sampled. */
  rows: number;
  disagreements: FaceComparison[];
}

/** Draws the sample while scanning the run's rows; returns it with the number of rows seen. */
async function sampleRunRows(
  aws: AwsClients,
  options: VerifyOptions,
): Promise<{ rows: number; sampled: SampledRow[] }> {
  let itemCount: number;
  try {
    const { Table } = await aws.dynamodb.send(new DescribeTableCommand({ TableName: options.resultsTable }));
    itemCount = Table?.ItemCount ?? 0;
  } catch (error) {
    if (error instanceof TableNotFoundException)
      throw new UsageError(`the results table ${options.resultsTable} does not exist`);
    throw error;
  }
  const sample = reservoir<SampledRow>(options.sample, seededRandom(options.seed));
  // ItemCount is the table's, refreshed by DynamoDB every few hours: a guide for the bar, no more.
  const format = 'scanning results [{bar}] {percentage}% | {rows} rows of the run';
  await withProgress(progressBar('scanning results', itemCount, format), async (bar) => {
    let scanned = 0;
    const attributes = ['OldFaceId', 'FaceId', 'SourceCollectionId', 'CollectionId'];
    await forEachRunRowsPage(aws, { table: options.resultsTable, runId: options.runId, attributes }, (page) => {
      for (const item of page.rows) sample.offer(item as unknown as SampledRow);
      scanned += page.scanned;
      if (scanned > itemCount) bar.setTotal(scanned);
      bar.advance(page.scanned, { rows: sample.seen });
    });
  });
  return { rows: sample.seen, sampled: sample.items() };
}

/** The faces with these ids, with their UserId and ExternalImageId as ListFaces tells them. */
async function listFaces(aws: AwsClients, CollectionId: string, faceIds: string[]): Promise<Face[]> {
  const faces: Face[] = [];
  for (let start = 0; start < faceIds.length; start += MOST_FACES_PER_CALL) {
    let NextToken: string | undefined;
    do {
      const page = await aws.rekognition.send(
        new ListFacesCommand({
          CollectionId,
          FaceIds: faceIds.slice(start, start + MOST_FACES_PER_CALL),
          MaxResults: MOST_FACES_PER_CALL,
          NextToken,
        }),
      );
      faces.push(...(page.Faces ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
  }
  return faces;
}

/**
 * The people a search for this face finds, counting the face itself as a search by its photo
 * would. Who a match is comes from ListFaces, which always carries the face's UserId; the faces
 * SearchFaces returns are not documented to.
 */
async function searchPeople(
  aws: AwsClients,
  CollectionId: string,
  FaceId: string,
  threshold: number,
): Promise<SearchFinding> {
  let matches: string[];
  try {
    const { FaceMatches = [] } = await aws.rekognition.send(
      new SearchFacesCommand({ CollectionId, FaceId, FaceMatchThreshold: threshold, MaxFaces: MOST_FACES_PER_CALL }),
    );
    matches = FaceMatches.flatMap((match) => (match.Face?.FaceId ? [match.Face.FaceId] : []));
  } catch (error) {
    // Rekognition's answer for a FaceId its collection does not hold.
    if (error instanceof InvalidParameterException) return { missing: true };
    throw error;
  }
  const faces = await listFaces(aws, CollectionId, [FaceId, ...matches]);
  const self = faces.find((face) => face.FaceId === FaceId);
  if (!self) return { missing: true };
  return { missing: false, self: identityOf(self), identities: identitiesOf(faces) };
}

export async function verify(aws: AwsClients, options: VerifyOptions): Promise<VerifyReport> {
  const { rows, sampled } = await sampleRunRows(aws, options);
  if (rows === 0) throw new UsageError(`run ${options.runId} has no rows in the results table ${options.resultsTable}`);
  const source = options.source ?? sampled.find((row) => row.SourceCollectionId)?.SourceCollectionId;
  if (!source)
    throw new UsageError(
      `the rows of run ${options.runId} do not name the old collection (it was started without --source): name it with --source`,
    );
  const target = options.target ?? sampled[0]?.CollectionId ?? '';
  await describeCollection(aws, source, 'source');
  await describeCollection(aws, target, 'target');

  const comparisons: FaceComparison[] = [];
  await withProgress(progressBar('searching', sampled.length), (bar) =>
    forEachConcurrently(sampled, options.concurrency, async (row) => {
      const [old, found] = await Promise.all([
        searchPeople(aws, source, row.OldFaceId, options.threshold),
        searchPeople(aws, target, row.FaceId, options.threshold),
      ]);
      comparisons.push(compareFindings(row.OldFaceId, row.FaceId, old, found));
      bar.advance();
    }),
  );
  return {
    runId: options.runId,
    sourceCollectionId: source,
    targetCollectionId: target,
    threshold: options.threshold,
    seed: options.seed,
    rows,
    ...parityOf(comparisons),
    disagreements: comparisons
      .filter((comparison) => !comparison.agree)
      .sort((a, b) => a.OldFaceId.localeCompare(b.OldFaceId)),
  };
}

function describeFinding(finding: SearchFinding, collection: string): string {
  if (finding.missing) return `the face is not in ${collection}`;
  return `${finding.self} in ${collection}, whose search finds ${finding.identities.join(', ')}`;
}

export function describeVerify(report: VerifyReport): string[] {
  const percent = (100 * report.share).toFixed(1);
  const lines = [
    `run ${report.runId}: ${report.rows.toLocaleString('en-US')} rows; searched ${report.compared.toLocaleString('en-US')} of them (--seed ${report.seed} draws them again) in ${report.sourceCollectionId} (old) and ${report.targetCollectionId} (new), similarity ≥ ${report.threshold}`,
    `parity ${percent}%: for ${report.agreeing} of ${report.compared} faces both searches found the same people`,
    `${report.notSamePerson} of ${report.compared} rows map a face to another person or to a face no longer there`,
  ];
  if (report.disagreements.length > 0) {
    lines.push('', 'disagreements:');
    for (const disagreement of report.disagreements) {
      lines.push(
        `  old face ${disagreement.OldFaceId} → new face ${disagreement.FaceId}${disagreement.samePerson ? '' : ': NOT THE SAME PERSON'}`,
        `    old: ${describeFinding(disagreement.old, report.sourceCollectionId)}`,
        `    new: ${describeFinding(disagreement.new, report.targetCollectionId)}`,
      );
    }
  }
  return lines;
}

interface VerifyFlags {
  collection?: string;
  sample: number;
  seed?: string;
  source?: string;
  target?: string;
  threshold: number;
  concurrency: number;
  minParity: number;
  json?: boolean;
}

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('after a run, search a sample of its faces in the old and the new collection and compare who is found')
    .argument('<run-id>', "the run's workflow id, as its rows in the results table carry it")
    .option('--sample <n>', "faces to sample from the run's rows", numberIn('--sample', 1, 100_000, true), 100)
    .option('--seed <seed>', 'draws the same sample again (default: a random seed, printed)')
    .option('--source <collection>', 'the old collection (default: the one the rows name)')
    .option('--target <collection>', 'the new collection (default: the one the rows name)')
    .option(
      '--threshold <similarity>',
      'SearchFaces FaceMatchThreshold, 0 to 100',
      numberIn('--threshold', 0, 100, false),
      80,
    )
    .option(
      '--concurrency <n>',
      'faces searched at once (each is four Rekognition calls)',
      numberIn('--concurrency', 1, 64, true),
      4,
    )
    .option(
      '--min-parity <percent>',
      'exit with code 1 when parity is below this',
      numberIn('--min-parity', 0, 100, false),
      100,
    )
    .option(...COLLECTION_OPTION)
    .option('--json', 'print JSON: the last line of stdout is one object')
    .action(async (workflowId: string, flags: VerifyFlags) => {
      await withAws(async ({ config, aws }) => {
        const report = await verify(aws, {
          runId: runIdOf(workflowId, flags.collection),
          resultsTable: config.resultsTable,
          sample: flags.sample,
          seed: flags.seed ?? randomBytes(4).toString('hex'),
          source: flags.source,
          target: flags.target,
          threshold: flags.threshold,
          concurrency: flags.concurrency,
        });
        if (flags.json) console.log(JSON.stringify(report));
        else for (const line of describeVerify(report)) console.log(line);
        process.exitCode = 100 * report.share < flags.minParity ? 1 : 0;
      });
    });
}
