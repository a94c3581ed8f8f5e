/**
 * The `reindex` command line. Every command reads the one typed configuration; a bad setting or a
 * bad argument is one line on stderr and exit code 2. Each command lives in its module under cli/.
 */
import { Command, CommanderError } from 'commander';
import { registerCheckCommand } from './cli/check';
import { registerCodecServerCommand } from './cli/codec-server';
import { UsageError } from './cli/common';
import { registerCutoverCheckCommand } from './cli/cutover-check';
import { registerDlqCommands } from './cli/dlq';
import { registerExportCommand } from './cli/export';
import { registerForgetCommand } from './cli/forget';
import { registerPlanCommand } from './cli/plan';
import { registerPrepareCommand } from './cli/prepare';
import { registerPreviewCommand } from './cli/preview';
import { registerPurgeCommand } from './cli/purge';
import { registerReconcileCommand } from './cli/reconcile';
import { registerReportCommand } from './cli/report';
import { registerSyncCommand } from './cli/sync';
import { registerRateCommand } from './cli/rate';
import { registerRunCommands } from './cli/runs';
import { registerValidateCommand } from './cli/validate';
import { registerVerifyCommand } from './cli/verify';
import { registerWatchCommand } from './cli/watch';
import { ConfigError } from './domain/config';

const USAGE_ERROR = 2;

const program = new Command('reindex')
  .description('Migrate an Amazon Rekognition face collection to the newest face model, durably, on Temporal.')
  .configureOutput({ outputError: (message, write) => write(`reindex: ${message.trim().replaceAll('\n', ' ')}\n`) })
  .exitOverride();

// In the order of a migration, which is the order `reindex --help` lists them.
registerCheckCommand(program);
registerCodecServerCommand(program);
registerPlanCommand(program);
registerPrepareCommand(program);
registerValidateCommand(program);
registerPreviewCommand(program);
registerRunCommands(program);
registerRateCommand(program);
registerExportCommand(program);
registerDlqCommands(program);
registerReconcileCommand(program);
registerReportCommand(program);
registerWatchCommand(program);
registerVerifyCommand(program);
registerSyncCommand(program);
registerCutoverCheckCommand(program);
registerForgetCommand(program);
registerPurgeCommand(program);

program.parseAsync().catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // Help and version end with code 0; every usage error ends with 2.
    process.exitCode = error.exitCode === 0 ? 0 : USAGE_ERROR;
  } else if (error instanceof ConfigError || error instanceof UsageError) {
    console.error(`reindex: ${error.message}`);
    process.exitCode = USAGE_ERROR;
  } else {
    console.error(`reindex: ${(error instanceof Error ? error.message : String(error)).replaceAll('\n', ' ')}`);
    process.exitCode = 1;
  }
});
