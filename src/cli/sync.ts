/**
 * `reindex sync --source <old> --target <new>`: brings a migrated collection in step with the old
 * collection the application still changes: faces deleted there are deleted from the target
 * first, user changes are replayed, and faces added there are migrated by a run of their own.
 * Once (`--once`, the default, waiting for the pass), or one pass every interval on a Temporal
 * Schedule (`--every 15m`) until `--stop`.
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { type Command, Option } from 'commander';
import { FACE_KEYS, PlacementError } from '../domain/image-locations';
import type { Config } from '../domain/config';
import type { AwsClients } from '../aws/clients';
import { setRate } from '../index-faces-rate';
import { type SyncInput, type SyncPlacement, type SyncSummary } from '../shared';
import type { syncCollection } from '../workflows';
import { checkPair } from './cutover-check';
import { parseS3Uri, UsageError, withClients } from './common';
import { openMapping, type PlacementFlags, placementOf } from './prepare';
import { addRunSettings, runSettingsOf, type RunSettingsFlags, settingsOf } from './runs';
import { assertSearchAttributes, defaultWorkflowId } from './starting';

/** Where added faces' images are: prepare's flags, but for the partitions and the unplaced file. */
interface SyncFlags extends RunSettingsFlags, PlacementFlags {
  target: string;
  once?: boolean;
  every?: string;
  stop?: boolean;
  json?: boolean;
}

/** A pass every minute at most: a pass lists the whole old collection. */
const SHORTEST_INTERVAL_MS = 60_000;

/** The Schedule of a target's syncs: one per target. */
export function syncScheduleId(target: string): string {
  return `reindex-sync-${target}`;
}

/** Where the images of faces added to the old collection are, checked as prepare checks it; a mapping must be in S3. */
function syncPlacementOf(flags: SyncFlags): SyncPlacement {
  const placement = placementOf(
    flags,
    'say where the images of faces added to the old collection are: --key-from external-image-id, --key-template or --mapping',
  );
  switch (placement.mode) {
    case 'external-image-id':
      return { mode: 'external-image-id', ...placement.placement };
    case 'template':
      return { mode: 'template', template: placement.template.text };
    case 'mapping':
      if (!placement.file.startsWith('s3://'))
        throw new UsageError(
          `--mapping ${placement.file}: the worker reads the mapping file, so it must be an s3:// URI`,
        );
      return {
        mode: 'mapping',
        file: parseS3Uri(placement.file),
        ...(placement.key === undefined ? {} : { key: placement.key }),
      };
  }
}

function intervalOf(every: string): Duration {
  // Checked here: a string that is no duration throws.
  const duration = every as Duration;
  let ms: number;
  try {
    ms = msToNumber(duration);
  } catch {
    throw new UsageError(`--every ${every} is not a duration such as 15m, 1h or 1d`);
  }
  if (!(ms >= SHORTEST_INTERVAL_MS))
    throw new UsageError(`--every ${every} is shorter than a minute: each pass lists the whole old collection`);
  return duration;
}

/** What the flags ask of every pass, checked against the collections now. */
async function syncInputOf(
  { config, aws }: { config: Config; aws: AwsClients },
  flags: SyncFlags,
  source: string,
): Promise<SyncInput> {
  const placement = syncPlacementOf(flags);
  await checkPair(aws, config.bucket, { source, target: flags.target });
  if (placement.mode === 'mapping') {
    // Its header now: a mapping without the columns it needs is refused before any pass.
    const mapping = await openMapping(aws.s3, flags.mapping ?? '', flags.mappingKey).catch((error: unknown) => {
      throw error instanceof PlacementError ? new UsageError(error.message) : error;
    });
    await mapping.entries.return(undefined);
  }
  const settings = settingsOf(flags);
  return {
    sourceCollectionId: source,
    ...(flags.sourceRegion === undefined ? {} : { sourceRegion: flags.sourceRegion }),
    targetCollectionId: flags.target,
    placement,
    run: runSettingsOf(settings),
  };
}

function summaryLines(summary: SyncSummary): string[] {
  const lag =
    summary.deletionLagMs === undefined
      ? 'the first sync: no earlier listing to measure from'
      : `at most ${(summary.deletionLagMs / 1000).toFixed(1)} s after the previous sync's listing`;
  return [
    `sync ${summary.syncId}: ${summary.sourceCollectionId} (${summary.oldFaces} faces) → ${summary.targetCollectionId} (${summary.rows} rows)`,
    `deleted ${summary.deleted} faces gone from the old collection (${lag})`,
    `user changes ${summary.userChanges}${summary.userChangesRefused ? `, ${summary.userChangesRefused} refused` : ''}, users deleted ${summary.usersDeleted}`,
    summary.additionsDeferred > 0
      ? `additions ${summary.additionsDeferred} faces wait for the runs in flight: ${summary.runsInFlight.join(', ')}`
      : `additions ${summary.additions.faces} faces in ${summary.additions.images} images${summary.additions.unplaced ? `, ${summary.additions.unplaced} unplaced (in review)` : ''}${summary.additionsRun ? `: run ${summary.additionsRun.workflowId} ${summary.additionsRun.status}, ${summary.additionsRun.matched} matched, ${summary.additionsRun.dlq} to review` : ''}`,
  ];
}

async function stopSchedule(client: Client, target: string, json: boolean | undefined): Promise<void> {
  const scheduleId = syncScheduleId(target);
  try {
    await client.schedule.getHandle(scheduleId).delete();
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) throw new UsageError(`no sync of ${target} is scheduled`);
    throw error;
  }
  console.log(json ? JSON.stringify({ scheduleId, stopped: true }) : `stopped the syncs of ${target} (${scheduleId})`);
}

export function registerSyncCommand(program: Command): void {
  addRunSettings(
    program
      .command('sync')
      .description(
        'bring a migrated collection in step with its old collection: deletions first, then user changes, then additions',
      )
      .requiredOption('--target <collection>', 'the collection the old one was migrated to')
      .option('--once', 'one pass now, waiting for it (the default)')
      .option('--every <interval>', 'one pass every interval (15m, 1h, ...) on a Temporal Schedule, until --stop')
      .option('--stop', "stop the target's scheduled syncs")
      .addOption(
        new Option('--key-from <field>', "an added face's image key is its ExternalImageId").choices([
          'external-image-id',
        ]),
      )
      .option('--bucket <bucket>', 'with --key-from: the bucket of the images')
      .option('--prefix <prefix>', 'with --key-from: put before the ExternalImageId', '')
      .option('--suffix <suffix>', 'with --key-from: put after the ExternalImageId, e.g. .jpg', '')
      .option(
        '--key-template <template>',
        'each added image at s3://bucket/key with {FaceId}, {ImageId} or {ExternalImageId}',
      )
      .option(
        '--mapping <s3-uri>',
        'a CSV in S3 with a FaceId, ImageId or ExternalImageId column and an S3Uri column (its UserId column is not read: the old collection says whose a face is)',
      )
      .addOption(
        new Option('--mapping-key <column>', 'the key column of the mapping, when it has more than one').choices([
          ...FACE_KEYS,
        ]),
      )
      .option('--json', 'print JSON: the last line of stdout is one object'),
  ).action(async (flags: SyncFlags) => {
    const modes = [flags.once && '--once', flags.every !== undefined && '--every', flags.stop && '--stop'].filter(
      Boolean,
    );
    if (modes.length > 1) throw new UsageError(`${modes.join(' and ')} exclude each other: choose one`);
    if (flags.stop) {
      await withClients(({ client }) => stopSchedule(client, flags.target, flags.json));
      return;
    }
    const source = flags.source;
    if (source === undefined) throw new UsageError('say which old collection to follow: --source <collection>');
    if (source === flags.target)
      throw new UsageError(`--source and --target both name ${source}: a collection cannot be its own migration`);
    const every = flags.every === undefined ? undefined : intervalOf(flags.every);
    await withClients(async (clients) => {
      const { client, config } = clients;
      const input = await syncInputOf(clients, flags, source);
      await assertSearchAttributes(client);
      if (flags.tps !== undefined)
        await setRate(
          client.workflowService,
          { namespace: client.options.namespace, identity: client.options.identity, taskQueue: config.taskQueue },
          flags.tps,
          `reindex sync --tps ${flags.tps}`,
        );
      if (every !== undefined) {
        const scheduleId = syncScheduleId(flags.target);
        try {
          await client.schedule.create({
            scheduleId,
            spec: { intervals: [{ every }] },
            // A pass still running when the next is due: the next is skipped, not queued.
            policies: { overlap: 'SKIP' },
            action: {
              type: 'startWorkflow',
              workflowType: 'syncCollection',
              taskQueue: config.taskQueue,
              workflowId: `sync-${flags.target}`,
              args: [input],
            },
          });
        } catch (error) {
          if (error instanceof ScheduleAlreadyRunning)
            throw new UsageError(`${flags.target} is synced on a schedule already (${scheduleId}): --stop it first`);
          throw error;
        }
        console.log(
          flags.json
            ? JSON.stringify({ scheduleId, every })
            : `syncing ${source} into ${flags.target} every ${every}: schedule ${scheduleId}; stop with reindex sync --stop --target ${flags.target}`,
        );
        return;
      }
      const summary = await client.workflow.execute<typeof syncCollection>('syncCollection', {
        taskQueue: config.taskQueue,
        workflowId: defaultWorkflowId(flags.target).replace(/^reindex-/, 'sync-'),
        args: [input],
      });
      if (flags.json) console.log(JSON.stringify(summary));
      else for (const line of summaryLines(summary)) console.log(line);
    });
  });
}
