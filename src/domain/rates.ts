/**
 * How fast a deployment calls IndexFaces when nobody said: a share of the account's quota, so the
 * application that still uses the old collection keeps the rest. Pure; the worker reads the quota.
 */

/** The share of the account's IndexFaces quota a deployment takes unless REINDEX_TPS says otherwise. */
export const QUOTA_SHARE = 0.5;

/** Regions whose documented default IndexFaces quota is 50 a second; elsewhere it is 5. */
const FIFTY_TPS_REGIONS = new Set(['us-east-1', 'us-west-2', 'eu-west-1']);

/** Rekognition's documented default IndexFaces quota of a region, in calls a second. */
export function documentedIndexFacesQuota(region: string): number {
  return FIFTY_TPS_REGIONS.has(region) ? 50 : 5;
}

export interface RateChoice {
  tps: number;
  /** Where the rate comes from, in words for the worker's log. */
  reason: string;
}

/** The rate REINDEX_TPS sets; otherwise a share of the quota Service Quotas gave, or of the documented one. */
export function chooseIndexFacesRate({
  configured,
  region,
  quota,
}: {
  configured: number | undefined;
  region: string;
  quota: { tps: number } | { unreadable: string };
}): RateChoice {
  if (configured !== undefined) return { tps: configured, reason: 'REINDEX_TPS' };
  if ('tps' in quota) {
    return {
      tps: quota.tps * QUOTA_SHARE,
      reason: `half the account's IndexFaces quota of ${quota.tps}/s in ${region} (Service Quotas), leaving the rest to your application; REINDEX_TPS sets another rate`,
    };
  }
  const documented = documentedIndexFacesQuota(region);
  return {
    tps: documented * QUOTA_SHARE,
    reason: `a default: half of ${documented}/s, Rekognition's documented IndexFaces quota in ${region}, since the account's own could not be read from Service Quotas (${quota.unreadable}); set REINDEX_TPS to your quota or below it`,
  };
}
