import { randomUUID } from 'node:crypto';
import {
  CreateCollectionCommand,
  DeleteCollectionCommand,
  IndexFacesCommand,
  ListFacesCommand,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { createLedger } from '../../src/stores/ledger';
import { type Config, loadConfig } from '../../src/domain/config';
import { runCli } from '../../harness/cli';
import { useLocalStack } from '../../harness/local-stack';

let env: NodeJS.ProcessEnv;
let config: Config;
let aws: AwsClients;
let target: string;

beforeAll(() => {
  env = { ...process.env, ...useLocalStack() };
  config = loadConfig();
  aws = createAwsClients(config);
});

afterAll(() => {
  destroyAwsClients(aws);
});

beforeEach(async () => {
  target = `reconcile-${randomUUID()}`;
  await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: target }));
});

afterEach(async () => {
  await aws.rekognition.send(new DeleteCollectionCommand({ CollectionId: target }));
});

async function indexed(ExternalImageId: string | undefined, person: string): Promise<string> {
  const Key = `reconcile/${randomUUID()}.png`;
  await aws.s3.send(
    new PutObjectCommand({ Bucket: config.bucket, Key, Body: syntheticPng([{ person, box: [0.2, 0.2, 0.4, 0.4] }]) }),
  );
  const response = await aws.rekognition.send(
    new IndexFacesCommand({
      CollectionId: target,
      Image: { S3Object: { Bucket: config.bucket, Name: Key } },
      ExternalImageId,
    }),
  );
  return response.FaceRecords?.[0]?.Face?.FaceId ?? '';
}

test('--dry-run lists the leftovers a run would delete with their proof, and the faces it would keep, deleting nothing', async () => {
  const externalImageId = `left-${randomUUID()}`;
  await createLedger(aws.s3, config.bucket).recordExternalIds(target, [externalImageId], 'run-1');
  const leftover = await indexed(externalImageId, 'ana');
  const foreign = await indexed(undefined, 'bo');

  const text = await runCli(['reconcile', '--target', target, '--dry-run'], env);
  const json = await runCli(['reconcile', '--target', target, '--dry-run', '--json'], env);

  expect(text.code).toBe(0);
  expect(text.stdout.trim().split('\n')).toEqual([
    `would delete ${leftover} (ExternalImageId ${externalImageId}): its ExternalImageId was indexed by this tool`,
    `would keep   ${foreign}: no record keeps it, but nothing proves this tool indexed it`,
    `${target}: 2 faces, 1 this tool's leftovers to delete, 1 not attributable (kept)`,
  ]);
  expect(JSON.parse(json.stdout)).toMatchObject({
    target,
    facesChecked: 2,
    leftovers: [{ FaceId: leftover, proof: 'its ExternalImageId was indexed by this tool' }],
    unattributed: [{ FaceId: foreign }],
  });
  const { Faces = [] } = await aws.rekognition.send(new ListFacesCommand({ CollectionId: target }));
  expect(Faces).toHaveLength(2);
});

test('without --dry-run, or for a collection that does not exist, it is one line on stderr and exit code 2', async () => {
  const deleting = await runCli(['reconcile', '--target', target], env);
  const missing = await runCli(['reconcile', '--target', `no-such-${randomUUID()}`, '--dry-run'], env);

  expect([deleting.code, deleting.stderr]).toEqual([
    2,
    "reindex: reconcile only lists: pass --dry-run; a run's reconcile phase deletes\n",
  ]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/^reindex: the collection no-such-.* does not exist\n$/);
});
