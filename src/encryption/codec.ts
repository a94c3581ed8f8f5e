/**
 * A Temporal PayloadCodec that encrypts every payload with AES-256-GCM before it leaves the process,
 * so the Temporal server (its database, its UI, anyone who reads a history) holds only ciphertext.
 * The whole payload is encrypted, its metadata too: even the payload's original encoding is hidden.
 * The namespace and the key id are sealed with it as associated data.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { EncryptionKey, Keyring } from './key';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const CIPHER = 'aes-256-gcm';
// GCM's standard IV size; a fresh random one per payload, never reused under a key.
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A payload that cannot be decrypted: another key's, or altered since it was written. */
export class PayloadDecryptionError extends Error {
  override name = 'PayloadDecryptionError';
}

const utf8 = (bytes: Uint8Array | null | undefined): string | undefined =>
  bytes ? Buffer.from(bytes).toString('utf8') : undefined;

/** How a codec reads what it is given. */
export interface CodecOptions {
  /**
   * The Temporal namespace the payloads belong to:
   * sealed with them, so a payload copied into another namespace does not open.
   */
  namespace: string;
  /**
   * Read payloads that were never encrypted, as runs started before encryption was on hold.
   * Off, such a payload is refused: anyone who may write to the namespace could otherwise hand the
   * workers input the key never sealed.
   */
  allowPlaintext?: boolean;
}

/** Payloads sealed with the namespace and key id as associated data say so; those sealed before do not. */
const FORMAT_METADATA = 'encryption-format';
const BOUND_FORMAT = 'aes-256-gcm/bound-v2';

export class EncryptionCodec implements PayloadCodec {
  private readonly keys: Map<string, EncryptionKey>;

  constructor(
    private readonly keyring: Keyring,
    private readonly options: CodecOptions,
  ) {
    this.keys = new Map([...keyring.earlier, keyring.current].map((key) => [key.id, key]));
  }

  // Failures reject the promise, as awaiting callers expect, rather than throw before it exists.
  encode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) => resolve(payloads.map((payload) => this.encrypt(payload))));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) => resolve(payloads.map((payload) => this.decrypt(payload))));
  }

  /**
   * What binds a payload to where it belongs:
   * a sealed payload moved to another namespace, or relabelled with another key id, fails authentication.
   */
  private associatedData(keyId: string): Buffer {
    return Buffer.from(JSON.stringify([BOUND_FORMAT, this.options.namespace, keyId]));
  }

  private encrypt(payload: Payload): Payload {
    const key = this.keyring.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(CIPHER, key.secret, iv);
    cipher.setAAD(this.associatedData(key.id));
    const clear = temporal.api.common.v1.Payload.encode(payload).finish();
    const sealed = Buffer.concat([iv, cipher.update(clear), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: {
        encoding: Buffer.from(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: Buffer.from(key.id),
        [FORMAT_METADATA]: Buffer.from(BOUND_FORMAT),
      },
      data: sealed,
    };
  }

  private decrypt(payload: Payload): Payload {
    if (utf8(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) {
      if (this.options.allowPlaintext) return payload;
      throw new PayloadDecryptionError(
        'payload is not encrypted, and this process encrypts: refused. Runs started before encryption was on are read with REINDEX_ENCRYPTION_ALLOW_PLAINTEXT=true',
      );
    }
    const keyId = utf8(payload.metadata?.[KEY_ID_METADATA]) ?? '(none)';
    const key = this.keys.get(keyId);
    if (!key) {
      const held = [...this.keys.keys()];
      throw new PayloadDecryptionError(
        `payload was encrypted with key id ${keyId}, but this process holds ${held.length === 1 ? 'key id' : 'key ids'} ${held.join(', ')}`,
      );
    }
    const sealed = Buffer.from(payload.data ?? []);
    if (sealed.length < IV_BYTES + TAG_BYTES) {
      throw new PayloadDecryptionError(`payload encrypted with key id ${keyId} is truncated`);
    }
    const decipher = createDecipheriv(CIPHER, key.secret, sealed.subarray(0, IV_BYTES));
    // Taking the format from the payload cannot weaken it: a bound payload read unbound fails its tag.
    if (utf8(payload.metadata?.[FORMAT_METADATA]) === BOUND_FORMAT) decipher.setAAD(this.associatedData(keyId));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    let clear: Buffer;
    try {
      clear = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptionError(
        `payload encrypted with key id ${keyId} fails authentication: it was altered, moved from another namespace, or encrypted with another key of the same id`,
      );
    }
    return temporal.api.common.v1.Payload.decode(clear);
  }
}
