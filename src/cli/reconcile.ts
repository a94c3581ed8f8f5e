/**
 * `reindex reconcile --target <collection> --dry-run`: what a run's reconcile phase would delete
 * from the target, and why, without deleting anything. Deleting is left to the run's own phase,
 * which waits out the indexing of other runs first.
 */
import { ResourceNotFoundException } from '@aws-sdk/client-rekognition';
import type { Command } from 'commander';
import { createLedger } from '../stores/ledger';
import { createOrphanFinder, type ReconcileFinding } from '../stores/orphans';
import { UsageError, withAws } from './common';
import { facePages } from '../aws/rekognition';

interface ReconcileFlags {
  target: string;
  dryRun?: boolean;
  json?: boolean;
}

export function registerReconcileCommand(program: Command): void {
  program
    .command('reconcile')
    .description(
      "list the faces of a target that no record keeps: those a run's reconcile phase deletes, and those it keeps because nothing proves this tool indexed them",
    )
    .requiredOption('--target <collection>', 'the collection runs index into')
    .option('--dry-run', "list, delete nothing (required: deleting is the run's reconcile phase)")
    .option('--json', 'print one JSON object')
    .action(async (flags: ReconcileFlags) => {
      if (!flags.dryRun) throw new UsageError("reconcile only lists: pass --dry-run; a run's reconcile phase deletes");
      await withAws(async ({ config, aws }) => {
        const finder = createOrphanFinder(createLedger(aws.s3, config.bucket), flags.target);
        const finding: ReconcileFinding = { leftovers: [], unattributed: [] };
        let facesChecked = 0;
        try {
          for await (const faces of facePages(aws.rekognition, flags.target)) {
            const found = await finder.classify(faces);
            finding.leftovers.push(...found.leftovers);
            finding.unattributed.push(...found.unattributed);
            facesChecked += faces.length;
          }
        } catch (error) {
          if (error instanceof ResourceNotFoundException)
            throw new UsageError(`the collection ${flags.target} does not exist`);
          throw error;
        }
        if (flags.json) {
          console.log(JSON.stringify({ target: flags.target, facesChecked, ...finding }));
          return;
        }
        const named = (face: { FaceId: string; ExternalImageId: string | undefined }) =>
          `${face.FaceId}${face.ExternalImageId === undefined ? '' : ` (ExternalImageId ${face.ExternalImageId})`}`;
        for (const face of finding.leftovers) console.log(`would delete ${named(face)}: ${face.proof}`);
        for (const face of finding.unattributed)
          console.log(`would keep   ${named(face)}: no record keeps it, but nothing proves this tool indexed it`);
        console.log(
          `${flags.target}: ${facesChecked} faces, ${finding.leftovers.length} this tool's leftovers to delete, ${finding.unattributed.length} not attributable (kept)`,
        );
      });
    });
}
