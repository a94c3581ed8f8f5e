/**
 * Prints a deployed stack's outputs as the environment worker and CLI read, one
 * `export NAME='value'` a line, so a deployment becomes their configuration with no renaming:
 *
 *   npm run -s aws:env -- --stack rekognition-reindex > aws.env && source aws.env
 *
 * Reads the stack with DescribeStacks and the default AWS credentials; `--region` (or AWS_REGION,
 * or the profile's region) says where it is.
 */
import {
  CloudFormationClient,
  CloudFormationServiceException,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { Command, CommanderError } from 'commander';
import { DEFAULT_STACK_NAME, StackOutputsError, environmentFromOutputs, exportLines } from './outputs';

class StackEnvError extends Error {}

async function printStackEnvironment(options: { stack: string; region?: string }): Promise<void> {
  const client = new CloudFormationClient(options.region ? { region: options.region } : {});
  try {
    const { Stacks = [] } = await client.send(new DescribeStacksCommand({ StackName: options.stack }));
    const [stack] = Stacks;
    if (!stack) throw new StackEnvError(`no stack ${options.stack}`);
    // A stack being created, or rolled back from its creation, has no outputs yet.
    if (!stack.Outputs?.length)
      throw new StackEnvError(
        `stack ${options.stack} is ${stack.StackStatus ?? 'in an unknown state'} and has no outputs`,
      );
    process.stdout.write(`${exportLines(environmentFromOutputs(stack.Outputs ?? []), options.stack).join('\n')}\n`);
  } catch (error) {
    // DescribeStacks answers an unknown stack with a ValidationError; credentials and region
    // problems come from the SDK before any call, network ones after its retries. Each is one
    // line for the person at the shell.
    if (
      error instanceof CloudFormationServiceException ||
      error instanceof StackOutputsError ||
      error instanceof StackEnvError
    ) {
      throw new StackEnvError(error.message);
    }
    if (
      error instanceof Error &&
      ('$metadata' in error || /credential|region/i.test(`${error.name} ${error.message}`))
    ) {
      throw new StackEnvError(`cannot read stack ${options.stack}: ${error.message}`);
    }
    throw error;
  } finally {
    client.destroy();
  }
}

const program = new Command('stack-env')
  .description("print a deployed stack's outputs as export lines of the worker's and CLI's environment")
  .option('--stack <name>', 'the CloudFormation stack', DEFAULT_STACK_NAME)
  .option('--region <region>', "the stack's region (default: AWS_REGION or the profile's)");

async function main(): Promise<void> {
  try {
    program.exitOverride();
    await program.action((options: { stack: string; region?: string }) => printStackEnvironment(options)).parseAsync();
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
    if (!(error instanceof StackEnvError)) throw error;
    process.stderr.write(`stack-env: ${error.message}\n`);
    process.exit(2);
  }
}

void main();
