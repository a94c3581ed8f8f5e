/**
 * SQS: the results DLQ as a run ends, counting its own rows there (stores/results-dlq.ts reads them).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { log } from '@temporalio/activity';
import type { Config } from '../domain/config';
import { httpStatusOf } from '../aws/clients';
import { createResultsDlq, type HeldRows } from '../stores/results-dlq';

export function createResultsDlqActivities({
  sqs,
  s3,
  config,
}: {
  sqs: SQSClient;
  s3: S3Client;
  config: Pick<Config, 'resultsQueueUrl' | 'bucket'>;
}) {
  const { holdRows } = createResultsDlq({ sqs, s3, config });
  return {
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
