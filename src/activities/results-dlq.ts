/**
 * SQS: the results DLQ, where SQS moves a message of the results queue that was received five
 * times and never deleted: a row the drain could not write, or a body that is no row. A row there
 * names a face that is in the target with no row in the table, so a run counts its own, and the CLI
 * sends them back to the results queue for a drain to write.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { log } from '@temporalio/activity';
import type { Config } from '../domain/config';
import type { ResultRow } from '../domain/outcomes';
import { httpStatusOf } from '../aws/clients';
import { deadLetterQueueOf, type HeldQueue, holdQueue } from './held-queue';
import { createRowReader } from './results';

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

  return {
    holdRows,

    /**
     * How many of this run's rows are in the results DLQ, leaving it as it was; 0 when there is
     * none. A worker whose policy predates the count may not read it: the run ends without the
     * figure rather than failing at its very end.
     */
    countResultsInDlq: async (runId: string): Promise<number | undefined> => {
      let found: HeldRows | undefined;
      try {
        found = await holdRows(runId);
      } catch (error) {
        if (httpStatusOf(error) !== 403 && !(error instanceof Error && error.name.startsWith('AccessDenied')))
          throw error;
        log.warn(
          'The worker may not read the results DLQ; the summary leaves out its rows there. Grant the ResultsDlq statement of `npm run policy:worker`',
          { error: (error as Error).message },
        );
        return undefined;
      }
      if (found === undefined) return 0;
      await found.held.release();
      return found.rows.length;
    },
  };
}
