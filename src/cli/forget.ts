/**
 * `reindex forget --face <id> | --user <id> --target <collection>`: takes one person out of every
 * copy this tool made of them, for a request to be forgotten: their faces and user in the target,
 * their rows in the results table, their faces in the target's ledger, in the chunks and redrive
 * files of the runs into the target, and in the review DLQ and the results DLQ. Reports hold
 * figures only.
 *
 * Each step finds what is left, so a forget that stopped half way is finished by running it again:
 * the rows, which name the person's new faces, go last. The records files are the operator's: a
 * run of one that still names the person, without --source, would index their faces again.
 */
import {
  DeleteUserCommand,
  ListFacesCommand,
  ListUsersCommand,
  ResourceNotFoundException,
  type RekognitionClient,
} from '@aws-sdk/client-rekognition';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import type { Command } from 'commander';
import type { AwsClients } from '../aws/clients';
import { createLedger } from '../stores/ledger';
import { createFaceDeleter, FACES_PER_PAGE } from '../aws/rekognition';
import { createResultsDlq } from '../stores/results-dlq';
import type { Config } from '../domain/config';
import { isPersonsReviewItem, isPersonsRow, type Person, recordWithoutPerson } from '../domain/forgetting';
import type { ChunkEntry } from '../activities/manifest';
import { UsageError, withAws } from './common';
import { holdReviewMessages } from './review-dlq';
import { createRunObjects, type RunObject, type RunObjects } from '../stores/run-objects';

interface ForgetFlags {
  face?: string;
  user?: string;
  target: string;
  dryRun?: boolean;
  json?: boolean;
}

/** What forget removed (or, with --dry-run, would remove), place by place. */
export interface Forgotten {
  target: string;
  bucket: string;
  /** The person's faces deleted from the target. */
  targetFaces: string[];
  /** Whether their user was deleted from the target. */
  targetUser: boolean;
  /** Their rows deleted from the results table. */
  rows: number;
  /** Their faces taken out of the target's ledger. */
  ledgerFaces: number;
  /**
   * Their faces taken out of run chunks and redrive records files, how many objects changed, and
   * the chunks that are no JSON (damaged): nothing says whether those name the person.
   */
  runFiles: { faces: number; objects: number; unreadable: string[] };
  reviewMessages: number;
  resultsDlqRows: number;
  dryRun: boolean;
}

/** The person as the target's rows and faces know them, from what the operator named. */
async function findPerson(
  aws: AwsClients,
  config: Config,
  flags: ForgetFlags,
): Promise<{ person: Person; rowKeys: string[] }> {
  const oldFaceIds = new Set<string>(flags.face === undefined ? [] : [flags.face]);
  const newFaceIds = new Set<string>(flags.face === undefined ? [] : [flags.face]);
  const person: Person = { oldFaceIds, newFaceIds, userId: flags.user };
  const rowKeys: string[] = [];
  try {
    const pages = paginateScan(
      { client: aws.dynamodb },
      {
        TableName: config.resultsTable,
        FilterExpression:
          flags.face === undefined
            ? 'CollectionId = :target AND UserId = :user'
            : 'CollectionId = :target AND (OldFaceId = :face OR FaceId = :face)',
        ExpressionAttributeValues: {
          ':target': flags.target,
          ...(flags.face === undefined ? { ':user': flags.user } : { ':face': flags.face }),
        },
        ProjectionExpression: 'OldFaceId, FaceId, UserId, CollectionId',
      },
    );
    for await (const page of pages) {
      for (const row of (page.Items ?? []) as {
        OldFaceId: string;
        FaceId: string;
        UserId?: string;
        CollectionId: string;
      }[]) {
        if (!isPersonsRow(row, person, flags.target)) continue;
        rowKeys.push(row.OldFaceId);
        oldFaceIds.add(row.OldFaceId);
        newFaceIds.add(row.FaceId);
      }
    }
  } catch (error) {
    if (error instanceof ResourceNotFoundException || (error as Error).name === 'ResourceNotFoundException') {
      throw new UsageError(`the results table ${config.resultsTable} does not exist`);
    }
    throw error;
  }
  if (flags.user !== undefined)
    for (const faceId of await facesOfUser(aws.rekognition, flags.target, flags.user)) newFaceIds.add(faceId);
  return { person, rowKeys };
}

/** Pages of ListFaces; none when the collection does not exist. */
async function listFaces(
  rekognition: RekognitionClient,
  request: { CollectionId: string; UserId?: string; FaceIds?: string[] },
): Promise<string[]> {
  const found: string[] = [];
  let NextToken: string | undefined;
  try {
    do {
      const page = await rekognition.send(new ListFacesCommand({ ...request, MaxResults: FACES_PER_PAGE, NextToken }));
      found.push(...(page.Faces ?? []).flatMap((face) => (face.FaceId ? [face.FaceId] : [])));
      NextToken = page.NextToken;
    } while (NextToken);
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return [];
    throw error;
  }
  return found;
}

const facesOfUser = (rekognition: RekognitionClient, CollectionId: string, UserId: string) =>
  listFaces(rekognition, { CollectionId, UserId });

/** Which of these faces the target holds. */
async function facesInTarget(
  rekognition: RekognitionClient,
  CollectionId: string,
  faceIds: string[],
): Promise<string[]> {
  const held: string[] = [];
  for (let start = 0; start < faceIds.length; start += FACES_PER_PAGE) {
    held.push(
      ...(await listFaces(rekognition, { CollectionId, FaceIds: faceIds.slice(start, start + FACES_PER_PAGE) })),
    );
  }
  return held;
}

async function userExists(rekognition: RekognitionClient, CollectionId: string, UserId: string): Promise<boolean> {
  let NextToken: string | undefined;
  try {
    do {
      const page = await rekognition.send(new ListUsersCommand({ CollectionId, MaxResults: 500, NextToken }));
      if ((page.Users ?? []).some((user) => user.UserId === UserId)) return true;
      NextToken = page.NextToken;
    } while (NextToken);
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return false;
    throw error;
  }
  return false;
}

/** Whether a run indexed into the target: it signed rows for it, or its report says so. Asked once a run. */
function runsIntoTarget(
  aws: AwsClients,
  config: Config,
  runObjects: RunObjects,
  target: string,
): (runId: string) => Promise<boolean> {
  const ledger = createLedger(aws.s3, config.bucket);
  const known = new Map<string, Promise<boolean>>();
  return (runId) => {
    let answer = known.get(runId);
    if (answer === undefined) {
      answer = (async () =>
        (await ledger.runKey(target, runId)) !== undefined || (await runObjects.reportedTarget(runId)) === target)();
      known.set(runId, answer);
    }
    return answer;
  };
}

/** The person's faces out of one chunk or redrive records file; how many faces it held, or that it is no chunk. */
async function forgetInRunObject(
  runObjects: RunObjects,
  object: RunObject,
  person: Person,
  ofTarget: boolean,
  dryRun: boolean,
): Promise<number | 'unreadable'> {
  const text = await runObjects.readText(object.Key);
  let removed = 0;
  let rewritten: string;
  if (object.kind === 'chunk') {
    let entries: ChunkEntry[];
    try {
      entries = JSON.parse(text) as ChunkEntry[];
    } catch {
      return 'unreadable';
    }
    if (!Array.isArray(entries)) return 'unreadable';
    const kept = entries.flatMap((entry): ChunkEntry[] => {
      const left = recordWithoutPerson(entry.record, person, ofTarget);
      removed += left.removed;
      if (left.removed === 0) return [entry];
      if (left.record === undefined) return [];
      const oldFacesGone = entry.oldFacesGone?.filter((faceId) => !person.oldFaceIds.has(faceId));
      return [{ ...entry, record: left.record as ChunkEntry['record'], ...(oldFacesGone ? { oldFacesGone } : {}) }];
    });
    rewritten = JSON.stringify(kept);
  } else {
    const lines = text.split('\n').flatMap((line) => {
      if (line.trim() === '') return [];
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        return [line];
      }
      const left = recordWithoutPerson(record, person, ofTarget);
      removed += left.removed;
      return left.removed === 0 ? [line] : left.record === undefined ? [] : [JSON.stringify(left.record)];
    });
    rewritten = lines.join('\n') + '\n';
  }
  if (removed > 0 && !dryRun)
    await runObjects.writeText(
      object.Key,
      rewritten,
      object.kind === 'chunk' ? 'application/json' : 'application/x-ndjson',
    );
  return removed;
}

export async function forget(aws: AwsClients, config: Config, flags: ForgetFlags): Promise<Forgotten> {
  const dryRun = flags.dryRun ?? false;
  const { target } = flags;
  const { person, rowKeys } = await findPerson(aws, config, flags);
  const runObjects = createRunObjects(aws.s3, config.bucket);
  const ofTarget = runsIntoTarget(aws, config, runObjects, target);

  const targetFaces = await facesInTarget(aws.rekognition, target, [...person.newFaceIds]);
  const targetUser = person.userId !== undefined && (await userExists(aws.rekognition, target, person.userId));
  if (!dryRun) {
    // The user first: deleting it lets its faces go, which Rekognition refuses while a user holds them.
    if (targetUser) {
      await aws.rekognition
        .send(new DeleteUserCommand({ CollectionId: target, UserId: person.userId }))
        .catch((error: unknown) => {
          if (!(error instanceof ResourceNotFoundException)) throw error;
        });
    }
    await createFaceDeleter(aws.rekognition)(target, targetFaces);
  }

  const ledger = createLedger(aws.s3, config.bucket);
  let ledgerFaces = 0;
  for (const faceId of person.newFaceIds) {
    const claimed = dryRun
      ? (await ledger.claim(target, faceId)) !== undefined
      : await ledger.forgetFace(target, faceId);
    if (claimed) ledgerFaces += 1;
  }

  const runFiles: Forgotten['runFiles'] = { faces: 0, objects: 0, unreadable: [] };
  for (const object of await runObjects.list()) {
    // Runs into other targets answer to those targets' forgets.
    if (object.kind === 'report' || !(await ofTarget(object.runId))) continue;
    const removed = await forgetInRunObject(runObjects, object, person, true, dryRun);
    if (removed === 'unreadable') runFiles.unreadable.push(object.Key);
    else if (removed > 0) {
      runFiles.faces += removed;
      runFiles.objects += 1;
    }
  }

  const review = await holdReviewMessages(aws.sqs, config.reviewDlqUrl, {});
  const reviewIds: string[] = [];
  try {
    for (const message of review.messages) {
      const userCounts = person.userId !== undefined && (await ofTarget(message.item.runId));
      if (isPersonsReviewItem(message.item, person, userCounts)) reviewIds.push(message.messageId);
    }
  } finally {
    // Deleting none releases them all.
    await review.deleteAndRelease(dryRun ? [] : reviewIds);
  }

  const resultsDlq = await createResultsDlq({ sqs: aws.sqs, s3: aws.s3, config }).holdRows();
  let resultsDlqRows = 0;
  if (resultsDlq) {
    const ids = resultsDlq.rows
      .filter(({ row }) => isPersonsRow(row, person, target))
      .map(({ message }) => message.MessageId ?? '');
    resultsDlqRows = ids.length;
    await resultsDlq.held.deleteAndRelease(dryRun ? [] : ids);
  }

  if (!dryRun) {
    for (const OldFaceId of rowKeys) {
      await aws.dynamodb
        .send(
          new DeleteCommand({
            TableName: config.resultsTable,
            Key: { OldFaceId },
            ConditionExpression: 'CollectionId = :target',
            ExpressionAttributeValues: { ':target': target },
          }),
        )
        .catch((error: unknown) => {
          // Another target's row took the old face since: not this target's to delete.
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        });
    }
  }
  return {
    target,
    bucket: config.bucket,
    targetFaces,
    targetUser,
    rows: rowKeys.length,
    ledgerFaces,
    runFiles,
    reviewMessages: reviewIds.length,
    resultsDlqRows,
    dryRun,
  };
}

function describe(forgotten: Forgotten, who: string): string[] {
  const verb = forgotten.dryRun ? 'would remove' : 'removed';
  return [
    `${verb} ${who} from ${forgotten.target}:`,
    `  target collection: ${forgotten.targetFaces.length} faces${forgotten.targetUser ? ', and the user' : ''}`,
    `  results table: ${forgotten.rows} rows`,
    `  ledger: ${forgotten.ledgerFaces} faces`,
    `  run chunks and redrive files: ${forgotten.runFiles.faces} faces in ${forgotten.runFiles.objects} objects`,
    ...forgotten.runFiles.unreadable.map(
      (Key) => `  not read, no chunk (damaged?); check it by hand or delete it: s3://${forgotten.bucket}/${Key}`,
    ),
    `  review DLQ: ${forgotten.reviewMessages} messages`,
    `  results DLQ: ${forgotten.resultsDlqRows} rows`,
    'records files you keep are not changed: a run of one that still names these faces, without --source, indexes them again',
  ];
}

export function registerForgetCommand(program: Command): void {
  program
    .command('forget')
    .description(
      'remove one person from everything this tool wrote for a target: faces and user, rows, ledger, run files, DLQs',
    )
    .option('--face <id>', 'an old FaceId (as records name it) or a new FaceId in the target')
    .option('--user <id>', 'a UserId of the target')
    .requiredOption('--target <collection>', 'the collection runs indexed into')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .option('--json', 'print one JSON object')
    .action(async (flags: ForgetFlags) => {
      if ((flags.face === undefined) === (flags.user === undefined))
        throw new UsageError('name the person with exactly one of --face <id> or --user <id>');
      await withAws(async ({ config, aws }) => {
        const forgotten = await forget(aws, config, flags);
        if (flags.json) console.log(JSON.stringify(forgotten));
        else
          for (const line of describe(
            forgotten,
            flags.face === undefined ? `user ${flags.user}` : `face ${flags.face}`,
          ))
            console.log(line);
      });
    });
}
