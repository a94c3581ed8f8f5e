/**
 * Result rows as SQS messages carry them, checked against their run's key in the ledger: the drain
 * writes, and the CLI sends back from the results DLQ, only rows their run signed.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Message } from '@aws-sdk/client-sqs';
import type { ResultRow } from '../domain/outcomes';
import { parseRowBody, ROW_SIGNATURE_ATTRIBUTE, type RowRefusal, rowSignatureMatches } from '../domain/result-rows';
import { createLedger, runKeyCache } from './ledger';

/** A message of the results queue read: its row, or why it is not one the drain may write. */
type ReadRow = { row: ResultRow } | { refusal: RowRefusal };

/**
 * Reads the messages of the results queue, or of its DLQ: a row is one only when its body fits the
 * schema and its signature is that of the key of the run it names. Receive them with the
 * signature attribute (ROW_SIGNATURE_ATTRIBUTE).
 */
export function createRowReader(s3: S3Client, bucket: string) {
  const ledger = createLedger(s3, bucket);
  const keyOf = runKeyCache((collectionId, runId) => ledger.runKey(collectionId, runId));
  return async (message: Message): Promise<ReadRow> => {
    const body = message.Body ?? '';
    const row = parseRowBody(body);
    if (!row) return { refusal: 'not a result row' };
    const signature = message.MessageAttributes?.[ROW_SIGNATURE_ATTRIBUTE]?.StringValue;
    const key = signature === undefined ? undefined : await keyOf(row.CollectionId, row.RunId);
    if (signature === undefined || key === undefined) return { refusal: 'unsigned' };
    return rowSignatureMatches(body, signature, key) ? { row } : { refusal: 'signature does not match' };
  };
}
