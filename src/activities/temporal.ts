/**
 * Temporal's visibility, as activities see it: which runs migrate into a collection now, and
 * whether a run is in flight. A sync migrates the faces added to an old collection only while no
 * other run does, since that run's records may name old faces that have no row yet. A drain trusts
 * the rows of a run in flight as it trusts its own.
 */
import { status } from '@grpc/grpc-js';
import { log } from '@temporalio/activity';
import { isGrpcServiceError, type WorkflowService } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../shared';

export interface TemporalVisibility {
  workflowService: WorkflowService;
  namespace: string;
}

export function createTemporalActivities({ workflowService, namespace }: TemporalVisibility) {
  return {
    /** Workflow ids of the runs into the collection that are running, other than `except`. */
    runsIntoTarget: async (targetCollectionId: string, except: string[] = []): Promise<string[]> => {
      // Collection names are letters, digits, '.', '_' and '-' only: nothing to escape.
      const query = `WorkflowType = 'reindexCollection' AND ${SEARCH_ATTRIBUTES.collection.name} = '${targetCollectionId}' AND ExecutionStatus = 'Running'`;
      const running: string[] = [];
      let nextPageToken: Uint8Array | undefined;
      do {
        const page = await workflowService.listWorkflowExecutions({ namespace, query, nextPageToken });
        for (const execution of page.executions ?? []) {
          const workflowId = execution.execution?.workflowId;
          if (workflowId && !except.includes(workflowId)) running.push(workflowId);
        }
        nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
      } while (nextPageToken);
      return running;
    },
  };
}

/**
 * Whether a workflow runs now, by its id: its latest execution is running. False when there is none;
 * false too when Temporal cannot answer, since callers fall back on a check of their own then.
 */
export function createRunsInFlight({ workflowService, namespace }: TemporalVisibility) {
  let warned = false;
  return async (workflowId: string): Promise<boolean> => {
    try {
      const { workflowExecutionInfo } = await workflowService.describeWorkflowExecution({
        namespace,
        execution: { workflowId },
      });
      return (
        workflowExecutionInfo?.status ===
        temporal.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
      );
    } catch (error) {
      if (!(isGrpcServiceError(error) && error.code === status.NOT_FOUND) && !warned) {
        warned = true;
        log.warn('Temporal did not say whether a run is in flight; rows of other runs are checked in the ledger', {
          error: error instanceof Error ? error.message : String(error),
        });
      }
      return false;
    }
  };
}
