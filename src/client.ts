/**
 * The `reindex` command line. Every command reads the one typed configuration; a bad setting or a
 * bad argument is one line on stderr and exit code 2.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { Command, CommanderError } from 'commander';
import { createAwsClients, destroyAwsClients } from './activities/aws-clients';
import { checkDeployment } from './cli/check';
import { ConfigError, loadConfig } from './domain/config';

const USAGE_ERROR = 2;

const program = new Command('reindex')
  .description('Migrate an Amazon Rekognition face collection to the newest face model, durably, on Temporal.')
  .configureOutput({ outputError: (message, write) => write(`reindex: ${message.trim().replaceAll('\n', ' ')}\n`) })
  .exitOverride();

program
  .command('check')
  .description('check that Temporal, Rekognition and every configured bucket, queue and table answer')
  .option('--json', 'print the results as JSON')
  .action(async (options: { json?: boolean }) => {
    const config = loadConfig();
    const aws = createAwsClients(config);
    try {
      const results = await checkDeployment(config, aws, loadClientConnectConfig());
      if (options.json) {
        console.log(JSON.stringify(results, null, 2));
      } else {
        for (const { resource, ok, detail } of results) console.log(`${ok ? 'ok  ' : 'FAIL'} ${resource}: ${detail}`);
      }
      process.exitCode = results.every((result) => result.ok) ? 0 : 1;
    } finally {
      destroyAwsClients(aws);
    }
  });

program.parseAsync().catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // Help and version end with code 0; every usage error ends with 2.
    process.exitCode = error.exitCode === 0 ? 0 : USAGE_ERROR;
  } else if (error instanceof ConfigError) {
    console.error(`reindex: ${error.message}`);
    process.exitCode = USAGE_ERROR;
  } else {
    console.error(`reindex: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
});
