/**
 * `reindex export <run> --csv <file>`: a run's rows of the DynamoDB results table as CSV with the
 * original solution's columns plus IoU. The table is scanned in parallel segments and each row is
 * written as it arrives, so a run of any size exports in flat memory.
 */
import type { Command } from 'commander';
import type { AwsClients } from '../aws/clients';
import type { Config } from '../domain/config';
import { csvLine } from '../domain/csv';
import type { ResultRow } from '../domain/outcomes';
import { COLLECTION_OPTION, numberIn, progressBar, runIdOf, UsageError, withAws } from './common';
import { type LineSink, openLineSink } from './files';
import { forEachRunRowsPage } from './run-rows';
import { readRunSummary } from './runs';

/** The original solution's fields, under its names, then the overlap that made each match. */
export const EXPORT_COLUMNS = [
  'UserID',
  'FaceId',
  'OldFaceId',
  'ImageId',
  'OldImageId',
  'ExternalImageId',
  'Bucket',
  'File',
  'IoU',
] as const;

function exportedValues(row: ResultRow): unknown[] {
  return [
    row.UserId ?? '',
    row.FaceId,
    row.OldFaceId,
    row.ImageId,
    row.OldImageId ?? '',
    row.ExternalImageId ?? '',
    row.Bucket,
    row.Key,
    row.IoU,
  ];
}

/** Writes the run's rows to the sink and returns how many there were. */
export async function exportRows(
  aws: AwsClients,
  config: Config,
  runId: string,
  sink: LineSink,
  segments: number,
  onRows: (count: number) => void = () => undefined,
): Promise<number> {
  let rows = 0;
  await sink.write(csvLine([...EXPORT_COLUMNS]));
  await Promise.all(
    Array.from({ length: segments }, (_, segment) =>
      forEachRunRowsPage(
        aws,
        { table: config.resultsTable, runId, segment: { index: segment, total: segments } },
        async (page) => {
          for (const row of page.rows) await sink.write(csvLine(exportedValues(row as unknown as ResultRow)));
          rows += page.rows.length;
          onRows(page.rows.length);
        },
      ),
    ),
  );
  return rows;
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description("write a run's results (old face → new face) as CSV with the original solution's columns plus IoU")
    .argument('<workflow-id>', 'the run')
    .requiredOption('--csv <file>', 'where to write: a local path or s3://bucket/key')
    .option('--segments <n>', 'parallel scan segments of the results table', numberIn('--segments', 1, 64, true), 4)
    .option(...COLLECTION_OPTION)
    .option('--json', 'print JSON: the last line of stdout is one object')
    .action(
      async (workflowId: string, flags: { csv: string; segments: number; collection?: string; json?: boolean }) => {
        const runId = runIdOf(workflowId, flags.collection);
        await withAws(async ({ config, aws }) => {
          const summary = await readRunSummary(aws, config, runId);
          const sink = await openLineSink(aws.s3, flags.csv, 'the CSV file');
          const progress = progressBar('export', summary?.matched ?? 0);
          let rows: number;
          try {
            rows = await exportRows(aws, config, runId, sink, flags.segments, (count) => progress.advance(count));
            if (rows === 0 && !summary)
              throw new UsageError(
                `no run ${runId}: the results table ${config.resultsTable} has no rows of it and the bucket no summary`,
              );
            await sink.close();
          } catch (error) {
            await sink.discard();
            throw error;
          } finally {
            progress.stop();
          }
          if (flags.json) console.log(JSON.stringify({ workflowId: runId, rows, csv: flags.csv }));
          else console.log(`exported ${rows} rows of run ${runId} to ${flags.csv}`);
        });
      },
    );
}
