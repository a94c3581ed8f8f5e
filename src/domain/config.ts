/**
 * The one typed configuration of worker and CLI, read from the environment and validated once at
 * start. Every missing or malformed setting is reported at once, each with its variable name.
 * Temporal's connection is not here: it comes from @temporalio/envconfig.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE } from './task-queue';
import { type ImageLocation, imageLocation } from './image-locations';

const queueUrl = z.url({ protocol: /^https?$/, error: 'must be an SQS queue URL (http or https)' });
const name = z.string().trim().min(1, 'must not be empty');

const environmentSchema = z.object({
  AWS_REGION: name,
  AWS_ENDPOINT_URL: z.url().optional(),
  AWS_ENDPOINT_URL_S3: z.url().optional(),
  AWS_ENDPOINT_URL_SQS: z.url().optional(),
  REINDEX_BUCKET: name,
  REINDEX_BUCKET_OWNER: z
    .string()
    .regex(/^\d{12}$/, 'must be an AWS account id, 12 digits')
    .optional(),
  REINDEX_RESULTS_QUEUE_URL: queueUrl,
  REINDEX_REVIEW_DLQ_URL: queueUrl,
  REINDEX_INTAKE_QUEUE_URL: queueUrl.optional(),
  REINDEX_RESULTS_TABLE: name,
  REINDEX_TASK_QUEUE: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/, 'must be letters, digits and . _ - (at most 200)')
    .default(DEFAULT_TASK_QUEUE),
  REINDEX_TPS: z.coerce.number({ error: 'must be a number' }).positive('must be more than 0').optional(),
  REINDEX_IMAGE_LOCATIONS: z
    .string()
    .transform((value, context) => {
      const locations = value.split(',').map((uri) => imageLocation(uri));
      if (locations.every((location) => location !== undefined)) return locations;
      context.addIssue({
        code: 'custom',
        message: 'must be S3 locations, comma-separated: s3://bucket/ or s3://bucket/prefix/',
      });
      return z.NEVER;
    })
    .optional(),
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
  /**
   * The account that must own every bucket worker and CLI read or write (REINDEX_BUCKET_OWNER): S3
   * refuses a request to a bucket of another account, so a mistyped or re-created bucket name
   * never reaches someone else's bucket. Unset, no owner is checked.
   */
  bucketOwner: string | undefined;
  resultsQueueUrl: string;
  reviewDlqUrl: string;
  intakeQueueUrl: string | undefined;
  resultsTable: string;
  /**
   * IndexFaces calls a second, across every worker: the account's quota, or less. Unset, the worker
   * takes a share of the quota (domain/rates.ts).
   */
  indexFacesTps: number | undefined;
  /** The workflows' task queue; IndexFaces runs on `<it>-index-faces`. */
  taskQueue: string;
  /**
   * Where the images are (REINDEX_IMAGE_LOCATIONS): `reindex report` reads a gallery image only from
   * these, whatever a DLQ message names. None when unset.
   */
  imageLocations: ImageLocation[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses `env` with `schema`, treating empty variables as unset and naming every bad one at once. */
function parseEnvironment<Schema extends z.ZodType>(
  schema: Schema,
  env: Record<string, string | undefined>,
): z.output<Schema> {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = schema.safeParse(present);
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
  return parsed.data;
}

/** Reads the configuration from `env`, treating empty variables as unset. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const settings = parseEnvironment(environmentSchema, env);
  return {
    aws: {
      region: settings.AWS_REGION,
      s3ForcePathStyle: Boolean(settings.AWS_ENDPOINT_URL_S3 ?? settings.AWS_ENDPOINT_URL),
      sqsEndpointConfigured: Boolean(settings.AWS_ENDPOINT_URL_SQS ?? settings.AWS_ENDPOINT_URL),
    },
    bucket: settings.REINDEX_BUCKET,
    bucketOwner: settings.REINDEX_BUCKET_OWNER,
    resultsQueueUrl: settings.REINDEX_RESULTS_QUEUE_URL,
    reviewDlqUrl: settings.REINDEX_REVIEW_DLQ_URL,
    intakeQueueUrl: settings.REINDEX_INTAKE_QUEUE_URL,
    resultsTable: settings.REINDEX_RESULTS_TABLE,
    indexFacesTps: settings.REINDEX_TPS,
    taskQueue: settings.REINDEX_TASK_QUEUE,
    imageLocations: settings.REINDEX_IMAGE_LOCATIONS ?? [],
  };
}

// ---------------------------------------------------------------------------------------------
// The worker's telemetry: settings of the worker process alone, which the CLI does not read.

/**
 * An IP address and a port, as the worker's metrics server binds them: `0.0.0.0:9464`,
 * `127.0.0.1:9464`, `[::]:9464`. A host name is refused, since the server binds no name.
 */
function isBindAddress(value: string): boolean {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  if (!match) return false;
  const port = Number(match[3]);
  const host = match[1] ?? match[2] ?? '';
  return port >= 1 && port <= 65_535 && isIP(host) === (match[1] === undefined ? 4 : 6);
}

const telemetrySchema = z.object({
  REINDEX_METRICS_ADDRESS: z
    .string()
    .trim()
    .refine(
      isBindAddress,
      'must be an IP address and a port to serve Prometheus metrics on, such as 0.0.0.0:9464 or 127.0.0.1:9464',
    )
    .optional(),
  REINDEX_LOG_FORMAT: z.enum(['text', 'json'], { error: 'must be text or json' }).default('text'),
});

export interface TelemetryConfig {
  /** Where the worker serves Prometheus metrics at /metrics; none when undefined. */
  metricsAddress: string | undefined;
  /** `json`: the worker writes one JSON object a line; `text`: the SDK's readable lines. */
  logFormat: 'text' | 'json';
}

/** Reads the worker's telemetry settings from `env`, treating empty variables as unset. */
export function loadTelemetryConfig(env: Record<string, string | undefined> = process.env): TelemetryConfig {
  const settings = parseEnvironment(telemetrySchema, env);
  return { metricsAddress: settings.REINDEX_METRICS_ADDRESS, logFormat: settings.REINDEX_LOG_FORMAT };
}
