import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { openLineSink, writeLocalFile } from '../../src/cli/files';
import { loadConfig } from '../../src/domain/config';
import { useLocalStack } from '../../harness/local-stack';

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

describe('local files hold faces and names', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'reindex-files-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  test('are readable by their owner only, whether written line by line or whole, and replace what was there', async () => {
    const lines = path.join(directory, 'rows.csv');
    const whole = path.join(directory, 'report.html');
    writeFileSync(whole, 'an older report', { mode: 0o644 });

    const sink = await openLineSink(aws.s3, lines, 'the CSV file');
    await sink.write('UserID,FaceId');
    await sink.close();
    await writeLocalFile(whole, '<html></html>');

    expect(statSync(lines).mode & 0o777).toBe(0o600);
    expect(statSync(whole).mode & 0o777).toBe(0o600);
    expect(readFileSync(whole, 'utf8')).toBe('<html></html>');
  });

  test('are created new: a link planted where one is written is refused, and what it points to is untouched', async () => {
    const victim = path.join(directory, 'victim');
    writeFileSync(victim, 'keep me');
    for (const name of ['rows.csv', 'report.html']) symlinkSync(victim, path.join(directory, `${name}.partial`));

    await expect(openLineSink(aws.s3, path.join(directory, 'rows.csv'), 'the CSV file')).rejects.toThrow(
      'the CSV file',
    );
    await expect(writeLocalFile(path.join(directory, 'report.html'), 'faces')).rejects.toMatchObject({
      code: 'EEXIST',
    });
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
  });
});
