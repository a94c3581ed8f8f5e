/**
 * The promises a run keeps whatever happened during it, checked the way an operator would after a
 * migration: every old face of the records file is a result row or a review-DLQ message (never
 * both, never neither); the target holds exactly the faces the rows name; the rows are as many as
 * the summary's matched; every user and association is the one the records ask for; nothing is
 * left in the results queue. Returns every broken promise, so a failure shows all of them at once.
 */
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { ResultRow, ReviewItem } from '../src/domain/outcomes';
import type { ReasonCounts } from '../src/domain/reasons';
import type { RunSummary } from '../src/shared';
import { facesIn, type OldFace, resultRows, type RunResources, takeReview, usersIn } from './runs';

export interface RunAccount {
  /** Broken promises, in words; empty when the run kept them all. */
  problems: string[];
  rows: ResultRow[];
  /** Review-DLQ messages as delivered: SQS sends at least once, so a face may come twice. */
  reviewMessages: number;
  /** Distinct faces or records in the review DLQ, by reason. */
  reviewByReason: ReasonCounts;
}

/** What the users phase says of a migrated face it could not associate. */
function refusedAssociation(item: ReviewItem): { FaceId: string; UserId: string } | undefined {
  const record = item.record as { OldFaceId?: unknown; FaceId?: unknown; UserId?: unknown } | undefined;
  return typeof record?.FaceId === 'string' && typeof record.UserId === 'string' && typeof record.OldFaceId === 'string'
    ? { FaceId: record.FaceId, UserId: record.UserId }
    : undefined;
}

/** What a review message is about: one face, one face's user association, or a record refused whole. */
function reviewSubject(item: ReviewItem): string {
  if (item.face) return `face ${item.face.FaceId}`;
  const association = refusedAssociation(item);
  return association ? `association of ${association.FaceId}` : `record ${item.recordIndex ?? '?'}`;
}

async function messagesLeft({ aws }: RunResources, QueueUrl: string): Promise<number> {
  const { Attributes = {} } = await aws.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return Object.values(Attributes).reduce((sum, count) => sum + Number(count), 0);
}

const sameSet = (a: string[], b: string[]) =>
  a.length === b.length && [...a].sort().every((value, i) => value === [...b].sort()[i]);

/** Takes the suite's review DLQ, so call it once per run, on resources of that run alone. */
export async function accountForRun(
  resources: RunResources,
  oldFaces: OldFace[],
  summary: RunSummary,
): Promise<RunAccount> {
  const problems: string[] = [];
  const target = summary.targetCollectionId;
  const rows = await resultRows(resources, summary.workflowId);
  const review = await takeReview(resources);

  const rowFaces = new Map(rows.map((row) => [row.OldFaceId, row]));
  const reviewSubjects = new Map<string, ReviewItem>();
  for (const item of review) reviewSubjects.set(reviewSubject(item), item);
  for (const { FaceId } of oldFaces) {
    const inReview = reviewSubjects.has(`face ${FaceId}`);
    if (rowFaces.has(FaceId) && inReview) {
      problems.push(
        `old face ${FaceId} has a result row and a DLQ message (${reviewSubjects.get(`face ${FaceId}`)?.reason}: ${reviewSubjects.get(`face ${FaceId}`)?.detail})`,
      );
    }
    if (!rowFaces.has(FaceId) && !inReview)
      problems.push(`old face ${FaceId} has neither a result row nor a DLQ message: lost`);
  }
  const known = new Set(oldFaces.map((face) => face.FaceId));
  for (const row of rows)
    if (!known.has(row.OldFaceId)) problems.push(`row for ${row.OldFaceId}, which no record names`);

  const reviewByReason: ReasonCounts = {};
  for (const item of reviewSubjects.values()) reviewByReason[item.reason] = (reviewByReason[item.reason] ?? 0) + 1;
  if (
    JSON.stringify(Object.entries(reviewByReason).sort()) !== JSON.stringify(Object.entries(summary.dlqByReason).sort())
  ) {
    problems.push(
      `the DLQ holds ${JSON.stringify(reviewByReason)} but the summary says ${JSON.stringify(summary.dlqByReason)}`,
    );
  }

  if (rows.length !== summary.matched)
    problems.push(`${rows.length} result rows but the summary matched ${summary.matched}`);
  const targetFaces = await facesIn(resources, target);
  const named = new Set(rows.map((row) => row.FaceId));
  const held = new Set(targetFaces);
  const orphans = targetFaces.filter((face) => !named.has(face));
  if (orphans.length > 0) problems.push(`${orphans.length} faces in the target that no row names, e.g. ${orphans[0]}`);
  if (named.size !== rows.length) problems.push('two rows name the same new face');
  const missing = [...named].filter((face) => !held.has(face));
  if (missing.length > 0)
    problems.push(`${missing.length} rows name a face the target does not hold, e.g. ${missing[0]}`);
  if (held.size !== targetFaces.length) problems.push('the target lists a face twice');

  // A user holds the faces its rows name, but for those the users phase refused, each in the DLQ.
  const refused = new Set([...reviewSubjects.values()].flatMap((item) => refusedAssociation(item)?.FaceId ?? []));
  const usersOfRows = new Map<string, string[]>();
  for (const row of rows) {
    if (row.UserId)
      usersOfRows.set(row.UserId, [
        ...(usersOfRows.get(row.UserId) ?? []),
        ...(refused.has(row.FaceId) ? [] : [row.FaceId]),
      ]);
  }
  const users = await usersIn(resources, target);
  if (!sameSet(users, [...usersOfRows.keys()]))
    problems.push(`users ${users.join(',')} in the target, but rows name ${[...usersOfRows.keys()].join(',')}`);
  for (const [userId, faces] of usersOfRows) {
    const associated = await facesIn(resources, target, userId);
    if (!sameSet(associated, faces))
      problems.push(`user ${userId} holds ${associated.length} faces, its rows name ${faces.length} it could take`);
  }
  const expectedUsers = new Set(
    oldFaces.filter((face) => face.UserId && rowFaces.has(face.FaceId)).map((face) => face.UserId ?? ''),
  );
  if (!sameSet(users, [...expectedUsers]))
    problems.push(
      `users ${users.join(',')} in the target, but the records' migrated faces name ${[...expectedUsers].join(',')}`,
    );

  const left = await messagesLeft(resources, resources.config.resultsQueueUrl);
  if (left > 0) problems.push(`${left} messages still in the results queue`);

  return { problems, rows, reviewMessages: review.length, reviewByReason };
}
