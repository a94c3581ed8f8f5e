/**
 * The key that encrypts every Temporal payload, read once at start from REINDEX_ENCRYPTION_KEY_FILE
 * (or REINDEX_ENCRYPTION_KEY, for platforms that inject secrets as variables). No key set means no
 * encryption; a key set wrongly stops the process with a one-line ConfigError naming the variable,
 * and never echoes what the variable or file holds.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../domain/config';

const KEY_BYTES = 32;

export interface EncryptionKey {
  /** Written beside every payload, so a reader knows which key it needs; never secret. */
  id: string;
  /** The AES-256 key. */
  secret: Buffer;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A short name for a key that tells keys apart without revealing them: a prefix of its SHA-256. */
export function keyFingerprint(secret: Buffer): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 12);
}

function decodeKey(text: string, variable: string): Buffer {
  const trimmed = text.trim();
  const secret = BASE64.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined;
  if (secret?.length !== KEY_BYTES) {
    throw new ConfigError([`${variable} must hold a base64 key of ${KEY_BYTES} bytes (make one with: openssl rand -base64 32)`]);
  }
  return secret;
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new ConfigError([`REINDEX_ENCRYPTION_KEY_FILE cannot be read (${reason}): ${path}`]);
  }
}

/** The key the environment names, or undefined when encryption is off; empty variables count as unset. */
export function loadEncryptionKey(env: Record<string, string | undefined> = process.env): EncryptionKey | undefined {
  const file = env.REINDEX_ENCRYPTION_KEY_FILE || undefined;
  const inline = env.REINDEX_ENCRYPTION_KEY || undefined;
  const id = env.REINDEX_ENCRYPTION_KEY_ID || undefined;
  if (file && inline) {
    throw new ConfigError(['REINDEX_ENCRYPTION_KEY_FILE and REINDEX_ENCRYPTION_KEY are both set: set one']);
  }
  if (id !== undefined && !KEY_ID.test(id)) {
    throw new ConfigError(['REINDEX_ENCRYPTION_KEY_ID must be 1 to 64 letters, digits and . _ -']);
  }
  const secret = file ? decodeKey(readKeyFile(file), 'REINDEX_ENCRYPTION_KEY_FILE') : inline && decodeKey(inline, 'REINDEX_ENCRYPTION_KEY');
  if (!secret) {
    // An id without a key would look like encryption is on when it is not.
    if (id !== undefined) throw new ConfigError(['REINDEX_ENCRYPTION_KEY_ID is set but no key is: set REINDEX_ENCRYPTION_KEY_FILE']);
    return undefined;
  }
  return { id: id ?? keyFingerprint(secret), secret };
}
