/**
 * The embedded local stack on 127.0.0.1: Temporal dev server, moto (S3, SQS, DynamoDB) and
 * rekognition-local.
 *
 *   stack up                 start what is not running, provision resources, write .local/stack.env
 *   stack down               stop the processes `up` started (pid files), nothing else
 *   stack status             say what runs where
 *   stack run -- <command>   run a command against the stack, starting it first if needed and
 *                            stopping afterwards only what this call started
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Connection } from '@temporalio/client';
import { registerSearchAttributes } from '../../src/search-attributes';
import { provision } from './provision';
import { runningPid, type Service, stackServices, startService, stopService } from './services';
import {
  DUMMY_CREDENTIALS,
  HOST,
  MOTO_ACCOUNT,
  REGION,
  ROOT,
  STACK_ENV_FILE,
  type StackPorts,
  stackPorts,
  writeStackEnv,
} from './settings';

function say(message: string): void {
  console.log(`stack: ${message}`);
}

/** Starts every service that is not running, recording in `started` each one this call starts. */
async function startMissing(services: Service[], started: Service[] = []): Promise<void> {
  for (const service of services) {
    const pid = runningPid(service);
    if (pid !== undefined) {
      say(`${service.name} already running (pid ${pid}): ${service.addresses.join(', ')}`);
      continue;
    }
    const startedAt = Date.now();
    started.push(service);
    const newPid = await startService(service);
    say(
      `${service.name} started in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (pid ${newPid}): ${service.addresses.join(', ')}`,
    );
  }
}

/** Provisions the resources and writes the variables that point clients at this stack. */
async function provisionAndDescribe(ports: StackPorts): Promise<Record<string, string>> {
  const awsEndpoint = `http://${HOST}:${ports.moto}`;
  const common = { region: REGION, endpoint: awsEndpoint, credentials: DUMMY_CREDENTIALS };
  const clients = {
    s3: new S3Client({ ...common, forcePathStyle: true }),
    sqs: new SQSClient(common),
    dynamodb: new DynamoDBClient(common),
  };
  try {
    const resources = await provision(clients);
    const variables = {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: DUMMY_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: DUMMY_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL: awsEndpoint,
      AWS_ENDPOINT_URL_REKOGNITION: `http://${HOST}:${ports.rekognition}`,
      TEMPORAL_ADDRESS: `${HOST}:${ports.temporal}`,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_UI_URL: `http://${HOST}:${ports.temporalUi}`,
      ...resources,
      // The demo's and the tests' images are all in the stack's bucket.
      REINDEX_IMAGE_LOCATIONS: `s3://${resources.REINDEX_BUCKET}/`,
      // moto's one account owns every bucket; infra/local/moto-server.py refuses any other owner, as S3 does.
      REINDEX_BUCKET_OWNER: MOTO_ACCOUNT,
    };
    await withTemporal(variables.TEMPORAL_ADDRESS, (connection) => registerSearchAttributes(connection, 'default'));
    writeStackEnv(variables);
    say(`resources provisioned; variables in ${path.relative(ROOT, STACK_ENV_FILE)}`);
    return variables;
  } finally {
    clients.s3.destroy();
    clients.sqs.destroy();
    clients.dynamodb.destroy();
  }
}

/**
 * The dev server registers search attributes only into a database it creates:
 * one made before an attribute existed lacks it.
 */
async function withTemporal(address: string, work: (connection: Connection) => Promise<void>): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await work(connection);
  } finally {
    await connection.close();
  }
}

async function stop(services: Service[]): Promise<void> {
  for (const service of [...services].reverse()) {
    say(`${service.name} ${(await stopService(service)) ? 'stopped' : 'was not running'}`);
  }
}

/** All or nothing: when a service cannot start, the ones this call started are stopped again. */
async function up(): Promise<void> {
  const ports = stackPorts();
  const started: Service[] = [];
  try {
    await startMissing(stackServices(ports), started);
    await provisionAndDescribe(ports);
  } catch (error) {
    await stop(started);
    throw error;
  }
}

async function down(): Promise<void> {
  await stop(stackServices(stackPorts()));
  rmSync(STACK_ENV_FILE, { force: true });
}

function status(): void {
  for (const service of stackServices(stackPorts())) {
    const pid = runningPid(service);
    say(
      pid === undefined
        ? `${service.name} stopped`
        : `${service.name} running (pid ${pid}): ${service.addresses.join(', ')}`,
    );
  }
}

function runCommand(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [executable, ...args] = command;
  if (!executable) throw new Error('stack run: give a command after --');
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { stdio: 'inherit', env });
    // Ctrl-C reaches the child through the terminal; SIGTERM (a CI timeout) is passed on to it.
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', () => undefined);
    process.on('SIGTERM', forward);
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function run(command: string[]): Promise<number> {
  const ports = stackPorts();
  const services = stackServices(ports);
  const started: Service[] = [];
  try {
    await startMissing(services, started);
    const variables = await provisionAndDescribe(ports);
    return await runCommand(command, { ...process.env, ...variables });
  } finally {
    await stop(started);
    if (started.length === services.length) rmSync(STACK_ENV_FILE, { force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      await up();
      return 0;
    case 'down':
      await down();
      return 0;
    case 'status':
      status();
      return 0;
    case 'run':
      return run(rest[0] === '--' ? rest.slice(1) : rest);
    default:
      console.error('usage: stack up | down | status | run -- <command...>');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`stack: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
