/**
 * `npm run worker` as a deployment runs it (src/worker.ts, bundling its workflows at start), in a
 * process of its own with the environment a test gives it. Its output is kept, stdout and stderr
 * apart, for the test to read.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

/** `npm run worker`'s Node flags: its heap cap. */
const WORKER_NODE_FLAGS = ['--max-old-space-size=128'];

export interface RealWorker {
  pid: number;
  stdout(): string;
  stderr(): string;
  /** SIGINT, as an operator stops it: tasks in flight finish first. */
  stop(): Promise<void>;
}

/**
 * Starts the worker and resolves once it says it polls; rejects if it ends first or takes over 90 s.
 * `nodeArgs` go to Node before the worker's own, e.g. `--cpu-prof`.
 */
export async function startRealWorker(env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<RealWorker> {
  const child: ChildProcess = spawn(
    process.execPath,
    [...WORKER_NODE_FLAGS, ...nodeArgs, '--require', 'tsx/cjs', 'src/worker.ts'],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the worker did not poll within 90 s:\n${stdout}\n${stderr}`));
    }, 90_000);
    child.stdout?.on('data', () => {
      if (!stdout.includes('worker: polling')) return;
      clearTimeout(deadline);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`the worker ended with ${code} before it polled:\n${stdout}\n${stderr}`));
    });
  });
  return {
    pid: child.pid ?? 0,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      await exited;
    },
  };
}
