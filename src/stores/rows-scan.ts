/**
 * Reading the results table page by page, one run's rows or one target collection's: the table
 * holds every run's rows, so the scan filters on RunId (or CollectionId) and never gathers the rows
 * it hands on. Rows a sync marked deleted record faces that are gone; only a sync asks for them.
 */
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';

export interface RowsScan {
  table: string;
  /** The rows of one run (RunId) or of one target collection (CollectionId). */
  only: { attribute: 'RunId' | 'CollectionId'; value: string };
  /** Rows a sync marked deleted too; left out when absent. */
  withDeleted?: boolean;
  /** Only these attributes of each row; all of them when absent. */
  attributes?: readonly string[];
  /** One of `total` parallel segments of the scan. */
  segment?: { index: number; total: number };
}

export interface RowsPage<Row = Record<string, unknown>> {
  rows: Row[];
  /** Rows of any run the page read to find these: what the scan cost. */
  scanned: number;
}

/** `Row` is what the caller knows of the rows it asks for; the table does not check it. */
export async function forEachRowsPage<Row = Record<string, unknown>>(
  dynamodb: DynamoDBDocumentClient,
  scan: RowsScan,
  visit: (page: RowsPage<Row>) => void | Promise<void>,
): Promise<void> {
  const names: Record<string, string> = { '#only': scan.only.attribute };
  scan.attributes?.forEach((attribute, i) => {
    names[`#a${i}`] = attribute;
  });
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamodb.send(
      new ScanCommand({
        TableName: scan.table,
        FilterExpression: scan.withDeleted ? '#only = :only' : '#only = :only AND attribute_not_exists(DeletedAt)',
        ProjectionExpression: scan.attributes?.map((_, i) => `#a${i}`).join(', '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':only': scan.only.value },
        Segment: scan.segment?.index,
        TotalSegments: scan.segment?.total,
        ExclusiveStartKey,
      }),
    );
    await visit({ rows: (page.Items ?? []) as Row[], scanned: page.ScannedCount ?? 0 });
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
}
