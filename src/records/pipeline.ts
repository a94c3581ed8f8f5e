/**
 * The records of a records file, each checked as a run checks it: the one pass that the run's split,
 * `preview`, `validate` and `dlq redrive --records` all read a file through. It takes the reader's
 * entries one at a time and yields one outcome for each, holding nothing, so a file of any size
 * passes through in flat memory; the refusals are counted by reason as they are yielded.
 */
import { addReasonCounts, ReasonCode, type ReasonCounts } from '../domain/reasons';
import { checkSelectedRecord, type ImageRecord, type RecordsSelection, refusesMalformed } from '../domain/records';
import type { ReadCursor, RecordEntry } from './reader';

/**
 * A record the checks take: `record` as a run indexes it, `value` as the file holds it, columns of the user's own kept.
 */
export interface AcceptedRecord {
  kind: 'accepted';
  index: number;
  record: ImageRecord;
  value: unknown;
  after: ReadCursor;
}

/** A record the checks refuse, every problem named in `detail`. */
export interface InvalidRecord {
  kind: 'invalid';
  index: number;
  reason: ReasonCode.InvalidRecord | ReasonCode.DuplicateFaceId;
  detail: string;
  value: unknown;
  after: ReadCursor;
}

/**
 * Text that is no record, refused as INVALID_RECORD with the reader's words. `fatal` when nothing
 * after it could be read; `fileProblem` when the file as a whole is no records file.
 */
export interface MalformedRecord {
  kind: 'malformed';
  index: number;
  reason: ReasonCode.InvalidRecord;
  detail: string;
  fatal: boolean;
  fileProblem?: string;
  after?: ReadCursor;
}

/** Another run's: a record naming another collection, or text that the run refusing unnamed records refuses. */
export interface OtherRunsRecord {
  kind: 'otherRun';
  index: number;
  fatal: boolean;
  after?: ReadCursor;
}

/** What a file read for every record holds: no record is another run's. */
export type FileOutcome = AcceptedRecord | InvalidRecord | MalformedRecord;
export type RecordOutcome = FileOutcome | OtherRunsRecord;

export interface CheckOptions {
  /** When runs of many collections share the file: which of its records are this run's. */
  selection?: RecordsSelection;
  /** Where the refusals are counted, by reason: the caller's tally, or a resumed split's counts to go on from. */
  refusedByReason?: ReasonCounts;
}

/**
 * An outcome for each of the reader's entries, in file order, each refusal counted as it is yielded.
 * Without a selection, no record is another run's.
 */
export function checkedRecords(
  entries: AsyncIterable<RecordEntry>,
  options?: CheckOptions & { selection?: undefined },
): AsyncGenerator<FileOutcome>;
export function checkedRecords(
  entries: AsyncIterable<RecordEntry>,
  options: CheckOptions,
): AsyncGenerator<RecordOutcome>;
export async function* checkedRecords(
  entries: AsyncIterable<RecordEntry>,
  { selection, refusedByReason = {} }: CheckOptions = {},
): AsyncGenerator<RecordOutcome> {
  for await (const entry of entries) {
    if ('malformed' in entry) {
      const { index, malformed: detail, fatal, fileProblem, after } = entry;
      if (refusesMalformed(selection)) {
        addReasonCounts(refusedByReason, ReasonCode.InvalidRecord);
        yield { kind: 'malformed', index, reason: ReasonCode.InvalidRecord, detail, fatal, fileProblem, after };
      } else {
        yield { kind: 'otherRun', index, fatal, after };
      }
      continue;
    }
    const { index, value, after } = entry;
    const check = checkSelectedRecord(selection, value);
    if (check === undefined) {
      yield { kind: 'otherRun', index, fatal: false, after };
    } else if (check.ok) {
      yield { kind: 'accepted', index, record: check.record, value, after };
    } else {
      addReasonCounts(refusedByReason, check.reason);
      yield { kind: 'invalid', index, reason: check.reason, detail: check.problems.join('; '), value, after };
    }
  }
}
