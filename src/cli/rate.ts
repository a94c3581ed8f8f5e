/**
 * `reindex rate [--tps <n> | --reset]`: the IndexFaces rate in force on the deployment's task
 * queue, and the override the Temporal server holds for every worker and every run until reset.
 */
import type { Command } from 'commander';
import { describeRate, rateInForce, resetRate, setRate } from '../index-faces-rate';
import { numberIn, UsageError, withClients } from './common';

interface RateFlags {
  tps?: number;
  reset?: boolean;
  json?: boolean;
}

export function registerRateCommand(program: Command): void {
  program
    .command('rate')
    .description(
      'show the IndexFaces rate in force; with --tps hold every worker to a rate, with --reset return to the rate the workers ask for',
    )
    .option(
      '--tps <n>',
      'IndexFaces calls a second across every worker and run, until reset',
      numberIn('--tps', 0.01, 10_000, false),
    )
    .option(
      '--reset',
      "remove the rate held on the server: the workers' own (REINDEX_TPS, or half the account's quota) applies",
    )
    .option('--json', 'print one JSON object')
    .action(async (flags: RateFlags) => {
      if (flags.tps !== undefined && flags.reset) throw new UsageError('--tps and --reset cannot go together');
      await withClients(async ({ config, client }) => {
        const service = client.workflowService;
        const queue = {
          namespace: client.options.namespace,
          identity: client.options.identity,
          taskQueue: config.taskQueue,
        };
        if (flags.tps !== undefined) await setRate(service, queue, flags.tps, `reindex rate --tps ${flags.tps}`);
        if (flags.reset) await resetRate(service, queue);
        const rate = await rateInForce(service, queue.namespace, config.taskQueue);
        if (flags.json) console.log(JSON.stringify(rate));
        else console.log(`IndexFaces rate in force: ${describeRate(rate)}`);
      });
    });
}
