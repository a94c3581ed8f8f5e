/**
 * The failure converter of an encrypting worker and client, bundled into the workflow sandbox by
 * path. Failure messages and stack traces name S3 keys and FaceIds, so they travel as an encoded
 * payload, which the encryption codec then encrypts, instead of as clear text beside it.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
