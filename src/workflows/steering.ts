/**
 * Pause, resume and cancel as the parent workflows take them: a run over its batches, a plan over
 * its collections' runs. A signal changes the parent's own state first, then goes on to each
 * child running; a cancel request marks the parent as stopping, and it ends its children in its
 * own way. A child that ended meanwhile cannot be told, and needs not be.
 */
import {
  CancellationScope,
  type ExternalWorkflowHandle,
  setHandler,
  type SignalDefinition,
} from '@temporalio/workflow';
import { pauseSignal, resumeSignal } from '../shared';

/** A child workflow as its parent signals it: a child's handle, or an external one. */
export type Signalled = Pick<ExternalWorkflowHandle, 'signal'>;

/** Sends `signal` to every child; one that has ended is past telling. */
export async function tellEach<Args extends unknown[]>(
  children: Iterable<Signalled>,
  signal: SignalDefinition<Args>,
  ...args: Args
): Promise<void> {
  await Promise.all([...children].map((child) => child.signal(signal, ...args).catch(() => undefined)));
}

export interface Steering {
  /** The children running now, to pass pause and resume on to. */
  running: () => Iterable<Signalled>;
  onPause: () => void;
  onResume: () => void;
  onCancelRequested: () => void;
}

export function steerChildren({ running, onPause, onResume, onCancelRequested }: Steering): void {
  setHandler(pauseSignal, async () => {
    onPause();
    await tellEach(running(), pauseSignal);
  });
  setHandler(resumeSignal, async () => {
    onResume();
    await tellEach(running(), resumeSignal);
  });
  void CancellationScope.current().cancelRequested.catch(onCancelRequested);
}
