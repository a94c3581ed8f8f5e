/**
 * SQS: the results DLQ, where SQS moves a message of the results queue that was received five
 * times and never deleted: a row the drain could not write, or a body that is no row. A row there
 * names a face that is in the target with no row in the table, so a run counts its own
 * (activities/results-dlq.ts), and the CLI sends them back to the results queue for a drain to write.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { Config } from '../domain/config';
import type { ResultRow } from '../domain/outcomes';
import { deadLetterQueueOf, type HeldQueue, holdQueue } from './held-queue';
import { createRowReader } from './signed-rows';

/** The rows of a held results DLQ, with the messages that carry them. */
export interface HeldRows {
  rows: { message: Message; row: ResultRow }[];
  held: HeldQueue;
}

export function createResultsDlq({
  sqs,
  s3,
  config,
}: {
  sqs: SQSClient;
  s3: S3Client;
  config: Pick<Config, 'resultsQueueUrl' | 'bucket'>;
}) {
  const readRow = createRowReader(s3, config.bucket);

  /**
   * Holds the whole results DLQ and picks the rows this tool signed (of `runId` only, when given);
   * undefined when the results queue has no DLQ.
   */
  async function holdRows(runId?: string): Promise<HeldRows | undefined> {
    const dlqUrl = await deadLetterQueueOf(sqs, config.resultsQueueUrl);
    if (dlqUrl === undefined) return undefined;
    const held = await holdQueue(sqs, dlqUrl);
    const read = await Promise.all(held.messages.map(readRow));
    const rows = held.messages.flatMap((message, i) => {
      const answer = read[i];
      return answer && 'row' in answer && (runId === undefined || answer.row.RunId === runId)
        ? [{ message, row: answer.row }]
        : [];
    });
    return { rows, held };
  }

  return { holdRows };
}
