/**
 * The one typed configuration of worker and CLI, read from the environment and validated once at
 * start. Every missing or malformed setting is reported at once, each with its variable name.
 * Temporal's connection is not here: it comes from @temporalio/envconfig.
 */
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE } from '../shared';

/** The IndexFaces quota of a new AWS account in most regions. */
export const DEFAULT_INDEX_FACES_TPS = 50;

const queueUrl = z.url({ protocol: /^https?$/, error: 'must be an SQS queue URL (http or https)' });
const name = z.string().trim().min(1, 'must not be empty');

const environmentSchema = z.object({
  AWS_REGION: name,
  AWS_ENDPOINT_URL: z.url().optional(),
  AWS_ENDPOINT_URL_S3: z.url().optional(),
  AWS_ENDPOINT_URL_SQS: z.url().optional(),
  REINDEX_BUCKET: name,
  REINDEX_RESULTS_QUEUE_URL: queueUrl,
  REINDEX_REVIEW_DLQ_URL: queueUrl,
  REINDEX_INTAKE_QUEUE_URL: queueUrl.optional(),
  REINDEX_RESULTS_TABLE: name,
  REINDEX_TASK_QUEUE: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/, 'must be letters, digits and . _ - (at most 200)')
    .default(DEFAULT_TASK_QUEUE),
  REINDEX_TPS: z.coerce.number({ error: 'must be a number' }).positive('must be more than 0').default(DEFAULT_INDEX_FACES_TPS),
});

export interface Config {
  aws: {
    region: string;
    /** S3 endpoints other than AWS's (moto, LocalStack, MinIO) need path-style addressing. */
    s3ForcePathStyle: boolean;
    /**
     * SQS calls go to the configured endpoint (a VPC endpoint, a proxy) rather than to the host of
     * each queue URL, which is the SDK's default.
     */
    sqsEndpointConfigured: boolean;
  };
  bucket: string;
  resultsQueueUrl: string;
  reviewDlqUrl: string;
  intakeQueueUrl: string | undefined;
  resultsTable: string;
  /** IndexFaces calls a second, across every worker: the account's quota, or less. */
  indexFacesTps: number;
  /** The workflows' task queue; IndexFaces runs on `<it>-index-faces`. */
  taskQueue: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads the configuration from `env`, treating empty variables as unset. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = issue.path.join('.');
        return issue.code === 'invalid_type' && present[variable] === undefined
          ? `${variable} is not set`
          : `${variable} ${issue.message}`;
      }),
    );
  }
  const settings = parsed.data;
  return {
    aws: {
      region: settings.AWS_REGION,
      s3ForcePathStyle: Boolean(settings.AWS_ENDPOINT_URL_S3 ?? settings.AWS_ENDPOINT_URL),
      sqsEndpointConfigured: Boolean(settings.AWS_ENDPOINT_URL_SQS ?? settings.AWS_ENDPOINT_URL),
    },
    bucket: settings.REINDEX_BUCKET,
    resultsQueueUrl: settings.REINDEX_RESULTS_QUEUE_URL,
    reviewDlqUrl: settings.REINDEX_REVIEW_DLQ_URL,
    intakeQueueUrl: settings.REINDEX_INTAKE_QUEUE_URL,
    resultsTable: settings.REINDEX_RESULTS_TABLE,
    indexFacesTps: settings.REINDEX_TPS,
    taskQueue: settings.REINDEX_TASK_QUEUE,
  };
}
