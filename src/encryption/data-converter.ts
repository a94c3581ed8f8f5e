/**
 * The data converter every Temporal connection of worker and CLI uses: the SDK's default, or, when
 * an encryption key is set, one that encrypts payloads and failure messages with it.
 */
import type { DataConverter } from '@temporalio/common';
import { type CodecOptions, EncryptionCodec } from './codec';
import { type Keyring, loadKeyring } from './key';

export function encryptingDataConverter(keyring: Keyring, options: CodecOptions): DataConverter {
  return {
    payloadCodecs: [new EncryptionCodec(keyring, options)],
    failureConverterPath: require.resolve('./failure-converter'),
  };
}

/**
 * Whether the environment lets an encrypting process read payloads
 * that were never encrypted (REINDEX_ENCRYPTION_ALLOW_PLAINTEXT).
 */
export function plaintextAllowed(env: Record<string, string | undefined> = process.env): boolean {
  return env.REINDEX_ENCRYPTION_ALLOW_PLAINTEXT === 'true';
}

/** The data converter the environment asks for, for one namespace: undefined (the SDK's default) when no key is set. */
export function loadDataConverter(
  namespace: string,
  env: Record<string, string | undefined> = process.env,
): DataConverter | undefined {
  const keyring = loadKeyring(env);
  return keyring ? encryptingDataConverter(keyring, { namespace, allowPlaintext: plaintextAllowed(env) }) : undefined;
}
