/**
 * The local stack's long-running processes: how each starts, how we know it answers, and how it
 * stops. A pid file under .local/ records each process we started, so `down` stops exactly those.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../src/shared';
import { CLI_SEARCH_ATTRIBUTE_TYPES } from '../../src/search-attributes';
import { DUMMY_CREDENTIALS, HOST, LOCAL_DIR, REGION, ROOT, type StackPorts, TOOLS_BIN } from './settings';

export interface Service {
  name: string;
  executable: string;
  args: string[];
  /** A word of the command line that only this service has; guards against a recycled pid. */
  identity: string;
  env?: NodeJS.ProcessEnv;
  ports: { name: string; port: number }[];
  /** Where a person reaches it, for `status`. */
  addresses: string[];
  /** Resolves once the service answers real requests, not merely once its port is open. */
  ready(): Promise<boolean>;
}

async function temporalAnswers(address: string): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: '2s' });
    await connection.workflowService.describeNamespace({ namespace: 'default' });
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close();
  }
}

async function httpAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return response.ok;
  } catch {
    return false;
  }
}

/** A Temporal dev server on its own ports and SQLite file, with the search attributes the workflows set. */
export function temporalDevServer({ port, uiPort, dbFile }: { port: number; uiPort: number; dbFile: string }): Service {
  const address = `${HOST}:${port}`;
  const uiUrl = `http://${HOST}:${uiPort}`;
  const temporalCli = path.join(TOOLS_BIN, 'temporal');
  const searchAttributes = Object.values(SEARCH_ATTRIBUTES).flatMap((key) => [
    '--search-attribute',
    `${key.name}=${CLI_SEARCH_ATTRIBUTE_TYPES[key.type]}`,
  ]);
  return {
    name: 'temporal',
    executable: temporalCli,
    identity: temporalCli,
    args: [
      'server',
      'start-dev',
      '--ip',
      HOST,
      '--port',
      String(port),
      '--ui-ip',
      HOST,
      '--ui-port',
      String(uiPort),
      '--db-filename',
      dbFile,
      '--log-level',
      'warn',
      // The server divides a queue's rate among its partitions; with one, IndexFaces runs at the rate.
      '--dynamic-config-value',
      'matching.numTaskqueueReadPartitions=1',
      '--dynamic-config-value',
      'matching.numTaskqueueWritePartitions=1',
      // Fairness: each target collection's IndexFaces tasks take turns on the one rate-limited queue.
      '--dynamic-config-value',
      'matching.useNewMatcher=true',
      '--dynamic-config-value',
      'matching.enableFairness=true',
      ...searchAttributes,
    ],
    ports: [
      { name: 'gRPC', port },
      { name: 'Web UI', port: uiPort },
    ],
    addresses: [`gRPC ${address}`, `Web UI ${uiUrl}`],
    ready: async () => (await temporalAnswers(address)) && (await httpAnswers(uiUrl)),
  };
}

export function stackServices(ports: StackPorts): Service[] {
  const motoUrl = `http://${HOST}:${ports.moto}`;
  const rekognitionUrl = `http://${HOST}:${ports.rekognition}`;
  const python = path.join(ROOT, '.tools', 'venv', 'bin', 'python3');
  // moto served with connections kept alive, and with the checks of the real services that moto leaves out.
  const motoServer = path.join(ROOT, 'infra', 'local', 'moto-server.py');
  const rekognitionMain = path.join(ROOT, 'infra', 'rekognition-local', 'main.ts');
  return [
    temporalDevServer({ port: ports.temporal, uiPort: ports.temporalUi, dbFile: path.join(LOCAL_DIR, 'temporal.db') }),
    {
      name: 'moto',
      executable: python,
      identity: motoServer,
      args: [motoServer, '-H', HOST, '-p', String(ports.moto)],
      ports: [{ name: 'S3, SQS, DynamoDB', port: ports.moto }],
      addresses: [`S3, SQS, DynamoDB ${motoUrl}`],
      ready: () => httpAnswers(`${motoUrl}/moto-api/`),
    },
    {
      name: 'rekognition',
      // One node process (no tsx launcher in between), so the pid file names the server itself.
      executable: process.execPath,
      identity: rekognitionMain,
      args: ['--require', 'tsx/cjs', rekognitionMain],
      env: {
        REKOGNITION_LOCAL_HOST: HOST,
        REKOGNITION_LOCAL_PORT: String(ports.rekognition),
        REKOGNITION_LOCAL_STATE_DIR: path.join(LOCAL_DIR, 'rekognition'),
        // What IndexFaces answers for a face indexed again: reuse (as AWS does) or fresh.
        REKOGNITION_LOCAL_FACE_IDS: process.env.STACK_REKOGNITION_FACE_IDS || 'reuse',
        AWS_REGION: REGION,
        AWS_ENDPOINT_URL_S3: motoUrl,
        AWS_ACCESS_KEY_ID: DUMMY_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: DUMMY_CREDENTIALS.secretAccessKey,
      },
      ports: [{ name: 'Rekognition', port: ports.rekognition }],
      addresses: [`Rekognition ${rekognitionUrl}`],
      ready: () => httpAnswers(`${rekognitionUrl}/_admin/health`),
    },
  ];
}

const pidFile = (service: Service) => path.join(LOCAL_DIR, `${service.name}.pid`);
const logFile = (service: Service) => path.join(LOCAL_DIR, `${service.name}.log`);

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of the process we started for this service, if that very process still runs. */
export function runningPid(service: Service): number | undefined {
  if (!existsSync(pidFile(service))) return undefined;
  const pid = Number(readFileSync(pidFile(service), 'utf8').trim());
  if (!Number.isInteger(pid) || !isAlive(pid)) return undefined;
  try {
    const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return commandLine.includes(service.identity) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startService(service: Service, timeoutMs = 60_000): Promise<number> {
  if (!existsSync(service.executable)) {
    throw new Error(`${service.name}: ${service.executable} is missing; run \`npm run setup\``);
  }
  for (const { name, port } of service.ports) {
    if (await portTaken(port)) {
      throw new Error(`${service.name}: port ${port} (${name}) on ${HOST} is already taken by another process`);
    }
  }
  mkdirSync(LOCAL_DIR, { recursive: true });
  const log = openSync(logFile(service), 'a');
  const child = spawn(service.executable, service.args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, ...service.env },
  });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${service.name}: could not start ${service.executable}`);
  child.unref();
  writeFileSync(pidFile(service), `${pid}\n`);
  const deadline = Date.now() + timeoutMs;
  while (!(await service.ready())) {
    if (!isAlive(pid)) {
      rmSync(pidFile(service), { force: true });
      throw new Error(`${service.name} exited while starting; see ${path.relative(ROOT, logFile(service))}`);
    }
    if (Date.now() > deadline) {
      await stopService(service);
      throw new Error(
        `${service.name} did not answer within ${timeoutMs / 1000} s; see ${path.relative(ROOT, logFile(service))}`,
      );
    }
    await sleep(200);
  }
  return pid;
}

/** Stops the process group we started for this service; returns false when none was running. */
export async function stopService(service: Service, graceMs = 10_000): Promise<boolean> {
  const pid = runningPid(service);
  rmSync(pidFile(service), { force: true });
  if (pid === undefined) return false;
  // Started detached, so the service leads its own process group: signal the whole group.
  process.kill(-pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) process.kill(-pid, 'SIGKILL');
  return true;
}
