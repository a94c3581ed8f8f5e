/**
 * A run's histories as anyone with access to the Temporal server reads them (its database, its UI, a
 * `temporal workflow show` without a codec): the parent's and every batch child's, read by a client
 * without the key, and the places in them where a secret could sit in clear text.
 */
import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;

/** The histories of the run's parent and of each child it started, by workflow id. */
export async function runHistories(client: Client, workflowId: string): Promise<Map<string, History>> {
  const parent = await client.workflow.getHandle(workflowId).fetchHistory();
  const children = (parent.events ?? []).flatMap(
    (event) => event.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId ?? [],
  );
  const histories = new Map([[workflowId, parent]]);
  for (const child of children) histories.set(child, await client.workflow.getHandle(child).fetchHistory());
  return histories;
}

export interface FoundPayload {
  /** Where in the history, as a property path: `events.3.activityTaskScheduledEventAttributes.input.payloads.0`. */
  path: string;
  payload: Payload;
}

const isPayload = (value: object): value is Payload => {
  const metadata = (value as Payload).metadata;
  return (
    typeof metadata === 'object' &&
    metadata !== null &&
    Object.keys(metadata).length > 0 &&
    Object.values(metadata).every((entry) => entry instanceof Uint8Array)
  );
};

/** Every payload in a history: inputs, results, failures' encoded attributes, memo, summaries, search attributes. */
export function payloadsIn(value: unknown, path = ''): FoundPayload[] {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return [];
  if (isPayload(value)) return [{ path, payload: value }];
  return Object.entries(value).flatMap(([key, child]) => payloadsIn(child, path ? `${path}.${key}` : key));
}

export const utf8 = (bytes: Uint8Array | null | undefined): string => Buffer.from(bytes ?? []).toString('utf8');

/**
 * Each history as text a reader could search: its events as JSON (failure messages and stack
 * traces are plain strings there), its raw protobuf bytes, and each payload's bytes, as UTF-8.
 */
export function readableTexts(histories: Map<string, History>): string[] {
  return [...histories.values()].flatMap((history) => [
    JSON.stringify(history.events),
    utf8(temporal.api.history.v1.History.encode(history).finish()),
    ...payloadsIn(history).map(
      ({ payload }) =>
        `${Object.values(payload.metadata ?? {})
          .map(utf8)
          .join(' ')} ${utf8(payload.data)}`,
    ),
  ]);
}

/** The values of `secrets` that some text shows in clear. */
export function leakedIn(texts: string[], secrets: string[]): string[] {
  return [...new Set(secrets)].filter((secret) => texts.some((text) => text.includes(secret)));
}
