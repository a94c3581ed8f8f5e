/**
 * The CDK app: one stack, synthesized offline into infra/aws/cdk.out/<stack>.template.json.
 *
 *   npm run cdk:synth                         # the template, no AWS account or network needed
 *   npx cdk deploy --parameters ImageBucket=photos --parameters TargetCollections='faces-v7-*'
 *
 * `cdk` runs this file through cdk.json and tells it where to write (CDK_OUTDIR) and the context
 * (`-c stackName=...`); run directly, it writes to infra/aws/cdk.out.
 */
import path from 'node:path';
import { App, LegacyStackSynthesizer } from 'aws-cdk-lib';
import { VALIDATE_AGAINST_DEFAULT_RULES } from 'aws-cdk-lib/cx-api';
import { DEFAULT_STACK_NAME } from './outputs';
import { ReindexStack } from './stack';

export const DEFAULT_OUTDIR = path.join(__dirname, 'cdk.out');

/** Builds the app's one stack; `stackName` comes from `-c stackName=...` when not given. */
export function buildApp(options: { outdir?: string; stackName?: string } = {}): { app: App; stack: ReindexStack } {
  // Synthesis checks the template against CloudFormation's resource schemas and CDK's rules,
  // offline, and fails on an error rather than only reporting it.
  const app = new App({ outdir: options.outdir, context: { [VALIDATE_AGAINST_DEFAULT_RULES]: true } });
  const context: unknown = app.node.tryGetContext('stackName');
  const stackName = options.stackName ?? (typeof context === 'string' && context !== '' ? context : DEFAULT_STACK_NAME);
  const stack = new ReindexStack(app, stackName, {
    description: 'rekognition-reindex: records bucket, results and review queues, results table and the worker policy',
    // The stack has no assets, so it deploys with the caller's credentials and needs no `cdk bootstrap`;
    // the template deploys as it is with `aws cloudformation deploy` too.
    synthesizer: new LegacyStackSynthesizer(),
  });
  return { app, stack };
}

/** Synthesizes the stack into `outdir` and returns the template's path. */
export function synthesize(options: { outdir?: string; stackName?: string } = {}): string {
  const { app, stack } = buildApp(options);
  return app.synth().getStackByName(stack.stackName).templateFullPath;
}

if (require.main === module) {
  // Under `cdk`, CDK_OUTDIR says where; App reads it when no outdir is given.
  const templateFile = synthesize({ outdir: process.env.CDK_OUTDIR ? undefined : DEFAULT_OUTDIR });
  if (!process.env.CDK_OUTDIR) process.stdout.write(`${path.relative(process.cwd(), templateFile)}\n`);
}
