import { randomUUID } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/activities/aws-clients';
import { openLineSink } from '../../src/cli/files';
import { loadConfig } from '../../src/domain/config';
import { useLocalStack } from '../helpers/local-stack';

let aws: AwsClients;
let bucket: string;

beforeAll(() => {
  useLocalStack();
  const config = loadConfig();
  aws = createAwsClients(config);
  bucket = config.bucket;
});

afterAll(() => destroyAwsClients(aws));

test('lines larger than one part reach S3 whole, in parts, and in order', async () => {
  const Key = `tests/files-${randomUUID()}/big.jsonl`;
  // S3 takes parts of 5 MB and more; 12 MB of lines make three parts.
  const partBytes = 5 * 1024 * 1024;
  const line = (i: number) => JSON.stringify({ i, padding: 'x'.repeat(1000) });
  const sink = await openLineSink(aws.s3, `s3://${bucket}/${Key}`, 'the test file', partBytes);
  let written = 0;
  let count = 0;
  while (written < 12 * 1024 * 1024) {
    await sink.write(line(count));
    written += line(count).length + 1;
    count += 1;
  }
  await sink.close();

  const { ContentLength, ETag } = await aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
  expect(ContentLength).toBe(written);
  // A multipart object's ETag ends with its number of parts.
  expect(ETag).toMatch(/-3"$/);
  const { Body } = await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
  const lines = ((await Body?.transformToString()) ?? '').trimEnd().split('\n');
  expect(lines).toHaveLength(count);
  expect(lines[count - 1]).toBe(line(count - 1));
});
