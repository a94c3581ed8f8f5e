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

export function createAwsClients(config: Config): AwsClients {
  const { region, s3ForcePathStyle, sqsEndpointConfigured } = config.aws;
  return {
    s3: new S3Client({ region, forcePathStyle: s3ForcePathStyle }),
    sqs: new SQSClient({ region, useQueueUrlAsEndpoint: !sqsEndpointConfigured }),
    dynamodb: DynamoDBDocumentClient.from(new DynamoDBClient({ region }), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    rekognition: new RekognitionClient({ region }),
    indexFaces: new RekognitionClient({ region, maxAttempts: 1 }),
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
