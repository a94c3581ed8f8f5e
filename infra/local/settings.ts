/**
 * Where the local stack lives and listens. Every port can be moved with an environment variable;
 * everything binds to 127.0.0.1. `.local/stack.env` is what a running stack tells its clients.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'dotenv';

export const ROOT = path.resolve(__dirname, '../..');
export const TOOLS_BIN = path.join(ROOT, '.tools', 'bin');
/** State, logs, pid files and stack.env; STACK_DIR moves them, e.g. for a second, isolated stack. */
export const LOCAL_DIR = path.resolve(ROOT, process.env.STACK_DIR ?? '.local');
export const STACK_ENV_FILE = path.join(LOCAL_DIR, 'stack.env');
export const HOST = '127.0.0.1';

export interface StackPorts {
  temporal: number;
  temporalUi: number;
  moto: number;
  rekognition: number;
}

function portFrom(env: NodeJS.ProcessEnv, variable: string, fallback: number): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${variable} must be a port number from 1 to 65535, got '${raw}'`);
  }
  return port;
}

export function stackPorts(env: NodeJS.ProcessEnv = process.env): StackPorts {
  return {
    temporal: portFrom(env, 'STACK_TEMPORAL_PORT', 7233),
    temporalUi: portFrom(env, 'STACK_TEMPORAL_UI_PORT', 8233),
    moto: portFrom(env, 'STACK_MOTO_PORT', 4566),
    rekognition: portFrom(env, 'STACK_REKOGNITION_PORT', 4567),
  };
}

/** Names of the provisioned resources; the same variables configure worker and CLI. */
export const RESOURCE_NAMES = {
  bucket: 'rekognition-reindex-local',
  resultsQueue: 'reindex-results',
  resultsDlq: 'reindex-results-dlq',
  reviewDlq: 'reindex-review-dlq',
  intakeQueue: 'reindex-intake',
  resultsTable: 'reindex-results',
} as const;

export const REGION = 'us-east-1';
/** The local stack accepts any credentials; these are the conventional dummies. */
export const DUMMY_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
/** The account moto puts every resource in for these credentials. */
export const MOTO_ACCOUNT = '123456789012';

export function writeStackEnv(variables: Record<string, string>): void {
  const lines = Object.entries(variables).map(([name, value]) => {
    if (/['\n]/.test(value))
      throw new Error(`${name} holds a quote or newline, which stack.env cannot carry: ${value}`);
    return `export ${name}='${value}'`;
  });
  writeFileSync(
    STACK_ENV_FILE,
    `# Written by \`npm run stack:up\`: the local stack's endpoints and resources. Load with: source ${path.relative(ROOT, STACK_ENV_FILE)}\n${lines.join('\n')}\n`,
  );
}

/** The variables of a running stack, or undefined when `stack:up` has not written them. */
export function readStackEnv(): Record<string, string> | undefined {
  if (!existsSync(STACK_ENV_FILE)) return undefined;
  return parse(readFileSync(STACK_ENV_FILE));
}
