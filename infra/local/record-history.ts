/**
 * Records the history of a finished run (and of one of its batches) from the local stack into
 * test/workflows/histories/, where the replay test checks that today's workflow code still makes
 * the same decisions. Record again only when a change to the workflows is meant to break
 * compatibility, and say so in the commit.
 *
 *   npx tsx infra/local/record-history.ts <workflow-id> <name>
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { ROOT } from './settings';

async function main(): Promise<void> {
  const [workflowId, name] = process.argv.slice(2);
  if (!workflowId || !name) throw new Error('usage: record-history.ts <workflow-id> <name>');
  const { connectionOptions, namespace } = loadClientConnectConfig();
  const connection = await Connection.connect(connectionOptions);
  try {
    const client = new Client({ connection, namespace });
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    const file = path.join(ROOT, 'test', 'workflows', 'histories', `${name}.json`);
    writeFileSync(file, `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 1)}\n`);
    console.log(`recorded ${history.events?.length ?? 0} events of ${workflowId} in ${path.relative(ROOT, file)}`);
  } finally {
    await connection.close();
  }
}

main().catch((error: unknown) => {
  console.error(`record-history: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
