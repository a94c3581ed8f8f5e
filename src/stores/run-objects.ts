/**
 * S3: what runs leave in the bucket under `runs/<run>/`: chunks of the records file (records with
 * their keys, ExternalImageIds, FaceIds, UserIds and boxes), the redrive records file of a redrive
 * run, and the report (figures only). The patterns follow chunkKey, redriveRecordsKey and reportKey
 * (src/shared.ts). A run tags its objects when it ends, and the bucket's lifecycle expires tagged
 * objects only; `reindex purge` and `reindex forget` find them here.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { reportKey, RUN_ENDED_TAG, type RunSummary } from '../shared';
import { httpStatusOf } from '../aws/clients';
import { eachInSlices } from './ledger';

export type RunObjectKind = 'chunk' | 'redrive records' | 'report';

export interface RunObject {
  Key: string;
  runId: string;
  kind: RunObjectKind;
}

const CHUNK = /^runs\/(.+)\/chunks\/\d{8}\.json$/;
const REDRIVE = /^runs\/(.+)\/redrive\/records\.jsonl$/;
const REPORT = /^runs\/(.+)\/report\/summary\.(json|csv)$/;
/** DeleteObjects takes at most 1,000 keys. */
const DELETE_BATCH = 1000;

/** What a key under `runs/` is, and of which run; undefined for anything this tool does not write there. */
export function runObjectOf(Key: string): RunObject | undefined {
  for (const [pattern, kind] of [
    [CHUNK, 'chunk'],
    [REDRIVE, 'redrive records'],
    [REPORT, 'report'],
  ] as const) {
    const runId = pattern.exec(Key)?.[1];
    if (runId !== undefined) return { Key, runId, kind };
  }
  return undefined;
}

export function createRunObjects(s3: S3Client, bucket: string) {
  async function readText(Key: string): Promise<string> {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
    return (await object.Body?.transformToString()) ?? '';
  }

  /** Every object runs wrote under `runs/`, or under one run's folder. */
  async function list(runId?: string): Promise<RunObject[]> {
    const found: RunObject[] = [];
    const Prefix = runId === undefined ? 'runs/' : `runs/${runId}/`;
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix })) {
      for (const { Key } of page.Contents ?? []) {
        const object = Key === undefined ? undefined : runObjectOf(Key);
        // A run named "a" must not take the objects of a run named "a/b".
        if (object && (runId === undefined || object.runId === runId)) found.push(object);
      }
    }
    return found;
  }

  return {
    list,
    readText,

    async writeText(Key: string, Body: string, ContentType: string): Promise<void> {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body, ContentType }));
    },

    async delete(keys: string[]): Promise<void> {
      for (let start = 0; start < keys.length; start += DELETE_BATCH) {
        const { Errors = [] } = await s3.send(
          new DeleteObjectsCommand({
            Bucket: bucket,
            Delete: { Objects: keys.slice(start, start + DELETE_BATCH).map((Key) => ({ Key })), Quiet: true },
          }),
        );
        if (Errors.length > 0)
          throw new Error(
            `S3 did not delete ${Errors.length} objects, the first ${Errors[0]?.Key}: ${Errors[0]?.Code} ${Errors[0]?.Message}`,
          );
      }
    },

    /** The target a run's report names; undefined when the run wrote no report. */
    async reportedTarget(runId: string): Promise<string | undefined> {
      let text: string;
      try {
        text = await readText(reportKey(runId, 'json'));
      } catch (error) {
        if (httpStatusOf(error) === 404) return undefined;
        throw error;
      }
      return (JSON.parse(text) as Partial<RunSummary>).targetCollectionId;
    },

    /** Tags every object of the run as ended, so the bucket's retention rule may expire it; returns how many. */
    async tagEnded(runId: string): Promise<number> {
      const objects = await list(runId);
      await eachInSlices(objects, ({ Key }) =>
        s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key, Tagging: { TagSet: [{ ...RUN_ENDED_TAG }] } })),
      );
      return objects.length;
    },
  };
}

export type RunObjects = ReturnType<typeof createRunObjects>;
