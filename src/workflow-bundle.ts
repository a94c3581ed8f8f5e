/**
 * Bundles the workflows into one file for the worker. The worker runs this as a process of its own
 * at start: webpack's memory (about 160 MiB) stays with the process that bundled, and a worker
 * that bundled in-process idled at 300 MiB instead of about 175.
 */
import { writeFile } from 'node:fs/promises';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';

/** `failureConverterPath`: the encrypting data converter's, which workflow code must run with. */
export async function writeWorkflowBundle(outputPath: string, failureConverterPath?: string): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    failureConverterPath,
    // webpack's report of every module is noise in the worker's log; its warnings are not.
    logger: new DefaultLogger('WARN'),
  });
  await writeFile(outputPath, code);
}

if (require.main === module) {
  const [outputPath, failureConverterPath] = process.argv.slice(2);
  if (!outputPath) {
    console.error('usage: workflow-bundle <output file> [failure converter module]');
    process.exit(2);
  }
  writeWorkflowBundle(outputPath, failureConverterPath).catch((error: unknown) => {
    console.error(`workflow-bundle: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
