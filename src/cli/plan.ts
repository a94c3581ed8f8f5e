/**
 * `reindex plan`: the collections of the account and region (or those named) with their face
 * model, faces and users, the IndexFaces calls each migration makes and the hours they take at
 * the rate. `--older-than` keeps those on older models. `--out` writes each one's records file as
 * `prepare` does, and a plan file naming them all with their targets.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DescribeCollectionCommand, ListCollectionsCommand, type RekognitionClient } from '@aws-sdk/client-rekognition';
import type { Command } from 'commander';
import { SIDE_FILE_SUFFIXES } from '../domain/intake';
import {
  type DescribedCollection,
  onOlderModels,
  type Plan,
  PlanError,
  type PlannedCollection,
  planOf,
  planned,
  targetsOf,
} from '../domain/plans';
import { isCollectionId } from '../domain/collection-names';
import { indexFacesRate } from '../quotas';
import { numberIn, UsageError, withAws } from './common';
import { isS3, openLineSink } from './files';
import {
  type PlacementOptions,
  placementOf,
  prepareRecords,
  type SourceAccount,
  withPlacementOptions,
  withSourceClient,
} from './prepare';

interface PlanFlags extends PlacementOptions {
  collections?: string[];
  olderThan?: string;
  tps?: number;
  out?: string;
  targetTemplate?: string;
  json?: boolean;
}

/** What the plan file is called in the --out folder. */
export const PLAN_FILE = 'plan.json';

async function collectionIds(rekognition: RekognitionClient): Promise<string[]> {
  const ids: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await rekognition.send(new ListCollectionsCommand({ NextToken }));
    ids.push(...(page.CollectionIds ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return ids;
}

async function describe(
  rekognition: RekognitionClient,
  collectionId: string,
  { region }: SourceAccount,
): Promise<DescribedCollection> {
  try {
    const described = await rekognition.send(new DescribeCollectionCommand({ CollectionId: collectionId }));
    return {
      collectionId,
      faceModelVersion: described.FaceModelVersion ?? '',
      faces: described.FaceCount ?? 0,
      users: described.UserCount ?? 0,
    };
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException')
      throw new UsageError(`the collection ${collectionId} does not exist in ${region}`);
    throw error;
  }
}

/** A file in the --out folder: under an S3 prefix, or in a local directory. */
function inFolder(folder: string, name: string): string {
  return isS3(folder) ? `${folder}${folder.endsWith('/') ? '' : '/'}${name}` : path.join(folder, name);
}

function printPlan(plan: Plan): void {
  const rows = plan.collections.map((collection) => [
    collection.collectionId,
    collection.faceModelVersion,
    collection.faces.toLocaleString('en-US'),
    collection.users.toLocaleString('en-US'),
    `${collection.callsCounted ? '' : '≤ '}${collection.indexFacesCalls.toLocaleString('en-US')}`,
    collection.hours.toFixed(2),
    collection.target ?? '',
  ]);
  const header = ['collection', 'model', 'faces', 'users', 'IndexFaces calls', 'hours', 'target'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  for (const row of [header, ...rows])
    console.log(
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    );
  const { totals } = plan;
  const uncounted = plan.collections.some((collection) => !collection.callsCounted);
  console.log(
    `${totals.collections} collection${totals.collections === 1 ? '' : 's'}, ${totals.faces.toLocaleString('en-US')} faces, ${totals.indexFacesCalls.toLocaleString('en-US')} IndexFaces calls${uncounted ? ' at most' : ''}: ${totals.hours.toFixed(2)} hours at ${plan.tps}/s`,
  );
  if (uncounted) console.log('(calls are one a face until --out counts the images)');
}

export function registerPlanCommand(program: Command): void {
  withPlacementOptions(
    program
      .command('plan')
      .description(
        'list the collections a migration would move, with their faces, IndexFaces calls and hours at the rate; with --out, write their records files and a plan file',
      )
      .option('--collections <ids...>', 'these collections only (default: every collection of the account and region)')
      .option('--older-than <version>', 'keep only collections on a face model older than this, e.g. 7.0')
      .option(
        '--tps <n>',
        'the IndexFaces rate the hours are reckoned at (default: the rate a worker takes)',
        numberIn('--tps', 0.01, 10_000, false),
      )
      .option(
        '--out <folder>',
        "write each collection's records file, <collection>.jsonl, and plan.json here: s3://bucket/prefix/ or a local folder",
      )
      .option(
        '--target-template <template>',
        "with --out: each target's name, {collection} standing for the old one's, e.g. {collection}-v7",
      ),
  )
    .option('--json', 'print the plan as JSON')
    .action(async (flags: PlanFlags) => {
      for (const id of flags.collections ?? []) {
        if (!isCollectionId(id))
          throw new UsageError(
            `--collections: ${id} is not a collection name: letters, digits and _ . - only, at most 255`,
          );
      }
      if (flags.olderThan !== undefined && !/^\d+(\.\d+)*$/.test(flags.olderThan))
        throw new UsageError(`--older-than: ${flags.olderThan} is not a face model version, such as 7.0`);
      if (flags.out !== undefined && flags.targetTemplate === undefined)
        throw new UsageError("--out needs --target-template, the name of each collection's target");
      if (flags.out === undefined && flags.targetTemplate !== undefined)
        throw new UsageError('--target-template goes with --out');
      const placement = flags.out === undefined ? undefined : placementOf(flags);
      await withAws(async (clients) => {
        const { config, aws } = clients;
        const tps = flags.tps ?? (await indexFacesRate(config)).tps;
        const plan = await withSourceClient(flags, clients, async (rekognition, account) => {
          const ids = flags.collections ?? (await collectionIds(rekognition));
          const described: DescribedCollection[] = [];
          for (const id of ids) described.push(await describe(rekognition, id, account));
          const chosen = onOlderModels(described, flags.olderThan);
          if (flags.out === undefined || placement === undefined)
            return planOf(
              chosen.map((collection) => planned(collection, tps)),
              { region: account.region, tps, createdAt: new Date().toISOString() },
            );
          let targets: Map<string, string>;
          try {
            targets = targetsOf(
              flags.targetTemplate ?? '',
              chosen.map((collection) => collection.collectionId),
            );
          } catch (error) {
            throw error instanceof PlanError ? new UsageError(error.message) : error;
          }
          const out = flags.out;
          if (!isS3(out)) await mkdir(out, { recursive: true, mode: 0o700 });
          const collections: PlannedCollection[] = [];
          for (const collection of chosen) {
            const target = targets.get(collection.collectionId);
            const records = inFolder(out, `${collection.collectionId}.jsonl`);
            const unplaced = `${records}${SIDE_FILE_SUFFIXES.unplaced}`;
            const summary = await prepareRecords(
              { rekognition, s3: aws.s3 },
              {
                source: collection.collectionId,
                target,
                placement,
                out: records,
                unplaced,
                format: 'jsonl',
                facesInMemory: flags.facesInMemory,
              },
              account,
            );
            collections.push({
              ...planned(collection, tps, summary.images),
              target,
              records,
              unplaced,
              unplacedFaces: summary.unplaced,
            });
          }
          const plan = planOf(collections, { region: account.region, tps, createdAt: new Date().toISOString() });
          const file = await openLineSink(aws.s3, inFolder(out, PLAN_FILE), 'the plan file');
          await file.write(JSON.stringify(plan, null, 2));
          await file.close();
          return plan;
        });
        if (flags.json) console.log(JSON.stringify(plan));
        else printPlan(plan);
      });
    });
}
