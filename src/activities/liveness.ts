/**
 * Heartbeats that say only "this worker is alive", for activities whose retries are cheap but
 * whose length depends on the services they call: a dead worker is noticed within the heartbeat
 * timeout, and a slow service never makes a live attempt time out. A quick call sends none.
 */
import { heartbeat } from '@temporalio/activity';

/** Well inside the 30 s heartbeat timeouts of the activities that use it. */
export const ALIVE_EVERY_MS = 10_000;

/** `details`, when given, go with every heartbeat, so a retry still finds them after a long attempt. */
export async function whileAlive<T>(work: () => Promise<T>, details?: unknown): Promise<T> {
  const alive = setInterval(() => heartbeat(details), ALIVE_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(alive);
  }
}
