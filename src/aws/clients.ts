/**
 * Builds the AWS SDK clients once per process. Endpoints come from the SDK's standard
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables, so one binary runs against the local
 * stack, LocalStack or AWS; credentials come from the SDK's default provider chain.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RekognitionClient } from '@aws-sdk/client-rekognition';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import { TemporalFailure } from '@temporalio/common';
import type { Config } from '../domain/config';

export interface AwsClients {
  s3: S3Client;
  sqs: SQSClient;
  dynamodb: DynamoDBDocumentClient;
  rekognition: RekognitionClient;
  /**
   * IndexFaces only, and never retried by the SDK: a throttled call fails its attempt, and
   * Temporal's retry goes back through the task queue's rate. The SDK's own retries would bypass
   * that rate and spend the quota the next images were given.
   */
  indexFaces: RekognitionClient;
}

/**
 * Every client's limits on a call: a connection that does not open in 5 s, an answer that does not
 * begin in a minute (SQS long polls wait 20 s), or a response body that stalls for a minute fails
 * the call instead of hanging its activity until the activity's own timeout. A body that keeps
 * moving, like a records file read for hours, is never cut.
 */
export const REQUEST_LIMITS = {
  connectionTimeout: 5_000,
  requestTimeout: 60_000,
  throwOnRequestTimeout: true,
  socketTimeout: 60_000,
} as const;

/** Signals already allowed any number of listeners. */
const unbounded = new WeakSet<AbortSignal>();

/** The activity running now, or none outside an activity (the CLI): code shared by both asks this. */
export function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** The cancellation signal of the activity running now, or none outside an activity (the CLI). */
function activityCancellation(): AbortSignal | undefined {
  const signal = currentActivity()?.cancellationSignal;
  if (signal === undefined) return undefined;
  // Each call in flight listens on it until it ends, and an activity may have dozens at once.
  if (!unbounded.has(signal)) {
    setMaxListeners(0, signal);
    unbounded.add(signal);
  }
  return signal;
}

interface Sender {
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/**
 * Makes every call the client sends from inside an activity carry that activity's cancellation
 * signal: an attempt that timed out, was cancelled or whose worker is stopping stops its calls at
 * once, instead of writing after a retry has taken over (which reconcile's grace period assumes).
 */
export function cancelledWithActivity<C>(client: C): C {
  const sender = client as unknown as Sender;
  const send = sender.send.bind(sender);
  sender.send = (command, options) => send(command, { abortSignal: activityCancellation(), ...options });
  return client;
}

/**
 * Makes every request of the client name the account that must own its bucket (ExpectedBucketOwner),
 * unless the command names one itself: S3 then refuses, with 403, a bucket of any other account.
 */
function ownedBy(s3: S3Client, owner: string | undefined): S3Client {
  if (owner === undefined) return s3;
  s3.middlewareStack.add((next) => (args) => next({ ...args, input: { ExpectedBucketOwner: owner, ...args.input } }), {
    step: 'initialize',
    name: 'expectedBucketOwner',
  });
  return s3;
}

export function createAwsClients(config: Config): AwsClients {
  const { region, s3ForcePathStyle, sqsEndpointConfigured } = config.aws;
  const requestHandler = REQUEST_LIMITS;
  return {
    s3: cancelledWithActivity(
      ownedBy(new S3Client({ region, forcePathStyle: s3ForcePathStyle, requestHandler }), config.bucketOwner),
    ),
    sqs: cancelledWithActivity(
      new SQSClient({ region, useQueueUrlAsEndpoint: !sqsEndpointConfigured, requestHandler }),
    ),
    dynamodb: cancelledWithActivity(
      DynamoDBDocumentClient.from(new DynamoDBClient({ region, requestHandler }), {
        marshallOptions: { removeUndefinedValues: true },
      }),
    ),
    rekognition: cancelledWithActivity(new RekognitionClient({ region, requestHandler })),
    indexFaces: cancelledWithActivity(new RekognitionClient({ region, maxAttempts: 1, requestHandler })),
  };
}

/** The HTTP status an AWS SDK error carries; HEAD requests have no error body, so it can be all there is. */
export function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export function destroyAwsClients(clients: AwsClients): void {
  clients.s3.destroy();
  clients.sqs.destroy();
  clients.dynamodb.destroy();
  clients.rekognition.destroy();
  clients.indexFaces.destroy();
}

/**
 * An error as it may leave an activity: name, message and stack only. An AWS SDK error carries the
 * service's whole answer as properties, and after a signing failure those hold the request's
 * StringToSign and CanonicalRequest: the access key id and the session token. The worker logs a
 * failed activity's error with every property. Temporal's own failures pass as they are.
 */
export function withoutRequestDetails(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof TemporalFailure) return error;
  const plain = new Error(error.message);
  plain.name = error.name;
  plain.stack = error.stack;
  return plain;
}
