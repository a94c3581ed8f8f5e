/**
 * Payload encryption end to end on the local stack, as an operator turns it on: a key file, a worker
 * and `reindex start` that both read it, then the checks of someone who can read the Temporal server
 * but holds no key (the histories show no face, box or image key), and of the operator who holds it
 * (`reindex codec-server` gives the Web UI and `temporal workflow show` the clear values back).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateCollectionCommand } from '@aws-sdk/client-rekognition';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { temporal } from '@temporalio/proto';
import { ReasonCode } from '../../src/domain/reasons';
import { imageRef } from '../../src/domain/identifiers';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../src/encryption/codec';
import { encryptingDataConverter } from '../../src/encryption/data-converter';
import { type EncryptionKey, type Keyring, loadKeyring } from '../../src/encryption/key';
import { type RunSummary, SEARCH_ATTRIBUTES } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { freePort } from '../../harness/ports';
import { createRunResources, resultRows, type RunResources, takeReview, writeRecords } from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';
import { leakedIn, payloadsIn, readableTexts, runHistories, utf8 } from './histories';

const REINDEX = path.resolve(__dirname, '../../bin/reindex.js');
const TEMPORAL = path.resolve(__dirname, '../../.tools/bin/temporal');
const UI_ORIGIN = 'http://127.0.0.1:8233';
const execFileAsync = promisify(execFile);

let resources: RunResources;
let worker: RunningWorker;
let plainClient: Client;
let codecServer: ChildProcess;
let codecUrl: string;
let keyFolder: string;
let keyFile: string;
let key: EncryptionKey;
/** A `reindex` process of the suite's resources, holding the key. */
let cliEnv: NodeJS.ProcessEnv;

/** `reindex codec-server` in its own process; resolves once it listens. */
async function startCodecServer(env: NodeJS.ProcessEnv): Promise<{ server: ChildProcess; url: string }> {
  const port = await freePort();
  const server = spawn(
    process.execPath,
    [REINDEX, 'codec-server', '--port', String(port), '--ui-origin', UI_ORIGIN, '--allow-encode'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  server.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    server.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('listening on')) resolve();
    });
    server.once('exit', (code) => reject(new Error(`codec-server ended with ${code}: ${output}`)));
  });
  return { server, url: `http://127.0.0.1:${port}` };
}

beforeAll(async () => {
  keyFolder = mkdtempSync(path.join(tmpdir(), 'reindex-encryption-'));
  keyFile = path.join(keyFolder, 'key');
  writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const keyring = loadKeyring({ REINDEX_ENCRYPTION_KEY_FILE: keyFile }) as Keyring;
  key = keyring.current;
  resources = await createRunResources();
  worker = await startWorker(resources, encryptingDataConverter(keyring, { namespace: 'default' }));
  cliEnv = { ...worker.cliEnv, REINDEX_ENCRYPTION_KEY_FILE: keyFile };
  // What anyone who can read the Temporal server sees: no codec.
  plainClient = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
  ({ server: codecServer, url: codecUrl } = await startCodecServer({
    ...process.env,
    REINDEX_ENCRYPTION_KEY_FILE: keyFile,
  }));
}, 120_000);

afterAll(async () => {
  if (codecServer && codecServer.exitCode === null && codecServer.signalCode === null) {
    codecServer.kill('SIGTERM');
    await once(codecServer, 'exit');
  }
  await plainClient?.connection.close();
  await worker?.stop();
  await resources?.release();
  rmSync(keyFolder, { recursive: true, force: true });
});

/** A payload as the codec protocol carries it: proto3 JSON, bytes in base64. */
const protoJson = ({ metadata, data }: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(metadata ?? {}).map(([name, value]) => [name, Buffer.from(value).toString('base64')]),
  ),
  data: Buffer.from(data ?? []).toString('base64'),
});

const box = (left: number, top: number, width: number, height: number) =>
  [left, top, width, height] as [number, number, number, number];

test('an encrypted run migrates as usual, its histories show no face, box or image key, and the codec server reads them back', async () => {
  const { manifest, oldFaceIds } = await writeRecords(resources, [
    {
      faces: [
        { person: 'ana', box: box(0.1371, 0.1593, 0.2917, 0.3141) },
        { person: 'bo', box: box(0.5526, 0.2135, 0.2718, 0.2982) },
      ],
    },
    { faces: [{ person: 'cy', box: box(0.2843, 0.1927, 0.3561, 0.4172) }], userId: 'user-cy' },
    { faces: [{ person: 'dee', box: box(0.3117, 0.2269, 0.3323, 0.3847) }], missing: true },
  ]);
  const target = resources.ownCollection(`enc-${randomUUID()}`);
  const id = `enc-${randomUUID()}`;

  const outcome = await runCli(
    [
      'start',
      '--manifest',
      `s3://${manifest.Bucket}/${manifest.Key}`,
      '--target',
      target,
      '--id',
      id,
      '--quality-filter',
      'NONE',
      '--batch-size',
      '2',
      '--wait',
      '--json',
    ],
    cliEnv,
  );

  // The run is right: encryption changed nothing an operator checks.
  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  expect(JSON.parse(lastLine(outcome.stdout)) as RunSummary).toMatchObject({
    status: 'completed',
    images: 3,
    matched: 3,
    dlq: 1,
    usersCreated: 1,
  });
  const rows = await resultRows(resources, id);
  expect(rows).toHaveLength(3);
  const review = await takeReview(resources);
  expect(review).toHaveLength(1);
  expect(review[0]?.reason).toBe(ReasonCode.ImageNotFound);
  // The batch decoded the activity's encrypted failure: the reviewer reads the real reason.
  expect(review[0]?.detail).toBe(
    `IndexFaces refused ${imageRef(review[0]?.Bucket ?? '', review[0]?.Key ?? '')}: Unable to get object metadata from S3. Check object key, region and/or access permissions.`,
  );

  const histories = await runHistories(plainClient, id);
  expect([...histories.keys()].sort()).toEqual([id, `${id}/batch-0`, `${id}/batch-1`]);
  const boxNumbers = rows
    .flatMap((row) => [row.BoundingBox, row.OldBoundingBox])
    .flatMap((b) => [b.Left, b.Top, b.Width, b.Height])
    .map(String);
  const secrets = [
    ...oldFaceIds,
    ...rows.flatMap((row) => [row.FaceId, row.ImageId, row.Key]),
    ...review.flatMap((item) => item.Key ?? []),
    manifest.Key,
    // The run's id is the operator's own: nothing in the clear names its target.
    target,
    // Numbers of at least 4 decimals: a shorter one could turn up in ciphertext by chance.
    ...boxNumbers.filter((number) => number.length >= 6),
  ];
  expect(boxNumbers.filter((number) => number.length >= 6).length).toBeGreaterThanOrEqual(12);
  expect(leakedIn(readableTexts(histories), secrets)).toEqual([]);

  const payloads = [...histories.values()].flatMap((history) => payloadsIn(history));
  const searchAttributes = payloads.filter(({ path: where }) => where.includes('searchAttributes'));
  // The SDK writes a patch marker's payload itself, unencoded: it holds the patch's name, which is code, not data.
  const patchMarkers = payloads.filter(({ path: where }) =>
    where.includes('markerRecordedEventAttributes.details.patch-data'),
  );
  expect(patchMarkers.length).toBeGreaterThanOrEqual(1);
  for (const { payload } of patchMarkers) {
    expect(Object.keys(JSON.parse(utf8(payload.data)) as object).sort()).toEqual(['deprecated', 'id']);
    expect((JSON.parse(utf8(payload.data)) as { id: string }).id).toMatch(/^[a-z-]+$/);
  }
  const data = payloads.filter(
    ({ path: where }) => !where.includes('searchAttributes') && !patchMarkers.some((marker) => marker.path === where),
  );
  expect(data.length).toBeGreaterThan(20);
  const notEncrypted = data.filter(
    ({ payload }) =>
      utf8(payload.metadata?.encoding) !== ENCRYPTED_ENCODING || utf8(payload.metadata?.[KEY_ID_METADATA]) !== key.id,
  );
  expect(notEncrypted.map(({ path: where }) => where)).toEqual([]);
  // Search attributes stay clear, so runs can be found: they hold the phase, counts and paused only.
  const attributeNames = [...new Set(searchAttributes.map(({ path: where }) => where.split('.').pop()))];
  // TemporalChangeVersion is the SDK's own: it lists the patches the run took, by name.
  const ours = [...Object.values(SEARCH_ATTRIBUTES).map((attribute) => attribute.name), 'TemporalChangeVersion'];
  expect(attributeNames).toContain(SEARCH_ATTRIBUTES.phase.name);
  expect(attributeNames).not.toContain(SEARCH_ATTRIBUTES.collection.name);
  expect(attributeNames.filter((name) => !ours.includes(name ?? ''))).toEqual([]);

  // The missing image's failure: its message and stack trace travel encrypted, not as clear strings.
  const failures = [...histories.values()].flatMap((history) =>
    (history.events ?? []).flatMap((event) => event.activityTaskFailedEventAttributes?.failure ?? []),
  );
  expect(failures.length).toBeGreaterThanOrEqual(1);
  for (const failure of failures) {
    expect(failure.message).toBe('Encoded failure');
    expect(failure.stackTrace).toBe('');
    expect(utf8(failure.encodedAttributes?.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
  }

  // The operator's view through the codec server, as the Web UI asks it.
  const started = histories.get(id)?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  const decoded = await fetch(`${codecUrl}/default/decode`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', Origin: UI_ORIGIN },
    body: JSON.stringify({ payloads: [protoJson(started ?? {})] }),
  });
  expect(decoded.status).toBe(200);
  expect(decoded.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
  const { payloads: [clear] = [] } = (await decoded.json()) as {
    payloads?: { metadata: Record<string, string>; data: string }[];
  };
  expect(Buffer.from(clear?.metadata.encoding ?? '', 'base64').toString()).toBe('json/plain');
  expect(JSON.parse(Buffer.from(clear?.data ?? '', 'base64').toString())).toMatchObject({
    manifest,
    targetCollectionId: target,
  });

  // `temporal workflow show` shows the clear input only through the codec server.
  const show = async (...flags: string[]) =>
    (await execFileAsync(TEMPORAL, ['workflow', 'show', '--workflow-id', id, '--detailed', ...flags])).stdout;
  expect(await show()).not.toContain(manifest.Key);
  expect(await show('--codec-endpoint', `${codecUrl}/{namespace}`)).toContain(manifest.Key);
}, 60_000);

test("the codec server answers the Web UI's origin only", async () => {
  const preflight = await fetch(`${codecUrl}/default/decode`, {
    method: 'OPTIONS',
    headers: {
      Origin: UI_ORIGIN,
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'content-type,x-namespace',
    },
  });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
  expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
  expect(preflight.headers.get('access-control-allow-headers')).toBe('content-type, x-namespace, authorization');

  const stranger = await fetch(`${codecUrl}/decode`, {
    method: 'POST',
    headers: { Origin: 'http://evil.example', 'Content-Type': 'application/json' },
    body: '{"payloads":[]}',
  });
  expect(stranger.status).toBe(403);
  expect(stranger.headers.get('access-control-allow-origin')).toBeNull();

  const encoded = await fetch(`${codecUrl}/encode`, {
    method: 'POST',
    body: JSON.stringify({
      payloads: [protoJson({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"ana.jpg"') })],
    }),
  });
  const { payloads: [sealed] = [] } = (await encoded.json()) as {
    payloads?: { metadata: Record<string, string>; data: string }[];
  };
  expect(Buffer.from(sealed?.metadata[KEY_ID_METADATA] ?? '', 'base64').toString()).toBe(key.id);
  expect(Buffer.from(sealed?.data ?? '', 'base64').toString()).not.toContain('ana.jpg');
});

test('a run that fails: the operator reads why, the history holds only encrypted failure text', async () => {
  // A source on the newest face model: the target is not newer, so the run refuses it and fails.
  const source = resources.ownCollection(`enc-source-${randomUUID()}`);
  await resources.aws.rekognition.send(new CreateCollectionCommand({ CollectionId: source }));
  const target = resources.ownCollection(`enc-${randomUUID()}`);
  const id = `enc-${randomUUID()}`;
  const { manifest } = await writeRecords(resources, [{ faces: [{ person: 'fay', box: box(0.2, 0.2, 0.4, 0.4) }] }]);

  const outcome = await runCli(
    [
      'start',
      '--manifest',
      `s3://${manifest.Bucket}/${manifest.Key}`,
      '--target',
      target,
      '--source',
      source,
      '--id',
      id,
      '--wait',
    ],
    cliEnv,
  );

  expect(outcome.code).toBe(1);
  expect(outcome.stderr).toContain(`not newer than 7.0 of ${source}`);
  const histories = await runHistories(plainClient, id);
  const failure = histories.get(id)?.events?.find((event) => event.workflowExecutionFailedEventAttributes)
    ?.workflowExecutionFailedEventAttributes?.failure;
  const chain: temporal.api.failure.v1.IFailure[] = [];
  for (let level = failure; level; level = level.cause) chain.push(level);
  expect(chain.length).toBeGreaterThanOrEqual(2);
  expect(chain.map((level) => [level.message, level.stackTrace])).toEqual(chain.map(() => ['Encoded failure', '']));
  expect(leakedIn(readableTexts(histories), [source, target, manifest.Key])).toEqual([]);
}, 60_000);

test('a reader holding another key is told which key the run needs', async () => {
  const { manifest } = await writeRecords(resources, [{ faces: [{ person: 'eve', box: box(0.2, 0.2, 0.4, 0.4) }] }]);
  const target = resources.ownCollection(`enc-${randomUUID()}`);
  const id = `enc-${randomUUID()}`;
  expect(
    (
      await runCli(
        [
          'start',
          '--manifest',
          `s3://${manifest.Bucket}/${manifest.Key}`,
          '--target',
          target,
          '--id',
          id,
          '--quality-filter',
          'NONE',
          '--wait',
        ],
        cliEnv,
      )
    ).code,
  ).toBe(0);
  const otherKey = { id: 'other-key', secret: randomBytes(32) };
  const reader = new Client({
    connection: plainClient.connection,
    dataConverter: encryptingDataConverter({ current: otherKey, earlier: [] }, { namespace: 'default' }),
  });

  await expect(reader.workflow.getHandle(id).result()).rejects.toThrow(
    `payload was encrypted with key id ${key.id}, but this process holds key id other-key`,
  );
}, 60_000);

describe('a key missing or set wrongly is one line on stderr and exit code 2', () => {
  test.each([
    [
      'codec-server without a key',
      ['codec-server'],
      {},
      'reindex: codec-server needs the key the workers encrypt with: set REINDEX_ENCRYPTION_KEY_FILE',
    ],
    [
      'status with a key of 16 bytes',
      ['status', 'any-run'],
      { REINDEX_ENCRYPTION_KEY: randomBytes(16).toString('base64') },
      'reindex: invalid configuration: REINDEX_ENCRYPTION_KEY must hold a base64 key of 32 bytes (make one with: openssl rand -base64 32)',
    ],
    [
      'start with a key file that is not there',
      ['start', '--manifest', 's3://b/k', '--target', 't'],
      { REINDEX_ENCRYPTION_KEY_FILE: '/no/such/key' },
      'reindex: invalid configuration: REINDEX_ENCRYPTION_KEY_FILE cannot be read (ENOENT): /no/such/key',
    ],
  ])('%s', async (_case, args, key, message) => {
    const { REINDEX_ENCRYPTION_KEY_FILE: _file, REINDEX_ENCRYPTION_KEY: _key, ...withoutKey } = worker.cliEnv;

    const outcome = await runCli(args, { ...withoutKey, ...key });

    expect(outcome.stderr).toBe(`${message}\n`);
    expect(outcome.code).toBe(2);
  });
});
