/**
 * Points a test process at the running local stack: `npm test` starts it, or a developer ran
 * `npm run stack:up`. Its variables go into process.env, where the AWS SDK and envconfig read them.
 */
import { readStackEnv } from '../infra/local/settings';
import { workerRekognitionEndpoint } from './test-workers';

/** The stack's variables, with this jest worker's own rekognition-local where it has one. */
export function useLocalStack(): Record<string, string> {
  const stack = readStackEnv();
  if (!stack) {
    throw new Error('the local stack is not running: start it with `npm run stack:up` (`npm test` does this itself)');
  }
  const rekognition = workerRekognitionEndpoint();
  const variables = { ...stack, ...(rekognition === undefined ? {} : { AWS_ENDPOINT_URL_REKOGNITION: rekognition }) };
  Object.assign(process.env, variables);
  return variables;
}
