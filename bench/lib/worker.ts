/**
 * The worker as users run it (`npm run worker`: src/worker.ts, bundling its workflows at start),
 * in a process of its own so its CPU time and peak memory are its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../infra/local/settings';

export interface BenchWorker {
  pid: number;
  /** SIGTERM, then waits for the process to end. */
  stop(): Promise<void>;
}

export async function startWorker(env: NodeJS.ProcessEnv, logFile: string, nodeArgs: string[] = []): Promise<BenchWorker> {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--require', 'tsx/cjs', path.join(ROOT, 'src', 'worker.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`the worker was not polling within 120 s; see ${logFile}`)), 120_000);
    const onOutput = (chunk: Buffer) => {
      log.write(chunk);
      if (chunk.toString().includes('worker: polling')) {
        clearTimeout(deadline);
        resolve();
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`the worker exited (${code}) before it polled; see ${logFile}`));
    });
  });
  return {
    pid: child.pid ?? 0,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      log.end();
    },
  };
}
