/**
 * The account's IndexFaces quota, read from Service Quotas: the applied value when the account
 * has one, else AWS's default for the region. The quota's code is not published, so it is found
 * by its name.
 */
import {
  ListAWSDefaultServiceQuotasCommand,
  ListServiceQuotasCommand,
  type ServiceQuota,
  ServiceQuotasClient,
} from '@aws-sdk/client-service-quotas';
import { REQUEST_LIMITS } from './aws/clients';
import type { Config } from './domain/config';
import { chooseIndexFacesRate, type RateChoice } from './domain/rates';

const INDEX_FACES_TPS = /IndexFaces/;

async function findQuota(
  list: (NextToken: string | undefined) => Promise<{ Quotas?: ServiceQuota[]; NextToken?: string }>,
): Promise<number | undefined> {
  let token: string | undefined;
  do {
    const page = await list(token);
    const quota = (page.Quotas ?? []).find(
      (candidate) => INDEX_FACES_TPS.test(candidate.QuotaName ?? '') && typeof candidate.Value === 'number',
    );
    if (quota?.Value !== undefined) return quota.Value;
    token = page.NextToken;
  } while (token);
  return undefined;
}

/** IndexFaces calls a second the account may make in `region`; throws when Service Quotas will not say. */
export async function readIndexFacesQuota(region: string): Promise<number> {
  const client = new ServiceQuotasClient({ region, requestHandler: REQUEST_LIMITS, maxAttempts: 2 });
  try {
    const applied = await findQuota((NextToken) =>
      client.send(new ListServiceQuotasCommand({ ServiceCode: 'rekognition', NextToken })),
    );
    const quota =
      applied ??
      (await findQuota((NextToken) =>
        client.send(new ListAWSDefaultServiceQuotasCommand({ ServiceCode: 'rekognition', NextToken })),
      ));
    if (quota === undefined) throw new Error('Service Quotas lists no IndexFaces quota for rekognition');
    return quota;
  } finally {
    client.destroy();
  }
}

/**
 * Why Service Quotas gave no quota, in one short line:
 * an endpoint that answers something else (a stand-in) says only that.
 */
function whyUnreadable(error: unknown): string {
  if (error instanceof SyntaxError) return 'the endpoint did not answer as Service Quotas does';
  if (!(error instanceof Error)) return String(error);
  return `${error.name}: ${error.message.split('\n')[0]?.slice(0, 200) ?? ''}`;
}

/** The IndexFaces rate a worker asks for: REINDEX_TPS, or a share of the account's quota as Service Quotas gives it. */
export async function indexFacesRate(config: Config): Promise<RateChoice> {
  const { region } = config.aws;
  if (config.indexFacesTps !== undefined)
    return chooseIndexFacesRate({ configured: config.indexFacesTps, region, quota: { unreadable: 'not asked' } });
  const quota = await readIndexFacesQuota(region).then(
    (tps) => ({ tps }),
    (error: unknown) => ({ unreadable: whyUnreadable(error) }),
  );
  return chooseIndexFacesRate({ configured: undefined, region, quota });
}
