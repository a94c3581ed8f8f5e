/**
 * The commands' reading of rows, one run's or one target collection's, page by page (see
 * stores/rows-scan). Rows a sync marked deleted are left out: their faces are gone. Export, report,
 * verify and cutover-check read rows this way; a table that does not exist is the operator's
 * mistake, one line and exit code 2.
 */
import { ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import type { AwsClients } from '../aws/clients';
import { forEachRowsPage, type RowsPage, type RowsScan } from '../stores/rows-scan';
import { UsageError } from './common';

export interface RunRowsScan extends Omit<RowsScan, 'only' | 'withDeleted'> {
  runId: string;
}

type Visit = (page: RowsPage) => void | Promise<void>;

export function forEachRunRowsPage(aws: AwsClients, scan: RunRowsScan, visit: Visit): Promise<void> {
  const { runId, ...rest } = scan;
  return forEachLiveRowsPage(aws, { ...rest, only: { attribute: 'RunId', value: runId } }, visit);
}

/** Every run's rows of one target collection. */
export function forEachCollectionRowsPage(
  aws: AwsClients,
  scan: Omit<RunRowsScan, 'runId'> & { collectionId: string },
  visit: Visit,
): Promise<void> {
  const { collectionId, ...rest } = scan;
  return forEachLiveRowsPage(aws, { ...rest, only: { attribute: 'CollectionId', value: collectionId } }, visit);
}

async function forEachLiveRowsPage(aws: AwsClients, scan: RowsScan, visit: Visit): Promise<void> {
  try {
    await forEachRowsPage(aws.dynamodb, scan, visit);
  } catch (error) {
    if (error instanceof ResourceNotFoundException)
      throw new UsageError(`the results table ${scan.table} does not exist`);
    throw error;
  }
}
