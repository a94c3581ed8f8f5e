import type { Info } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';

/**
 * A real activity context (attempt, heartbeat details, cancellation) for running activities in
 * tests. Activity failures are logged as warnings; tests that expect them keep the output quiet.
 */
export function activityEnvironment(info?: Partial<Info>): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
}
