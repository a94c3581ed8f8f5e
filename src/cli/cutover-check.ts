/**
 * `reindex cutover-check --source <old> --target <new>`: whether the new collection can take the
 * old one's place. Every face of both collections is listed (ListFaces, 4,096 a call) and every
 * row of the target is read from the results table; what differs is counted, with examples. Exit
 * code 0 only when nothing differs, 1 when something does, 2 for a mistake in what was asked.
 */
import type { Command } from 'commander';
import type { AwsClients } from '../aws/clients';
import { facePages } from '../aws/rekognition';
import type { Config } from '../domain/config';
import { isNewerFaceModel } from '../domain/face-models';
import { createLedger } from '../stores/ledger';
import {
  type CollectionFace,
  CutoverComparison,
  type CutoverFindings,
  type Differences,
  inStep,
  type MigrationRow,
} from '../domain/cutover';
import { describeCollection, numberIn, progressBar, UsageError, withAws, withProgress } from './common';
import { forEachCollectionRowsPage } from './run-rows';

interface CutoverCheckFlags {
  source: string;
  target: string;
  examples: number;
  json?: boolean;
}

export interface CutoverCheckReport extends CutoverFindings {
  sourceCollectionId: string;
  targetCollectionId: string;
  inStep: boolean;
}

/**
 * Refuses what cannot be a migration of source into target: a target this tool never migrated
 * into (no ledger owns it), or a source on a newer face model than the target (swapped, most likely).
 */
export async function checkPair(
  aws: AwsClients,
  bucket: string,
  { source, target }: Pick<CutoverCheckFlags, 'source' | 'target'>,
): Promise<{ sourceFaces: number; targetFaces: number }> {
  const old = await describeCollection(aws, source, 'source');
  const migrated = await describeCollection(aws, target, 'target');
  if (isNewerFaceModel(old.faceModelVersion, migrated.faceModelVersion))
    throw new UsageError(
      `the source ${source} is on face model ${old.faceModelVersion}, newer than the target's ${migrated.faceModelVersion}: are --source and --target swapped?`,
    );
  if (!(await createLedger(aws.s3, bucket).ownsCollection(target)))
    throw new UsageError(
      `the target ${target} is not a collection this tool migrated into: no ledger in ${bucket} owns it`,
    );
  return { sourceFaces: old.faceCount, targetFaces: migrated.faceCount };
}

/** Every face of a collection, page by page, on a progress bar sized by the collection's face count. */
async function forEachFace(
  aws: AwsClients,
  { CollectionId, role, faceCount }: { CollectionId: string; role: 'source' | 'target'; faceCount: number },
  visit: (face: CollectionFace) => void,
): Promise<void> {
  await withProgress(progressBar(`listing the ${role}'s faces`, faceCount), async (bar) => {
    for await (const faces of facePages(aws.rekognition, CollectionId)) {
      for (const { FaceId, UserId } of faces) if (FaceId) visit({ faceId: FaceId, userId: UserId });
      bar.advance(faces.length);
    }
  });
}

export async function checkCutover(
  aws: AwsClients,
  { resultsTable, bucket }: Pick<Config, 'resultsTable' | 'bucket'>,
  { source, target, examples }: Pick<CutoverCheckFlags, 'source' | 'target' | 'examples'>,
): Promise<CutoverCheckReport> {
  const { sourceFaces, targetFaces } = await checkPair(aws, bucket, { source, target });
  const comparison = new CutoverComparison(examples);
  await forEachFace(aws, { CollectionId: source, role: 'source', faceCount: sourceFaces }, (face) =>
    comparison.oldFace(face),
  );
  await forEachFace(aws, { CollectionId: target, role: 'target', faceCount: targetFaces }, (face) =>
    comparison.newFace(face),
  );
  await withProgress(progressBar('reading rows', 0, 'reading rows | {value} rows of the target'), (bar) =>
    forEachCollectionRowsPage(
      aws,
      { table: resultsTable, collectionId: target, attributes: ['OldFaceId', 'FaceId'] },
      ({ rows }) => {
        for (const row of rows) comparison.row({ oldFaceId: String(row.OldFaceId), newFaceId: String(row.FaceId) });
        bar.advance(rows.length);
      },
    ),
  );
  const findings = comparison.findings();
  return { sourceCollectionId: source, targetCollectionId: target, ...findings, inStep: inStep(findings) };
}

function printReport(report: CutoverCheckReport): void {
  console.log(
    `${report.sourceCollectionId} (${report.oldFaces} faces) against ${report.targetCollectionId} (${report.newFaces} faces), ${report.rows} rows`,
  );
  const rowText = ({ oldFaceId, newFaceId }: MigrationRow) => `${oldFaceId} -> ${newFaceId}`;
  const sections: [string, Differences<string>][] = [
    ['old faces without a row', report.oldFacesWithoutRow],
    ['rows whose old face is gone', textOf(report.rowsWithOldFaceGone, rowText)],
    ['rows whose new face is gone', textOf(report.rowsWithNewFaceGone, rowText)],
    ['new faces without a row', report.newFacesWithoutRow],
    [
      'users whose members differ',
      textOf(report.usersDiffering, ({ userId, missing, extra }) => `${userId}: ${missing} missing, ${extra} extra`),
    ],
  ];
  for (const [what, { count, examples }] of sections) {
    console.log(`${what}: ${count}`);
    for (const example of examples) console.log(`  ${example}`);
    if (count > examples.length) console.log(`  and ${count - examples.length} more`);
  }
  console.log(report.inStep ? "in step: the target can take the source collection's place" : 'not in step');
}

function textOf<T>({ count, examples }: Differences<T>, text: (example: T) => string): Differences<string> {
  return { count, examples: examples.map(text) };
}

export function registerCutoverCheckCommand(program: Command): void {
  program
    .command('cutover-check')
    .description(
      "whether the target holds exactly the old collection's faces and users, mapped by the results table: exit code 0 only when nothing differs",
    )
    .requiredOption('--source <collection>', 'the old collection the application uses now')
    .requiredOption('--target <collection>', 'the collection it migrated to')
    .option('--examples <n>', 'examples shown of each difference', numberIn('--examples', 0, 10_000, true), 10)
    .option('--json', 'the last line of stdout is one JSON object: the counts and the examples')
    .action(async (flags: CutoverCheckFlags) => {
      if (flags.source === flags.target)
        throw new UsageError(
          `--source and --target both name ${flags.source}: a collection cannot be its own migration`,
        );
      const report = await withAws(({ config, aws }) => checkCutover(aws, config, flags));
      if (flags.json) console.log(JSON.stringify(report));
      else printReport(report);
      if (!report.inStep) process.exitCode = 1;
    });
}
