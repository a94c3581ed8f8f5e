/**
 * readIndexFacesQuota against a stand-in for Service Quotas that answers as AWS does, page by page:
 * the account's applied quota when it has one, else the region's default. Moto's Service Quotas
 * knows no Rekognition quota, so the local stack only ever shows the fallback.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { readIndexFacesQuota } from '../../src/quotas';

const INDEX_FACES = 'Transactions per second per account for the Amazon Rekognition Image operation IndexFaces';

let server: Server;
let answers: Record<string, object[]> = {};
const saved = { ...process.env };

function bodyOf(request: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => resolve(JSON.parse(text || '{}') as Record<string, unknown>));
  });
}

beforeAll(async () => {
  // Each operation answers its pages in turn, the page named by NextToken.
  server = createServer((request, response) => {
    void bodyOf(request).then((body) => {
      const operation = String(request.headers['x-amz-target']).split('.').pop() ?? '';
      const pages = answers[operation] ?? [];
      const page = pages[Number(body.NextToken ?? 0)];
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      if (!page) {
        response.statusCode = 400;
        response.end(
          JSON.stringify({
            __type: 'NoSuchResourceException',
            message: 'The request failed because the specified service does not exist.',
          }),
        );
        return;
      }
      response.end(JSON.stringify(page));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SERVICE_QUOTAS: `http://127.0.0.1:${port}`,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });
});

afterAll(async () => {
  process.env = saved;
  await new Promise((resolve) => server.close(resolve));
});

test("the account's applied IndexFaces quota is found by its name, on whichever page it is", async () => {
  answers = {
    ListServiceQuotas: [
      {
        Quotas: [
          {
            QuotaName: 'Transactions per second per account for the Amazon Rekognition Image operation DetectFaces',
            Value: 50,
          },
        ],
        NextToken: '1',
      },
      { Quotas: [{ QuotaName: INDEX_FACES, Value: 12 }] },
    ],
  };

  await expect(readIndexFacesQuota('eu-central-1')).resolves.toBe(12);
});

test('an account with no applied quota has the default of its region', async () => {
  answers = {
    ListServiceQuotas: [{ Quotas: [] }],
    ListAWSDefaultServiceQuotas: [{ Quotas: [{ QuotaName: INDEX_FACES, Value: 5 }] }],
  };

  await expect(readIndexFacesQuota('eu-central-1')).resolves.toBe(5);
});

test('a Service Quotas that knows no IndexFaces quota is an error the worker reports, not a rate', async () => {
  answers = { ListServiceQuotas: [{ Quotas: [] }], ListAWSDefaultServiceQuotas: [{ Quotas: [] }] };
  await expect(readIndexFacesQuota('eu-central-1')).rejects.toThrow(
    'Service Quotas lists no IndexFaces quota for rekognition',
  );

  answers = {};
  await expect(readIndexFacesQuota('eu-central-1')).rejects.toMatchObject({ name: 'NoSuchResourceException' });
});
