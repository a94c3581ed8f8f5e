import { execFile } from 'node:child_process';
import path from 'node:path';

const REINDEX = path.resolve(__dirname, '../bin/reindex.js');

export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** The last line of a command's output: with --json, its one object. */
export const lastLine = (text: string): string => text.trim().split('\n').pop() ?? '';

/**
 * Runs `reindex <args>` as a user would, in its own process. `onStdout` sees its output as it comes,
 * for a test that acts on what a long-running command (`status --follow`) has shown so far.
 */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  onStdout?: (chunk: string) => void,
): Promise<CliOutcome> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [REINDEX, ...args], { env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
    if (onStdout) child.stdout?.on('data', (chunk: Buffer | string) => onStdout(chunk.toString()));
  });
}
