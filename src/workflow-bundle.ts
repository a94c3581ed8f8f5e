/**
 * Bundles the workflows into one file for the worker. `npm run build` writes the bundles beside the
 * compiled worker (`--prebuilt`), so that a worker starts without webpack. A worker without them (run
 * from src/, or compiled after them) runs this as a process of its own at start: webpack's memory
 * (about 160 MiB) stays with the process that bundled, and a worker that bundled in-process idled
 * at 300 MiB instead of about 175.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';

/** The bundles `npm run build` writes beside the compiled worker, by whether payloads are encrypted. */
export const PREBUILT_BUNDLES = { plain: 'workflows.bundle.js', encrypted: 'workflows-encrypted.bundle.js' } as const;

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

/** Both bundles, beside this module. */
async function writePrebuiltBundles(): Promise<void> {
  await writeWorkflowBundle(path.join(__dirname, PREBUILT_BUNDLES.plain));
  await writeWorkflowBundle(
    path.join(__dirname, PREBUILT_BUNDLES.encrypted),
    require.resolve('./encryption/failure-converter'),
  );
}

if (require.main === module) {
  const [outputPath, failureConverterPath] = process.argv.slice(2);
  if (!outputPath) {
    console.error('usage: workflow-bundle <output file> [failure converter module] | workflow-bundle --prebuilt');
    process.exit(2);
  }
  (outputPath === '--prebuilt' ? writePrebuiltBundles() : writeWorkflowBundle(outputPath, failureConverterPath)).catch(
    (error: unknown) => {
      console.error(`workflow-bundle: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
