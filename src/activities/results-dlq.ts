/**
 * SQS: the results DLQ, where SQS moves a message of the results queue that was received five
 * times and never deleted: a row the drain could not write, or a body that is no row. A row there
 * names a face that is in the target with no row in the table, so a run counts its own, and the CLI
 * sends them back to the results queue for a drain to write.
 */
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { log } from '@temporalio/activity';
import type { Config } from '../domain/config';
import type { ResultRow } from '../domain/outcomes';
import { httpStatusOf } from './aws-clients';
import { deadLetterQueueOf, type HeldQueue, holdQueue } from './held-queue';
import { parseRow } from './results';

/** The rows of a held results DLQ, with the messages that carry them. */
export interface HeldRows {
  rows: { message: Message; row: ResultRow }[];
  held: HeldQueue;
}

export function createResultsDlq({ sqs, config }: { sqs: SQSClient; config: Pick<Config, 'resultsQueueUrl'> }) {
  /** Holds the whole results DLQ and picks the rows (of `runId` only, when given); undefined when the results queue has no DLQ. */
  async function holdRows(runId?: string): Promise<HeldRows | undefined> {
    const dlqUrl = await deadLetterQueueOf(sqs, config.resultsQueueUrl);
    if (dlqUrl === undefined) return undefined;
    const held = await holdQueue(sqs, dlqUrl);
    const rows = held.messages.flatMap((message) => {
      const row = parseRow(message);
      return row && (runId === undefined || row.RunId === runId) ? [{ message, row }] : [];
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
        if (httpStatusOf(error) !== 403 && !(error instanceof Error && error.name.startsWith('AccessDenied'))) throw error;
        log.warn('The worker may not read the results DLQ; the summary leaves out its rows there. Grant the ResultsDlq statement of `npm run policy:worker`', { error: (error as Error).message });
        return undefined;
      }
      if (found === undefined) return 0;
      await found.held.release();
      return found.rows.length;
    },
  };
}
