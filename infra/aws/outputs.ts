/**
 * What the AWS stack tells worker and CLI, as the environment they read (src/domain/config.ts).
 * CloudFormation output keys take no underscores, so each output's key is its variable in
 * PascalCase (`REINDEX_BUCKET` → `ReindexBucket`) and its description is the variable itself:
 * the stack, stack-env.ts and the tests all derive both from this one list.
 */

/** The stack's name unless `-c stackName=...` (cdk) or `--stack` (stack-env.ts) says another. */
export const DEFAULT_STACK_NAME = 'rekognition-reindex';

/** The variables the stack outputs, in the order stack-env.ts prints them. */
export const STACK_ENVIRONMENT = [
  'AWS_REGION',
  'REINDEX_BUCKET',
  'REINDEX_BUCKET_OWNER',
  'REINDEX_RESULTS_QUEUE_URL',
  'REINDEX_RESULTS_DLQ_URL',
  'REINDEX_REVIEW_DLQ_URL',
  'REINDEX_INTAKE_QUEUE_URL',
  'REINDEX_RESULTS_TABLE',
  'REINDEX_IMAGE_LOCATIONS',
] as const;

export type StackVariable = (typeof STACK_ENVIRONMENT)[number];

/** The worker's IAM managed policy: attached to the worker's role, never read as configuration. */
export const WORKER_POLICY_OUTPUT = 'WorkerPolicyArn';

/** The output key of a variable: `REINDEX_RESULTS_QUEUE_URL` → `ReindexResultsQueueUrl`. */
export function outputKey(variable: StackVariable): string {
  return variable
    .toLowerCase()
    .split('_')
    .map((word) => `${word.charAt(0).toUpperCase()}${word.slice(1)}`)
    .join('');
}

/** One output as `aws cloudformation describe-stacks` and DescribeStacksCommand give it. */
export interface StackOutput {
  OutputKey?: string;
  OutputValue?: string;
}

export interface StackEnvironment {
  variables: Record<StackVariable, string>;
  workerPolicyArn: string | undefined;
}

export class StackOutputsError extends Error {
  constructor(readonly missing: string[]) {
    super(`the stack has no output ${missing.join(', ')}; is it this project's stack, deployed from this version?`);
    this.name = 'StackOutputsError';
  }
}

/** The worker's environment from a deployed stack's outputs; every variable must be there. */
export function environmentFromOutputs(outputs: StackOutput[]): StackEnvironment {
  const values = new Map(
    outputs.flatMap(({ OutputKey, OutputValue }) =>
      OutputKey && OutputValue ? [[OutputKey, OutputValue] as const] : [],
    ),
  );
  const missing = STACK_ENVIRONMENT.filter((variable) => !values.has(outputKey(variable)));
  if (missing.length > 0)
    throw new StackOutputsError(missing.map((variable) => `${outputKey(variable)} (${variable})`));
  const variables = Object.fromEntries(
    STACK_ENVIRONMENT.map((variable) => [variable, values.get(outputKey(variable)) ?? '']),
  ) as Record<StackVariable, string>;
  return { variables, workerPolicyArn: values.get(WORKER_POLICY_OUTPUT) };
}

/** Shell lines a person can `source` or `eval`: one `export NAME='value'` a variable. */
export function exportLines({ variables, workerPolicyArn }: StackEnvironment, stackName: string): string[] {
  const exports = Object.entries(variables).map(([name, value]) => {
    if (/['\n]/.test(value))
      throw new Error(`${name} holds a quote or newline, which an export line cannot carry: ${value}`);
    return `export ${name}='${value}'`;
  });
  const policy = workerPolicyArn ? [`# the worker's IAM policy, to attach to its role: ${workerPolicyArn}`] : [];
  return [`# from CloudFormation stack ${stackName}`, ...exports, ...policy];
}
