/**
 * The results table's shape, one definition for the local stack, the test harness and the AWS
 * stack: rows keyed by OldFaceId, and an index of each run's rows by when they were decided, so a
 * run can count its own rows without reading the whole table.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/** The index of rows by RunId, sorted by MigratedAt, projecting the duplicates settled against each. */
export const ROWS_BY_RUN_INDEX = 'RowsByRun';
/** The attribute of a holding row that lists the duplicates settled against it. */
export const SETTLED_DUPLICATES = 'SettledDuplicates';

export function resultsTableDefinition(TableName: string): CreateTableCommandInput {
  return {
    TableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'OldFaceId', AttributeType: 'S' },
      { AttributeName: 'RunId', AttributeType: 'S' },
      { AttributeName: 'MigratedAt', AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: 'OldFaceId', KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: ROWS_BY_RUN_INDEX,
        KeySchema: [
          { AttributeName: 'RunId', KeyType: 'HASH' },
          { AttributeName: 'MigratedAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [SETTLED_DUPLICATES] },
      },
    ],
  };
}
