/**
 * A worker in a process of its own, for tests that kill it: SIGKILL at any moment, then start it
 * again, as a crashed host's supervisor would. Its output goes to a log file the test can read.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';

const MAIN = path.join(__dirname, 'worker-process-main.ts');

export interface WorkerProcess {
  /** Starts the worker and resolves once it polls. */
  start(): Promise<void>;
  /** SIGKILL: no shutdown, tasks in flight are lost with the process. */
  kill(): Promise<void>;
  /** SIGTERM, waiting for tasks in flight, as an orderly stop. */
  stop(): Promise<void>;
  /** Everything every start of it wrote. */
  log(): string;
  readonly starts: number;
}

function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export function workerProcess(env: NodeJS.ProcessEnv, logFile: string): WorkerProcess {
  let child: ChildProcess | undefined;
  let starts = 0;
  const end = async (signal: NodeJS.Signals) => {
    if (!child) return;
    const ending = ended(child);
    child.kill(signal);
    await ending;
    child = undefined;
  };
  return {
    get starts() {
      return starts;
    },
    async start() {
      starts += 1;
      appendFileSync(logFile, `--- start ${starts}\n`);
      const started = spawn(process.execPath, ['--require', 'tsx/cjs', MAIN], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = started;
      await new Promise<void>((resolve, reject) => {
        const deadline = setTimeout(() => {
          started.kill('SIGKILL');
          reject(new Error(`the worker was not ready within 60 s; see ${logFile}`));
        }, 60_000);
        const onOutput = (chunk: Buffer) => {
          appendFileSync(logFile, chunk);
          if (chunk.toString().includes('worker: ready')) {
            clearTimeout(deadline);
            resolve();
          }
        };
        started.stdout?.on('data', onOutput);
        started.stderr?.on('data', onOutput);
        started.once('exit', (code, signal) => {
          clearTimeout(deadline);
          reject(new Error(`the worker exited (${code ?? signal}) before it was ready; see ${logFile}`));
        });
      });
    },
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    log: () => readFileSync(logFile, 'utf8'),
  };
}
