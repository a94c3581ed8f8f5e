/**
 * The data converter every Temporal connection of worker and CLI uses: the SDK's default, or, when
 * an encryption key is set, one that encrypts payloads and failure messages with it.
 */
import type { DataConverter } from '@temporalio/common';
import { EncryptionCodec } from './codec';
import { type EncryptionKey, loadEncryptionKey } from './key';

export function encryptingDataConverter(key: EncryptionKey): DataConverter {
  return {
    payloadCodecs: [new EncryptionCodec(key)],
    failureConverterPath: require.resolve('./failure-converter'),
  };
}

/** The data converter the environment asks for: undefined (the SDK's default) when no key is set. */
export function loadDataConverter(env: Record<string, string | undefined> = process.env): DataConverter | undefined {
  const key = loadEncryptionKey(env);
  return key ? encryptingDataConverter(key) : undefined;
}
