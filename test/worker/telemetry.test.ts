/**
 * The worker's telemetry settings as an operator writes them, and the JSON log line as a log
 * collector reads it: an error in a log's metadata keeps its name, message and stack, and nothing
 * else it carries.
 */
import { ApplicationFailure, type LogLevel, type LogMetadata, SdkComponent } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { ConfigError, loadTelemetryConfig } from '../../src/domain/config';
import { ReasonCode } from '../../src/domain/reasons';
import { jsonLogger, RUN_DROPPED_BY_CORE, watchingCore } from '../../src/telemetry';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadTelemetryConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

test('without settings there is no metrics endpoint and logs are text', () => {
  expect(loadTelemetryConfig({ REINDEX_METRICS_ADDRESS: '', REINDEX_LOG_FORMAT: '' })).toEqual({
    metricsAddress: undefined,
    logFormat: 'text',
  });
});

test.each([['0.0.0.0:9464'], ['127.0.0.1:1'], ['[::]:9464'], ['[::1]:65535']])(
  '%s is an address the metrics server can bind',
  (address) => {
    expect(loadTelemetryConfig({ REINDEX_METRICS_ADDRESS: address }).metricsAddress).toBe(address);
  },
);

test.each([
  ['localhost:9464'],
  ['9464'],
  ['127.0.0.1'],
  ['127.0.0.1:0'],
  ['127.0.0.1:65536'],
  ['::1:9464'],
  ['[127.0.0.1]:9464'],
  ['256.0.0.1:9464'],
])('%s is refused, naming the variable and what it takes', (address) => {
  expect(problemsOf({ REINDEX_METRICS_ADDRESS: address })).toEqual([
    'REINDEX_METRICS_ADDRESS must be an IP address and a port to serve Prometheus metrics on, such as 0.0.0.0:9464 or 127.0.0.1:9464',
  ]);
});

test('the log format is text or json', () => {
  expect(loadTelemetryConfig({ REINDEX_LOG_FORMAT: 'json' }).logFormat).toBe('json');
  expect(problemsOf({ REINDEX_LOG_FORMAT: 'yaml', REINDEX_METRICS_ADDRESS: 'x' })).toEqual([
    'REINDEX_METRICS_ADDRESS must be an IP address and a port to serve Prometheus metrics on, such as 0.0.0.0:9464 or 127.0.0.1:9464',
    'REINDEX_LOG_FORMAT must be text or json',
  ]);
});

test('a JSON log line holds the timestamp, level, message and metadata, an error as its name, message and stack alone', () => {
  const lines: string[] = [];
  const logger = jsonLogger('INFO', (line) => lines.push(line));
  // An AWS SDK error keeps the service's answer, the signed request among it, as properties.
  const sdkError = Object.assign(new Error('The security token included in the request is invalid'), {
    name: 'UnrecognizedClientException',
    $metadata: { httpStatusCode: 403, requestId: 'req-1' },
    $response: { headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKIAREINDEXLEAKCHECK/20261128' } },
  });
  const failure = ApplicationFailure.create({
    type: ReasonCode.ImageNotFound,
    message: 'IndexFaces refused s3://photos/a.png',
    nonRetryable: true,
  });

  logger.debug('not written below INFO');
  logger.warn('Activity failed', { activityType: 'reindexImage', attempt: 2n, error: sdkError });
  logger.error('Activity failed', { error: failure });

  expect(lines).toHaveLength(2);
  expect(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
  const [warned, failed] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(Object.keys(warned ?? {})).toEqual(['timestamp', 'level', 'message', 'meta']);
  expect(Math.abs(Date.parse(String(warned?.timestamp)) - Date.now())).toBeLessThan(60_000);
  expect(warned).toMatchObject({
    level: 'WARN',
    message: 'Activity failed',
    meta: { activityType: 'reindexImage', attempt: '2' },
  });
  expect(Object.keys((warned?.meta as { error: object }).error)).toEqual(['name', 'message', 'stack']);
  expect(lines[0]).not.toContain('AKIAREINDEXLEAKCHECK');
  expect(lines[0]).not.toContain('$metadata');
  expect(failed).toMatchObject({
    level: 'ERROR',
    meta: {
      error: { name: 'ApplicationFailure', type: 'IMAGE_NOT_FOUND', message: 'IndexFaces refused s3://photos/a.png' },
    },
  });
});

describe("the watch on the SDK core's logs", () => {
  const coreMeta = {
    sdkComponent: SdkComponent.core,
    target: 'temporalio_sdk_core::worker::workflow::workflow_stream',
  };
  const watched = () => {
    const written: [LogLevel, string, LogMetadata | undefined][] = [];
    const dropped: string[] = [];
    const logger = watchingCore(
      new DefaultLogger('TRACE', ({ level, message, meta }) => written.push([level, message, meta])),
      (message) => dropped.push(message),
    );
    return { logger, written, dropped };
  };

  test('tells of a run the core dropped, as the core logs it, and still writes the line', () => {
    const { logger, written, dropped } = watched();
    const [message = ''] = RUN_DROPPED_BY_CORE;
    logger.log('ERROR', message, coreMeta);
    expect(dropped).toEqual([message]);
    expect(written.map(([level, text]) => [level, text])).toEqual([['ERROR', message]]);
  });

  test('is silent on other core logs, and on the words in a log of the workflows or activities', () => {
    const { logger, written, dropped } = watched();
    const [message = ''] = RUN_DROPPED_BY_CORE;
    logger.log('WARN', 'Task polling has encountered errors continuously; the worker will continue retrying', coreMeta);
    logger.error('Workflow cache full', coreMeta);
    logger.error(message, { sdkComponent: SdkComponent.workflow });
    logger.info(message, { sdkComponent: SdkComponent.activity });
    expect(dropped).toEqual([]);
    expect(written).toHaveLength(4);
  });
});
