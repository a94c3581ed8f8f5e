/**
 * Reading one run's rows of the results table, or one target collection's, page by page: the table
 * holds every run's rows, so the scan filters on RunId (or CollectionId) and never gathers the rows
 * it hands on. Rows a sync marked deleted are left out: their faces are gone. Export, report,
 * verify and cutover-check read rows this way; a table that does not exist is the operator's
 * mistake, one line and exit code 2.
 */
import { ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../aws/clients';
import { UsageError } from './common';

export interface RunRowsScan {
  table: string;
  runId: string;
  /** Only these attributes of each row; all of them when absent. */
  attributes?: string[];
  /** One of `total` parallel segments of the scan. */
  segment?: { index: number; total: number };
}

export interface RunRowsPage {
  rows: Record<string, unknown>[];
  /** Rows of any run the page read to find these: what the scan cost. */
  scanned: number;
}

type Visit = (page: RunRowsPage) => void | Promise<void>;

export function forEachRunRowsPage(aws: AwsClients, scan: RunRowsScan, visit: Visit): Promise<void> {
  const { runId, ...rest } = scan;
  return forEachRowsPage(aws, { ...rest, only: { attribute: 'RunId', value: runId } }, visit);
}

/** Every run's rows of one target collection. */
export function forEachCollectionRowsPage(
  aws: AwsClients,
  scan: Omit<RunRowsScan, 'runId'> & { collectionId: string },
  visit: Visit,
): Promise<void> {
  const { collectionId, ...rest } = scan;
  return forEachRowsPage(aws, { ...rest, only: { attribute: 'CollectionId', value: collectionId } }, visit);
}

async function forEachRowsPage(
  aws: AwsClients,
  scan: Omit<RunRowsScan, 'runId'> & { only: { attribute: 'RunId' | 'CollectionId'; value: string } },
  visit: Visit,
): Promise<void> {
  const names: Record<string, string> = { '#only': scan.only.attribute };
  scan.attributes?.forEach((attribute, i) => {
    names[`#a${i}`] = attribute;
  });
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  try {
    do {
      const page = await aws.dynamodb.send(
        new ScanCommand({
          TableName: scan.table,
          // A row a sync marked deleted records a face that is gone, no migrated face.
          FilterExpression: '#only = :only AND attribute_not_exists(DeletedAt)',
          ProjectionExpression: scan.attributes?.map((_, i) => `#a${i}`).join(', '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':only': scan.only.value },
          Segment: scan.segment?.index,
          TotalSegments: scan.segment?.total,
          ExclusiveStartKey,
        }),
      );
      await visit({ rows: page.Items ?? [], scanned: page.ScannedCount ?? 0 });
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  } catch (error) {
    if (error instanceof ResourceNotFoundException)
      throw new UsageError(`the results table ${scan.table} does not exist`);
    throw error;
  }
}
