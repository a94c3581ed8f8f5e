/**
 * Points a test process at the running local stack: `npm test` starts it, or a developer ran
 * `npm run stack:up`. Its variables go into process.env, where the AWS SDK and envconfig read them.
 */
import { readStackEnv } from '../infra/local/settings';

export function useLocalStack(): Record<string, string> {
  const variables = readStackEnv();
  if (!variables) {
    throw new Error('the local stack is not running: start it with `npm run stack:up` (`npm test` does this itself)');
  }
  Object.assign(process.env, variables);
  return variables;
}
