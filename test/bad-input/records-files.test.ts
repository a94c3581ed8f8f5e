/**
 * The corpus's records files that are no records file as a whole (empty, not JSON, UTF-16,
 * compressed, one object instead of records): `reindex validate` and `reindex start`, as processes,
 * each refuse every one of them before any work, in one line on stderr with exit code 2.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { forEachConcurrently } from '../../src/cli/common';
import { loadConfig } from '../../src/domain/config';
import { type CliOutcome, runCli } from '../../harness/cli';
import { useLocalStack } from '../../harness/local-stack';
import { casesWith, inputOf, testPrefix } from './corpus';

const cases = casesWith('cli');
const uris = new Map<string, string>();
const directory = mkdtempSync(path.join(tmpdir(), 'bad-input-'));
let aws: AwsClients;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  env = { ...process.env, ...useLocalStack() };
  const config = loadConfig();
  aws = createAwsClients(config);
  const prefix = testPrefix();
  for (const [i, testCase] of cases.entries()) {
    const Key = `${prefix}/files/${i}-${path.basename(testCase.input.replace(/^generated:/, ''))}`;
    await aws.s3.send(
      new PutObjectCommand({ Bucket: config.bucket, Key, Body: inputOf(testCase, { bucket: config.bucket, prefix }) }),
    );
    uris.set(testCase.name, `s3://${config.bucket}/${Key}`);
  }
});

afterAll(() => {
  destroyAwsClients(aws);
  rmSync(directory, { recursive: true, force: true });
});

/** Each case's command line run as a process, a few at a time; the outcomes by case name. */
async function runEach(args: (uri: string, name: string) => string[]): Promise<Record<string, CliOutcome>> {
  const outcomes: Record<string, CliOutcome> = {};
  await forEachConcurrently(cases, 3, async ({ name }) => {
    outcomes[name] = await runCli(args(uris.get(name) ?? '', name), env);
  });
  return outcomes;
}

const expected = () =>
  Object.fromEntries(
    cases.map(({ name, outcome }) => [
      name,
      { code: 2, stdout: '', stderr: `reindex: the records file ${uris.get(name)} ${outcome.cli}\n` },
    ]),
  );

test(`reindex validate refuses each of the ${cases.length} files that are no records file, in one line, exit code 2`, async () => {
  const outcomes = await runEach((uri, name) => [
    'validate',
    uri,
    '--failures',
    path.join(directory, `${cases.findIndex((c) => c.name === name)}.failures.jsonl`),
  ]);

  expect(outcomes).toEqual(expected());
}, 120_000);

test(`reindex start refuses each of the ${cases.length} files that are no records file before a run starts, in one line, exit code 2`, async () => {
  // Nobody polls this task queue: a start that got through would be a run that never moves, and a failure here.
  const outcomes = await runEach((uri) => [
    'start',
    '--manifest',
    uri,
    '--target',
    `bad-input-${randomUUID()}`,
    '--id',
    `bad-input-${randomUUID()}`,
  ]);

  expect(outcomes).toEqual(expected());
}, 120_000);
