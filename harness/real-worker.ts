/**
 * `npm run worker` as a deployment runs it (bin/worker.js: the compiled worker with the workflows
 * `npm run build` bundled, which jest's global setup runs), in a process of its own with the
 * environment a test gives it. Its output is kept, stdout and stderr apart, for the test to read.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { EXIT_RUN_DROPPED } from '../src/telemetry';

const ROOT = path.resolve(__dirname, '..');

/** `npm run worker`'s Node flags: its heap cap. */
const WORKER_NODE_FLAGS = ['--max-old-space-size=128'];

export interface RealWorker {
  /** The process running now: a new one after each restart. */
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Times the worker exited with EXIT_RUN_DROPPED and was started again, as a supervisor would. */
  restarts(): number;
  /** SIGINT, as an operator stops it: tasks in flight finish first. */
  stop(): Promise<void>;
}

/**
 * Starts the worker and resolves once it says it polls; rejects if it ends first or takes over 90 s.
 * A worker that leaves because the SDK dropped a run's task is started again, as the supervisor of
 * a deployment would. `nodeArgs` go to Node before the worker's own, e.g. `--cpu-prof`.
 */
export async function startRealWorker(env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<RealWorker> {
  let stdout = '';
  let stderr = '';
  let restarts = 0;
  let stopping = false;
  const spawnWorker = (): ChildProcess => {
    const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, ...nodeArgs, 'bin/worker.js'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => {
      if (code !== EXIT_RUN_DROPPED || stopping) return;
      restarts += 1;
      current = spawnWorker();
    });
    return child;
  };
  let current = spawnWorker();
  const first = current;
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => {
      first.kill('SIGKILL');
      reject(new Error(`the worker did not poll within 90 s:\n${stdout}\n${stderr}`));
    }, 90_000);
    first.stdout?.on('data', () => {
      if (!stdout.includes('worker: polling')) return;
      clearTimeout(deadline);
      resolve();
    });
    first.once('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`the worker ended with ${code} before it polled:\n${stdout}\n${stderr}`));
    });
  });
  return {
    get pid() {
      return current.pid ?? 0;
    },
    stdout: () => stdout,
    stderr: () => stderr,
    restarts: () => restarts,
    async stop() {
      stopping = true;
      if (current.exitCode !== null || current.signalCode !== null) return;
      const exited = once(current, 'exit');
      current.kill('SIGINT');
      await exited;
    },
  };
}
