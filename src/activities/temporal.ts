/**
 * Temporal's visibility, as activities see it: which runs migrate into a collection now. A sync
 * migrates the faces added to an old collection only while no other run does, since that run's
 * records may name old faces that have no row yet.
 */
import type { WorkflowService } from '@temporalio/client';
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
