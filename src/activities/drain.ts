/**
 * The continuous drain: one activity that moves result rows from the results queue into the table
 * for a window of minutes, and settles each duplicate row it refuses before it goes on (the new
 * face deleted from the target, a review message sent, the holding row marked). No row, receipt
 * handle or duplicate leaves the activity: the run hears counts only, so its history stays small
 * however many rows pass.
 */
import { activityInfo, heartbeat, sleep } from '@temporalio/activity';
import type { ReviewItem } from '../domain/outcomes';
import type { DrainPass, DuplicateRow } from './results';

export interface DrainWindow {
  runId: string;
  /** How long the attempt drains before it answers. */
  forMs: number;
  /** Answer as soon as the queue is empty, in flight and delayed messages included. */
  untilEmpty: boolean;
}

export interface DrainedWindow {
  /** Rows written to the table, of every run whose messages this drain took. */
  written: number;
  /** Duplicate rows of `runId` refused and settled: their faces are in review, not matched. */
  duplicatesOfRun: number;
  /** How long the oldest message this drain took had waited in the queue. */
  oldestAgeMs: number;
  queueEmpty: boolean;
}

/** Messages one pass handles before its duplicates are settled. */
const MESSAGES_PER_PASS = 500;
/** An empty queue is looked at again this soon. */
const IDLE_MS = 1_000;

export function createDrain({
  drainPass,
  deleteDuplicateFaces,
  sendToReview,
  settleDuplicates,
}: {
  drainPass: (maxMessages: number, recovered: Set<string>, onProgress: (written: number) => void) => Promise<DrainPass>;
  deleteDuplicateFaces: (duplicates: DuplicateRow[]) => Promise<void>;
  sendToReview: (items: ReviewItem[]) => Promise<void>;
  settleDuplicates: (duplicates: DuplicateRow[]) => Promise<void>;
}) {
  return {
    /**
     * Drains for `forMs` (or until the queue is empty, with `untilEmpty`). A retried attempt goes on
     * from the counts its predecessor heartbeated.
     */
    drainContinuously: async ({ runId, forMs, untilEmpty }: DrainWindow): Promise<DrainedWindow> => {
      const resumed = activityInfo().heartbeatDetails as Omit<DrainedWindow, 'queueEmpty'> | undefined;
      const totals = { written: resumed?.written ?? 0, duplicatesOfRun: resumed?.duplicatesOfRun ?? 0, oldestAgeMs: resumed?.oldestAgeMs ?? 0 };
      const recovered = new Set<string>();
      const deadline = Date.now() + forMs;
      const beat = () => heartbeat({ ...totals });
      for (;;) {
        const pass = await drainPass(MESSAGES_PER_PASS, recovered, (written) => heartbeat({ ...totals, written: totals.written + written }));
        if (pass.duplicates.length > 0) {
          await Promise.all([deleteDuplicateFaces(pass.duplicates), sendToReview(pass.duplicates.map((duplicate) => duplicate.review))]);
          await settleDuplicates(pass.duplicates);
          totals.duplicatesOfRun += pass.duplicates.filter((duplicate) => duplicate.row.RunId === runId).length;
        }
        totals.written += pass.written;
        totals.oldestAgeMs = Math.max(totals.oldestAgeMs, pass.oldestAgeMs);
        beat();
        if ((untilEmpty && pass.queueEmpty) || Date.now() >= deadline) return { ...totals, queueEmpty: pass.queueEmpty };
        if (pass.handled === 0) await sleep(IDLE_MS);
      }
    },
  };
}
