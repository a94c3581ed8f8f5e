/**
 * Runs a second, isolated local stack (its own directory and ports) through the same commands a
 * person uses, and checks what they promise: `up` twice is harmless, `status` tells the truth,
 * a taken port is reported, and `down` leaves none of its processes running.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'dotenv';
import { freePort } from '../../harness/ports';
import { isAlive } from '../../infra/local/services';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const TEMPORAL_CLI = path.join(ROOT, '.tools', 'bin', 'temporal');

let stackDir: string;
let env: NodeJS.ProcessEnv;

async function stack(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(TSX, ['infra/local/stack.ts', command], { cwd: ROOT, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function pidsOf(): number[] {
  return ['temporal', 'moto', 'rekognition'].map((name) =>
    Number(readFileSync(path.join(stackDir, `${name}.pid`), 'utf8')),
  );
}

beforeAll(async () => {
  stackDir = mkdtempSync(path.join(tmpdir(), 'reindex-stack-'));
  env = {
    ...process.env,
    STACK_DIR: stackDir,
    STACK_TEMPORAL_PORT: String(await freePort()),
    STACK_TEMPORAL_UI_PORT: String(await freePort()),
    STACK_MOTO_PORT: String(await freePort()),
    STACK_REKOGNITION_PORT: String(await freePort()),
  };
});

afterAll(async () => {
  await stack('down');
  rmSync(stackDir, { recursive: true, force: true });
});

test('up starts both services on the chosen ports, twice without harm; down stops exactly them', async () => {
  const first = await stack('up');
  expect(first).toEqual({ code: 0, stdout: expect.any(String) as unknown, stderr: expect.any(String) as unknown });
  const pids = pidsOf();
  expect(pids.every(isAlive)).toBe(true);

  const written = parse(readFileSync(path.join(stackDir, 'stack.env')));
  expect(written.TEMPORAL_ADDRESS).toBe(`127.0.0.1:${env.STACK_TEMPORAL_PORT}`);
  expect(written.AWS_ENDPOINT_URL).toBe(`http://127.0.0.1:${env.STACK_MOTO_PORT}`);
  expect(written.REINDEX_RESULTS_QUEUE_URL).toContain(`127.0.0.1:${env.STACK_MOTO_PORT}`);
  expect(written.AWS_ENDPOINT_URL_REKOGNITION).toBe(`http://127.0.0.1:${env.STACK_REKOGNITION_PORT}`);
  const ui = await fetch(`http://127.0.0.1:${env.STACK_TEMPORAL_UI_PORT}/`);
  expect(ui.status).toBe(200);
  expect(await ui.text()).toContain('<html');
  const listed = await promisify(execFile)(TEMPORAL_CLI, [
    'workflow',
    'list',
    '--address',
    written.TEMPORAL_ADDRESS ?? '',
  ]);
  expect(listed.stderr).toBe('');

  const second = await stack('up');
  expect(second).toEqual({ code: 0, stdout: expect.any(String) as unknown, stderr: expect.any(String) as unknown });
  expect(second.stdout).toContain(`temporal already running (pid ${pids[0]})`);
  expect(second.stdout).toContain(`moto already running (pid ${pids[1]})`);
  expect(second.stdout).toContain(`rekognition already running (pid ${pids[2]})`);
  expect(pidsOf()).toEqual(pids);

  const status = await stack('status');
  expect(status.stdout).toContain(`temporal running (pid ${pids[0]}): gRPC 127.0.0.1:${env.STACK_TEMPORAL_PORT}`);

  const down = await stack('down');
  expect(down).toEqual({ code: 0, stdout: expect.any(String) as unknown, stderr: expect.any(String) as unknown });
  expect(pids.some(isAlive)).toBe(false);
  expect(existsSync(path.join(stackDir, 'stack.env'))).toBe(false);
  expect((await stack('status')).stdout).toContain('temporal stopped');
});

test('up refuses a port another process holds, with one line naming it, and stops what it started', async () => {
  const squatter: Server = createServer();
  const port = Number(env.STACK_MOTO_PORT);
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  try {
    const result = await stack('up');

    expect(result.code).toBe(1);
    expect(
      result.stderr
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('stack:')),
    ).toEqual([`stack: moto: port ${port} (S3, SQS, DynamoDB) on 127.0.0.1 is already taken by another process`]);
    const temporalPid = Number(/temporal started in [\d.]+ s \(pid (\d+)\)/.exec(result.stdout)?.[1]);
    expect(temporalPid).toBeGreaterThan(0);
    expect(isAlive(temporalPid)).toBe(false);
    expect(result.stdout).toContain('temporal stopped');
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
});
