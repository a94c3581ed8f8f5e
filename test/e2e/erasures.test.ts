/**
 * A person asked to be forgotten: their face was deleted from the old collection after the records
 * file was written. A run that names the source checks every old face against it before indexing
 * its image, takes each face's user from the source rather than the file, and a re-run takes out of
 * the target what an earlier run made of a face deleted since.
 */
import { randomUUID } from 'node:crypto';
import {
  AssociateFacesCommand,
  CreateCollectionCommand,
  CreateUserCommand,
  DeleteFacesCommand,
  IndexFacesCommand,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { ReasonCode } from '../../src/domain/reasons';
import { type RunSummary, taskQueues } from '../../src/shared';
import { reindexCollection } from '../../src/workflows';
import { facesIn, indexFacesCalls, resultRows, runInput, takeReview, usersIn } from '../../harness/runs';
import { useWorkerSuite } from '../../harness/worker';

const suite = useWorkerSuite();

/** Indexes a photo into the old collection and returns its record, FaceIds as the old collection gave them. */
async function indexOld(source: string, prefix: string, name: string, people: DeclaredFace[]) {
  const { config, aws } = suite.resources;
  const Key = `${prefix}/${name}.png`;
  await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key, Body: syntheticPng(people) }));
  const ExternalImageId = `${name}-${randomUUID().slice(0, 8)}`;
  const indexed = await aws.rekognition.send(
    new IndexFacesCommand({
      CollectionId: source,
      Image: { S3Object: { Bucket: config.bucket, Name: Key } },
      ExternalImageId,
    }),
  );
  const faces = (indexed.FaceRecords ?? []).map(({ Face }) => ({
    FaceId: Face?.FaceId ?? '',
    ImageId: Face?.ImageId,
    BoundingBoxes: Face?.BoundingBox,
  }));
  return { Bucket: config.bucket, Key, ExternalImageId, Faces: faces };
}

async function run(
  workflowId: string,
  manifest: { Bucket: string; Key: string },
  target: string,
  source: string,
): Promise<RunSummary> {
  return suite.client.workflow.execute(reindexCollection, {
    taskQueue: taskQueues(suite.worker.taskQueue).control,
    workflowId,
    // The old collection is on the service's newest model too.
    args: [runInput(manifest, target, { sourceCollectionId: source, force: true })],
  });
}

test('faces deleted from the source are not made again, and what an earlier run made of them leaves the target', async () => {
  const { config, aws } = suite.resources;
  const prefix = `tests/erasures-${randomUUID()}`;
  const source = suite.resources.ownCollection(`erasures-old-${randomUUID()}`);
  await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: source }));
  const box = (left: number): DeclaredFace['box'] => [left, 0.25, 0.3, 0.3];
  const ana = await indexOld(source, prefix, 'ana', [{ person: 'ana', box: box(0.3) }]);
  const pair = await indexOld(source, prefix, 'bo-and-cy', [
    { person: 'bo', box: box(0.05) },
    { person: 'cy', box: box(0.6) },
  ]);
  const dee = await indexOld(source, prefix, 'dee', [{ person: 'dee', box: box(0.3) }]);
  const [anaFace] = ana.Faces;
  const [boFace, cyFace] = pair.Faces;
  const [deeFace] = dee.Faces;
  if (!anaFace || !boFace || !cyFace || !deeFace) throw new Error('the old collection did not index every face');
  await aws.rekognition.send(new CreateUserCommand({ CollectionId: source, UserId: 'user-ana' }));
  await aws.rekognition.send(
    new AssociateFacesCommand({ CollectionId: source, UserId: 'user-ana', FaceIds: [anaFace.FaceId] }),
  );
  // The file says Ana's face is Mallory's: the source, not the file, says who is who.
  const records = [{ ...ana, Faces: [{ ...anaFace, UserId: 'user-mallory' }] }, pair, dee];
  const manifest = { Bucket: config.bucket, Key: `${prefix}/records.jsonl` };
  await aws.s3.send(
    new PutObjectCommand({ ...manifest, Body: records.map((record) => JSON.stringify(record)).join('\n') }),
  );
  const target = suite.resources.ownCollection(`erasures-new-${randomUUID()}`);

  const first = await run(`erasures-${randomUUID()}`, manifest, target, source);

  expect(first).toMatchObject({ status: 'completed', matched: 4, usersCreated: 1, facesAssociated: 1 });
  expect(await usersIn(suite.resources, target)).toEqual(['user-ana']);
  expect(
    (await resultRows(suite.resources, first.workflowId)).find((row) => row.OldFaceId === anaFace.FaceId)?.UserId,
  ).toBe('user-ana');

  // Bo, and Dee, ask to be forgotten.
  await aws.rekognition.send(
    new DeleteFacesCommand({ CollectionId: source, FaceIds: [boFace.FaceId, deeFace.FaceId] }),
  );
  const rerun = await run(`erasures-${randomUUID()}`, manifest, target, source);

  expect(rerun).toMatchObject({ status: 'completed', images: 3, faces: 4, matched: 1 });
  expect(rerun.dlqByReason).toEqual({ [ReasonCode.OldFaceDeleted]: 2, [ReasonCode.ImageHoldsDeletedFace]: 1 });
  const review = (await takeReview(suite.resources)).filter((item) => item.runId === rerun.workflowId);
  expect(review.map((item) => [item.face?.FaceId, item.reason]).sort()).toEqual(
    [
      [boFace.FaceId, ReasonCode.OldFaceDeleted],
      [cyFace.FaceId, ReasonCode.ImageHoldsDeletedFace],
      [deeFace.FaceId, ReasonCode.OldFaceDeleted],
    ].sort(),
  );
  // Only Ana's new face is left, and only her row: the first run's rows of the other three were taken back.
  const anaRow = (await resultRows(suite.resources, rerun.workflowId)).find((row) => row.OldFaceId === anaFace.FaceId);
  expect(await facesIn(suite.resources, target)).toEqual([anaRow?.FaceId]);
  const rowsOfEither = [
    ...(await resultRows(suite.resources, first.workflowId)),
    ...(await resultRows(suite.resources, rerun.workflowId)),
  ];
  expect(rowsOfEither.map((row) => row.OldFaceId)).toEqual([anaFace.FaceId]);

  // Into a fresh target, the images holding deleted faces are not even sent to IndexFaces.
  const callsBefore = await indexFacesCalls();
  const fresh = await run(
    `erasures-${randomUUID()}`,
    manifest,
    suite.resources.ownCollection(`erasures-fresh-${randomUUID()}`),
    source,
  );

  expect(fresh).toMatchObject({ status: 'completed', matched: 1, dlqByReason: rerun.dlqByReason });
  expect((await indexFacesCalls()) - callsBefore).toBe(1);
}, 180_000);
