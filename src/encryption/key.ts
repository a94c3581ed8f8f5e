/**
 * The keys that encrypt every Temporal payload, read once at start. REINDEX_ENCRYPTION_KEY_FILE (or
 * REINDEX_ENCRYPTION_KEY, for platforms that inject secrets as variables) is the key new payloads
 * are sealed with; REINDEX_DECRYPTION_KEY_FILES names earlier keys, still read, so a key rotates
 * without stalling runs whose histories hold payloads of the one before. No key set means no
 * encryption; a key set wrongly stops the process with a one-line ConfigError naming the variable,
 * and never echoes what the variable or file holds. A key file anyone but its owner may read is
 * refused, and an inline key leaves the environment once read, so no child process inherits it.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../domain/config';

const KEY_BYTES = 32;

export interface EncryptionKey {
  /** Written beside every payload, so a reader knows which key it needs; never secret. */
  id: string;
  /** The AES-256 key. */
  secret: Buffer;
}

/** The key new payloads are sealed with, and every key a payload may have been sealed with. */
export interface Keyring {
  current: EncryptionKey;
  /** Earlier keys, read only. */
  earlier: EncryptionKey[];
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
    throw new ConfigError([
      `${variable} must hold a base64 key of ${KEY_BYTES} bytes (make one with: openssl rand -base64 32)`,
    ]);
  }
  return secret;
}

function readKeyFile(path: string, variable: string): Buffer {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new ConfigError([`${variable} cannot be read (${reason}): ${path}`]);
  }
  if ((mode & 0o077) !== 0)
    throw new ConfigError([
      `${variable} names a key file others may read (mode ${(mode & 0o777).toString(8)}): chmod 600 ${path}`,
    ]);
  return decodeKey(text, variable);
}

/** `[id=]path` entries, comma-separated: each earlier key named by its id, or by its fingerprint. */
function earlierKeys(list: string | undefined): EncryptionKey[] {
  if (list === undefined) return [];
  return list.split(',').map((entry) => {
    const [id, path] = entry.includes('=') ? (entry.split('=', 2) as [string, string]) : [undefined, entry];
    if (id !== undefined && !KEY_ID.test(id))
      throw new ConfigError([
        `REINDEX_DECRYPTION_KEY_FILES names a key id that is not 1 to 64 letters, digits and . _ -: ${id}`,
      ]);
    const secret = readKeyFile(path.trim(), 'REINDEX_DECRYPTION_KEY_FILES');
    return { id: id ?? keyFingerprint(secret), secret };
  });
}

/** The inline key this process read and took out of its environment. */
let inlineTaken: string | undefined;

/** The inline key, out of the process's environment from the first read on. */
function inlineKey(env: Record<string, string | undefined>): string | undefined {
  if (env !== process.env) return env.REINDEX_ENCRYPTION_KEY || undefined;
  if (process.env.REINDEX_ENCRYPTION_KEY) {
    inlineTaken = process.env.REINDEX_ENCRYPTION_KEY;
    delete process.env.REINDEX_ENCRYPTION_KEY;
  }
  return inlineTaken;
}

/** The keys the environment names, or undefined when encryption is off; empty variables count as unset. */
export function loadKeyring(env: Record<string, string | undefined> = process.env): Keyring | undefined {
  const file = env.REINDEX_ENCRYPTION_KEY_FILE || undefined;
  const inline = inlineKey(env);
  const id = env.REINDEX_ENCRYPTION_KEY_ID || undefined;
  const earlierList = env.REINDEX_DECRYPTION_KEY_FILES || undefined;
  if (file && inline) {
    throw new ConfigError(['REINDEX_ENCRYPTION_KEY_FILE and REINDEX_ENCRYPTION_KEY are both set: set one']);
  }
  if (id !== undefined && !KEY_ID.test(id)) {
    throw new ConfigError(['REINDEX_ENCRYPTION_KEY_ID must be 1 to 64 letters, digits and . _ -']);
  }
  const secret = file
    ? readKeyFile(file, 'REINDEX_ENCRYPTION_KEY_FILE')
    : inline && decodeKey(inline, 'REINDEX_ENCRYPTION_KEY');
  if (!secret) {
    // An id or earlier keys without a key would look like encryption is on when it is not.
    if (id !== undefined)
      throw new ConfigError(['REINDEX_ENCRYPTION_KEY_ID is set but no key is: set REINDEX_ENCRYPTION_KEY_FILE']);
    if (earlierList !== undefined)
      throw new ConfigError([
        'REINDEX_DECRYPTION_KEY_FILES is set but no key to encrypt with is: set REINDEX_ENCRYPTION_KEY_FILE',
      ]);
    return undefined;
  }
  const current = { id: id ?? keyFingerprint(secret), secret };
  const earlier = earlierKeys(earlierList);
  const clash = earlier.find((key) => key.id === current.id && !key.secret.equals(current.secret));
  if (clash)
    throw new ConfigError([
      `REINDEX_DECRYPTION_KEY_FILES holds another key under the id ${clash.id} of the key to encrypt with: give one of them another id`,
    ]);
  return { current, earlier };
}
