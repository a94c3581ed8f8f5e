/**
 * The bench's local stack (infra/local/bench.sh starts one of its own, in .local/bench, on ports of
 * its own): its processes, rekognition-local's settings and counters, and a Temporal client.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { LOCAL_DIR } from '../../infra/local/settings';
import { useLocalStack } from '../../harness/local-stack';

export const STACK_PROCESSES = ['temporal', 'moto', 'rekognition'] as const;

export function stackPids(): Record<(typeof STACK_PROCESSES)[number], number> {
  const pid = (name: string) => Number(readFileSync(path.join(LOCAL_DIR, `${name}.pid`), 'utf8').trim());
  return { temporal: pid('temporal'), moto: pid('moto'), rekognition: pid('rekognition') };
}

export async function temporalClient(): Promise<Client> {
  const stack = useLocalStack();
  return new Client({ connection: await Connection.connect({ address: stack.TEMPORAL_ADDRESS }) });
}

export async function rekognitionAdmin<T>(
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  call: string,
  body?: unknown,
): Promise<T> {
  const endpoint = useLocalStack().AWS_ENDPOINT_URL_REKOGNITION;
  const response = await fetch(`${endpoint}/_admin/${call}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`rekognition-local ${method} ${call}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** IndexFaces latency the service draws from: log-normal with this median and 99th percentile. */
export interface Latency {
  medianMs: number;
  p99Ms: number;
}

/** The service's traffic settings for one measurement: a quota and a latency for IndexFaces, or none. */
export interface Traffic {
  quota: number | undefined;
  latency: Latency | undefined;
}

export async function setTraffic({ quota, latency }: Traffic): Promise<void> {
  await rekognitionAdmin('PUT', 'settings', {
    quotas: quota === undefined ? {} : { IndexFaces: { tps: quota, error: 'ProvisionedThroughputExceededException' } },
    latency: latency === undefined ? {} : { IndexFaces: latency },
    throttleRate: 0,
    faultRate: 0,
  });
}

interface OperationCounters {
  calls: number;
  succeeded: number;
  throttled: number;
  errors: number;
}

export interface Sample {
  atMs: number;
  calls: number;
  succeeded: number;
  throttled: number;
}

/**
 * IndexFaces as the service counted it from now, sampled every `everyMs` until stopped. The counters
 * start from zero, so runs measured one after the other do not count each other's calls.
 */
export async function sampleIndexFaces(
  everyMs = 500,
): Promise<{ latest(): Sample | undefined; stop(): Promise<Sample[]> }> {
  await rekognitionAdmin('DELETE', 'counters');
  const samples: Sample[] = [];
  let running = true;
  const sample = async () => {
    const counters = await rekognitionAdmin<Record<string, OperationCounters>>('GET', 'counters');
    const indexFaces = counters.IndexFaces ?? { calls: 0, succeeded: 0, throttled: 0, errors: 0 };
    samples.push({
      atMs: Date.now(),
      calls: indexFaces.calls,
      succeeded: indexFaces.succeeded,
      throttled: indexFaces.throttled,
    });
  };
  const loop = (async () => {
    while (running) {
      await sample();
      await sleep(everyMs);
    }
    // The calls of the last half second count too.
    await sample();
  })();
  return {
    latest: () => samples.at(-1),
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}
