/**
 * The continuous drain: one activity that moves result rows from the results queue into the table
 * for a window of minutes, and settles each duplicate row it refuses before it goes on (the new
 * face deleted from the target, a review message sent, the holding row marked). No row, receipt
 * handle or duplicate leaves the activity: the run hears counts only, so its history stays small
 * however many rows pass.
 */
import { activityInfo, heartbeat, sleep } from '@temporalio/activity';
import type { ReviewItem } from '../domain/outcomes';
import type { DrainPass, DrainPassHooks, DrainReceive, DuplicateRow, RunRowsAccount, RunRowsQuery } from './results';

export interface DrainWindow {
  runId: string;
  /** How long the attempt drains before it answers. */
  forMs: number;
  /** Answer as soon as the queue is empty, in flight and delayed messages included. */
  untilEmpty: boolean;
  /**
   * Whether the run holds back new images because rows waited too long: held, the window answers
   * `caughtUp` once the backlog is gone; not held, it answers `behind` once a row waited longer than
   * the worker's limit. Absent, as from runs recorded before holding back, it answers for neither.
   */
  heldBack?: boolean;
  /**
   * At the run's end, the result rows its batches sent and when it began: the window answers
   * `runAccounted` once the table holds as many of the run's rows and duplicates settled against
   * them, whatever other runs keep in the shared queue.
   */
  accountFor?: { rowsSent: number; since: string };
}

export interface DrainedWindow {
  /** Rows written to the table, of every run whose messages this drain took. */
  written: number;
  /** Duplicate rows of `runId` refused and settled: their faces are in review, not matched. */
  duplicatesOfRun: number;
  /** How long the oldest message this drain took had waited in the queue. */
  oldestAgeMs: number;
  queueEmpty: boolean;
  /** Why the window answered early, when it did for the backlog (see DrainWindow.heldBack). */
  backlog?: 'behind' | 'caughtUp';
  /** True when the window answered because every row the run sent is in the table (see DrainWindow.accountFor). */
  runAccounted?: boolean;
}

/** Messages one pass handles before its duplicates are settled. */
const MESSAGES_PER_PASS = 500;
/** An empty queue is looked at again this soon. */
const IDLE_MS = 1_000;
/**
 * Receivers one window runs at once. One receiver moves a receive of ten rows per round trip to SQS
 * and DynamoDB, about 100 rows a second on AWS: less than a quota of 50 IndexFaces a second publishes
 * at three faces an image.
 */
const RECEIVERS = 4;
/**
 * How often a window at the run's end counts the run's rows in the table, at least: a count reads
 * every row of the run, so a run of millions counts less often, four times its count's length apart.
 */
const ACCOUNT_EVERY_MS = 5_000;
/** A row that waited longer than this in the results queue makes a drain answer `behind`. */
export const RESULTS_WAIT_LIMIT_MS = 2 * 60_000;

export function createDrain({
  drainPass,
  accountRunRows,
  deleteDuplicateFaces,
  sendToReview,
  settleDuplicates,
  resultsWaitLimitMs = RESULTS_WAIT_LIMIT_MS,
}: {
  drainPass: (maxMessages: number, recovered: Set<string>, hooks: DrainPassHooks) => Promise<DrainPass>;
  accountRunRows: (query: RunRowsQuery, onPage: () => void) => Promise<RunRowsAccount | undefined>;
  deleteDuplicateFaces: (duplicates: DuplicateRow[]) => Promise<void>;
  sendToReview: (items: ReviewItem[]) => Promise<void>;
  settleDuplicates: (duplicates: DuplicateRow[]) => Promise<void>;
  /** Tests shorten it. */
  resultsWaitLimitMs?: number;
}) {
  return {
    /**
     * Drains for `forMs` (or until the queue is empty, with `untilEmpty`, or until the backlog
     * changes, with `heldBack`), with several receivers at once. A retried attempt goes on from the
     * counts its predecessor heartbeated.
     */
    drainContinuously: async ({
      runId,
      forMs,
      untilEmpty,
      heldBack,
      accountFor,
    }: DrainWindow): Promise<DrainedWindow> => {
      const resumed = activityInfo().heartbeatDetails as Omit<DrainedWindow, 'queueEmpty'> | undefined;
      const totals = {
        written: resumed?.written ?? 0,
        duplicatesOfRun: resumed?.duplicatesOfRun ?? 0,
        oldestAgeMs: resumed?.oldestAgeMs ?? 0,
      };
      const recovered = new Set<string>();
      const deadline = Date.now() + forMs;
      let over = false;
      let queueEmpty = false;
      let backlog: DrainedWindow['backlog'];
      let runAccounted = false;
      const onReceive = ({ written, oldestAgeMs, full }: DrainReceive) => {
        totals.written += written;
        totals.oldestAgeMs = Math.max(totals.oldestAgeMs, oldestAgeMs);
        heartbeat({ ...totals });
        if (heldBack === false && oldestAgeMs > resultsWaitLimitMs) backlog = 'behind';
        if (heldBack === true && !full) backlog = 'caughtUp';
        if (backlog !== undefined || Date.now() >= deadline) over = true;
      };
      const receive = async () => {
        while (!over) {
          const pass = await drainPass(MESSAGES_PER_PASS, recovered, { onReceive, stopped: () => over });
          if (pass.duplicates.length > 0) {
            await Promise.all([
              deleteDuplicateFaces(pass.duplicates),
              sendToReview(pass.duplicates.map((duplicate) => duplicate.review)),
            ]);
            await settleDuplicates(pass.duplicates);
            totals.duplicatesOfRun += pass.duplicates.filter((duplicate) => duplicate.row.RunId === runId).length;
            heartbeat({ ...totals });
          }
          if (untilEmpty && pass.queueEmpty) {
            queueEmpty = true;
            over = true;
          }
          if (Date.now() >= deadline) over = true;
          if (!over && pass.handled === 0) await sleep(IDLE_MS);
        }
      };
      /** Waits `ms`, or less once the window is over. */
      const pause = async (ms: number) => {
        const until = Date.now() + ms;
        while (!over && Date.now() < until) await sleep(Math.min(250, until - Date.now()));
      };
      const account = async () => {
        if (accountFor === undefined) return;
        let waitMs = 0;
        for (;;) {
          await pause(waitMs);
          if (over) return;
          const began = Date.now();
          const counted = await accountRunRows({ runId, since: accountFor.since }, () => heartbeat({ ...totals }));
          if (counted === undefined) return;
          if (counted.rows + counted.settledDuplicates >= accountFor.rowsSent) {
            runAccounted = true;
            over = true;
            return;
          }
          waitMs = Math.max(ACCOUNT_EVERY_MS, 4 * (Date.now() - began));
        }
      };
      await Promise.all([...Array.from({ length: RECEIVERS }, receive), account()]);
      return {
        ...totals,
        queueEmpty,
        ...(backlog === undefined ? {} : { backlog }),
        ...(runAccounted ? { runAccounted } : {}),
      };
    },
  };
}
