/**
 * The AWS clients every activity uses: a call made inside an activity stops the moment the
 * activity is cancelled or times out, against an endpoint that never answers, so a dead attempt
 * never writes after its retry took over.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { DescribeCollectionCommand } from '@aws-sdk/client-rekognition';
import { type AwsClients, createAwsClients, destroyAwsClients, REQUEST_LIMITS } from '../../src/aws/clients';
import { loadConfig } from '../../src/domain/config';
import { activityEnvironment } from '../../harness/activity-environment';
import { useLocalStack } from '../../harness/local-stack';

const ENDPOINT_VARIABLES = [
  'AWS_ENDPOINT_URL_S3',
  'AWS_ENDPOINT_URL_SQS',
  'AWS_ENDPOINT_URL_DYNAMODB',
  'AWS_ENDPOINT_URL_REKOGNITION',
];

let silent: Server;
const sockets: Socket[] = [];
let clients: AwsClients;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  useLocalStack();
  // Accepts every connection and never answers: a service that hangs.
  silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as { port: number };
  for (const name of ENDPOINT_VARIABLES) {
    saved[name] = process.env[name];
    process.env[name] = `http://127.0.0.1:${port}`;
  }
  clients = createAwsClients(loadConfig());
});

afterAll(async () => {
  destroyAwsClients(clients);
  for (const name of ENDPOINT_VARIABLES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

const calls: Record<keyof AwsClients, () => Promise<unknown>> = {
  s3: () => clients.s3.send(new HeadObjectCommand({ Bucket: 'any', Key: 'any' })),
  sqs: () =>
    clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: 'http://127.0.0.1/1/any', AttributeNames: ['All'] })),
  dynamodb: () => clients.dynamodb.send(new GetCommand({ TableName: 'any', Key: { id: 'any' } })),
  rekognition: () => clients.rekognition.send(new DescribeCollectionCommand({ CollectionId: 'any' })),
  indexFaces: () => clients.indexFaces.send(new DescribeCollectionCommand({ CollectionId: 'any' })),
};

test.each(Object.keys(calls) as (keyof AwsClients)[])(
  '%s: a call to a service that hangs stops the moment its activity is cancelled',
  async (client) => {
    const env = activityEnvironment();
    const call = env.run(calls[client]);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const cancelledAt = performance.now();
    env.cancel();

    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - cancelledAt).toBeLessThan(1_000);
  },
);

test('every client gives up on a connection after 5 s and on an answer after a minute', () => {
  for (const client of [clients.s3, clients.sqs, clients.dynamodb, clients.rekognition, clients.indexFaces]) {
    const handler = client.config.requestHandler as { httpHandlerConfigs(): Record<string, unknown> };
    expect(handler.httpHandlerConfigs()).toMatchObject(REQUEST_LIMITS);
  }
});
