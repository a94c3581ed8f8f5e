/**
 * What a failed activity's error carries out of the activity, where the worker logs it with every
 * property: never the AWS request details that name the credentials.
 */
import { S3ServiceException } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityExecuteInput } from '@temporalio/worker';
import { activityErrorInterceptors } from '../../src/worker';

const input = { args: [], headers: {} } as unknown as ActivityExecuteInput;

function interceptedExecute() {
  const execute = activityErrorInterceptors.activity?.[0]?.({} as never).inbound?.execute;
  if (!execute) throw new Error('the worker has no inbound activity interceptor');
  return execute;
}

function runThrough(error: Error): Promise<unknown> {
  return interceptedExecute()(input, () => Promise.reject(error)).catch((thrown: unknown) => thrown);
}

test('an S3 signing failure leaves the activity with its name and message, not the request it signed', async () => {
  const signing = new S3ServiceException({
    name: 'SignatureDoesNotMatch',
    $fault: 'client',
    $metadata: { httpStatusCode: 403 },
    message: 'The request signature we calculated does not match the signature you provided.',
  });
  Object.assign(signing, {
    AWSAccessKeyId: 'AKIAREINDEXLEAKCHECK',
    StringToSign: 'AWS4-HMAC-SHA256\n20261128T000000Z\n...',
    CanonicalRequest: 'GET\n/\nX-Amz-Security-Token=SESSIONTOKENLEAKCHECK',
  });

  const thrown = await runThrough(signing);

  expect(thrown).toBeInstanceOf(Error);
  expect(thrown).toMatchObject({ name: 'SignatureDoesNotMatch', message: signing.message });
  expect(JSON.stringify(thrown, Object.getOwnPropertyNames(thrown))).not.toMatch(
    /AKIAREINDEXLEAKCHECK|SESSIONTOKENLEAKCHECK|StringToSign|CanonicalRequest/,
  );
});

test('a failure with a reason code passes unchanged, so the workflow still sees its type', async () => {
  const refused = ApplicationFailure.create({ type: 'IMAGE_NOT_FOUND', message: 'no such image', nonRetryable: true });

  expect(await runThrough(refused)).toBe(refused);
});

test('a result passes unchanged', async () => {
  await expect(interceptedExecute()(input, () => Promise.resolve('done'))).resolves.toBe('done');
});
