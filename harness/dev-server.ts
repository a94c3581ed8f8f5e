/**
 * A Temporal dev server of one test file's own, started as the stack starts its own, on free ports
 * and a SQLite file in a temporary directory, so a test may stop and restart it without touching
 * the stack's server that other suites use.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { temporalDevServer } from '../infra/local/services';
import { freePort } from './ports';

export interface RunningDevServer {
  address: string;
  /** The server's SQLite file, kept across restarts. */
  dbFile: string;
  /** SIGTERM, as an operator stops it, and waits for the process to end. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and the same SQLite file. */
  start(): Promise<void>;
  /** Stops it and deletes its files. */
  release(): Promise<void>;
}

function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startDevServer(): Promise<RunningDevServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'temporal-dev-'));
  const port = await freePort();
  const dbFile = path.join(dir, 'temporal.db');
  const service = temporalDevServer({ port, uiPort: await freePort(), dbFile });
  let child: ChildProcess | undefined;

  const server: RunningDevServer = {
    address: `127.0.0.1:${port}`,
    dbFile,
    async start() {
      const log = openSync(path.join(dir, 'server.log'), 'a');
      const started = spawn(service.executable, service.args, { stdio: ['ignore', log, log] });
      closeSync(log);
      child = started;
      const deadline = Date.now() + 60_000;
      while (!(await service.ready())) {
        if (started.exitCode !== null)
          throw new Error(`the dev server exited with code ${started.exitCode}; see ${dir}/server.log`);
        if (Date.now() > deadline) {
          started.kill('SIGKILL');
          throw new Error(`the dev server did not answer within 60 s; see ${dir}/server.log`);
        }
        await sleep(200);
      }
    },
    async stop() {
      if (!child) return;
      const stopping = ended(child);
      child.kill('SIGTERM');
      await stopping;
      child = undefined;
    },
    async release() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return server;
}
