/**
 * The payload encryption on its own: what the Temporal server would store, what a reader holding the
 * wrong key, or an altered payload, gets, and the one-line errors of a key set wrongly.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { ConfigError } from '../../src/domain/config';
import {
  ENCRYPTED_ENCODING,
  EncryptionCodec,
  KEY_ID_METADATA,
  PayloadDecryptionError,
} from '../../src/encryption/codec';
import { type EncryptionKey, keyFingerprint, loadKeyring } from '../../src/encryption/key';
import { temporal } from '@temporalio/proto';

const keyOf = (id: string): EncryptionKey => ({ id, secret: randomBytes(32) });
const codecOf = (key: EncryptionKey, namespace = 'default', earlier: EncryptionKey[] = []) =>
  new EncryptionCodec({ current: key, earlier }, { namespace });
const loadEncryptionKey = (env: Record<string, string | undefined>) => loadKeyring(env)?.current;

/** A payload as versions before the namespace was bound sealed it: no associated data, no format. */
function sealedUnbound(key: EncryptionKey, payload: Payload): Payload {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.secret, iv);
  const sealed = Buffer.concat([
    iv,
    cipher.update(temporal.api.common.v1.Payload.encode(payload).finish()),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return {
    metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(key.id) },
    data: sealed,
  };
}
const record = {
  Bucket: 'photos',
  Key: 'people/ana.jpg',
  Faces: [{ FaceId: '3f1c9a52-0b7e-4f4e-9d63-6d3b1d0f2a11', BoundingBoxes: { Width: 0.2134 } }],
};
const clearPayload = (): Payload => defaultPayloadConverter.toPayload(record);
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');

describe('EncryptionCodec', () => {
  const key = keyOf('key-2026');
  const codec = codecOf(key);

  test('a payload comes back as it was, and what the server stores says only that it is encrypted and with which key', async () => {
    const [stored] = await codec.encode([clearPayload()]);

    expect(Object.keys(stored?.metadata ?? {}).sort()).toEqual(['encoding', 'encryption-format', KEY_ID_METADATA]);
    expect(text(stored?.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(text(stored?.metadata?.[KEY_ID_METADATA])).toBe('key-2026');
    for (const clear of ['people/ana.jpg', '3f1c9a52', '0.2134', 'json/plain'])
      expect(text(stored?.data)).not.toContain(clear);
    const [read] = await codec.decode(stored ? [stored] : []);
    expect(defaultPayloadConverter.fromPayload(read as Payload)).toEqual(record);
  });

  test('each payload gets its own IV, so equal values never look equal', async () => {
    const stored = await codec.encode(Array.from({ length: 500 }, clearPayload));

    const ivs = new Set(
      stored.map((payload) =>
        Buffer.from(payload.data ?? [])
          .subarray(0, 12)
          .toString('hex'),
      ),
    );
    const ciphertexts = new Set(stored.map((payload) => Buffer.from(payload.data ?? []).toString('hex')));
    expect(ivs.size).toBe(500);
    expect(ciphertexts.size).toBe(500);
  });

  test.each([
    [
      'a flipped bit of the ciphertext',
      (data: Buffer) => Buffer.concat([data.subarray(0, 20), Buffer.from([(data[20] ?? 0) ^ 1]), data.subarray(21)]),
    ],
    ['a flipped bit of the IV', (data: Buffer) => Buffer.concat([Buffer.from([(data[0] ?? 0) ^ 1]), data.subarray(1)])],
    ['a cut-off tag', (data: Buffer) => data.subarray(0, data.length - 1)],
    ['a payload cut to a few bytes', (data: Buffer) => data.subarray(0, 10)],
  ])('%s is refused, never read as something else', async (_change, alter) => {
    const [stored] = await codec.encode([clearPayload()]);
    const altered = { ...stored, data: alter(Buffer.from(stored?.data ?? [])) };

    await expect(codec.decode([altered])).rejects.toThrow(PayloadDecryptionError);
    await expect(codec.decode([altered])).rejects.toThrow(/key id key-2026 (fails authentication|is truncated)/);
  });

  test('a payload of another key names both keys', async () => {
    const [stored] = await codecOf(keyOf('key-2025')).encode([clearPayload()]);

    await expect(codec.decode(stored ? [stored] : [])).rejects.toThrow(
      'payload was encrypted with key id key-2025, but this process holds key id key-2026',
    );
  });

  test('another key under the same id fails authentication instead of decrypting to garbage', async () => {
    const [stored] = await codecOf(keyOf('key-2026')).encode([clearPayload()]);

    await expect(codec.decode(stored ? [stored] : [])).rejects.toThrow(
      'payload encrypted with key id key-2026 fails authentication',
    );
  });

  test('a payload that was never encrypted is refused, unless the process reads runs from before encryption', async () => {
    const clear = [
      clearPayload(),
      defaultPayloadConverter.toPayload(undefined),
      defaultPayloadConverter.toPayload(new Uint8Array([1, 2])),
    ];

    await expect(codec.decode(clear)).rejects.toThrow(
      'payload is not encrypted, and this process encrypts: refused. Runs started before encryption was on are read with REINDEX_ENCRYPTION_ALLOW_PLAINTEXT=true',
    );
    expect(
      await new EncryptionCodec({ current: key, earlier: [] }, { namespace: 'default', allowPlaintext: true }).decode(
        clear,
      ),
    ).toEqual(clear);
    expect(await codec.encode([])).toEqual([]);
  });

  test('a payload moved to another namespace, or relabelled with another key id, does not open', async () => {
    const [stored] = await codec.encode([clearPayload()]);
    const relabelled = { ...stored, metadata: { ...stored?.metadata, [KEY_ID_METADATA]: Buffer.from('key-2027') } };

    await expect(codecOf(key, 'other-namespace').decode(stored ? [stored] : [])).rejects.toThrow(
      'fails authentication: it was altered, moved from another namespace',
    );
    await expect(codecOf(keyOf('key-2027'), 'default', [key]).decode([relabelled])).rejects.toThrow(
      'payload encrypted with key id key-2027 fails authentication',
    );
    // Dropping the format, to read it as a payload from before the binding, fails too.
    const { 'encryption-format': _format, ...withoutFormat } = stored?.metadata ?? {};
    const unbound = { ...stored, metadata: withoutFormat };
    await expect(codec.decode([unbound])).rejects.toThrow('fails authentication');
  });

  test('a payload sealed before the namespace was bound still opens', async () => {
    const [read] = await codec.decode([sealedUnbound(key, clearPayload())]);

    expect(defaultPayloadConverter.fromPayload(read as Payload)).toEqual(record);
  });

  test('after a rotation, new payloads take the new key and those of the earlier key still open', async () => {
    const rotated = codecOf(keyOf('key-2027'), 'default', [key]);
    const [before] = await codec.encode([clearPayload()]);
    const [after] = await rotated.encode([clearPayload()]);

    expect(text(after?.metadata?.[KEY_ID_METADATA])).toBe('key-2027');
    expect(
      (await rotated.decode([before as Payload, after as Payload])).map((payload) =>
        defaultPayloadConverter.fromPayload(payload),
      ),
    ).toEqual([record, record]);
    await expect(codec.decode([after as Payload])).rejects.toThrow(
      'payload was encrypted with key id key-2027, but this process holds key id key-2026',
    );
    await expect(codecOf(keyOf('key-2028'), 'default', [key]).decode([after as Payload])).rejects.toThrow(
      'but this process holds key ids key-2026, key-2028',
    );
  });
});

describe('loadEncryptionKey', () => {
  const folder = mkdtempSync(path.join(tmpdir(), 'reindex-key-'));
  const secret = randomBytes(32);
  const write = (name: string, content: string, mode = 0o600) => {
    const file = path.join(folder, name);
    writeFileSync(file, content, { mode });
    return file;
  };

  afterAll(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  test('no key set: encryption is off', () => {
    expect(loadEncryptionKey({})).toBeUndefined();
    expect(loadEncryptionKey({ REINDEX_ENCRYPTION_KEY_FILE: '', REINDEX_ENCRYPTION_KEY: '' })).toBeUndefined();
  });

  test('a key file as `openssl rand -base64 32` writes it, named by a fingerprint that is not the key', () => {
    const key = loadEncryptionKey({ REINDEX_ENCRYPTION_KEY_FILE: write('key', `${secret.toString('base64')}\n`) });

    expect(key?.secret.equals(secret)).toBe(true);
    expect(key?.id).toBe(keyFingerprint(secret));
    expect(key?.id).toMatch(/^[0-9a-f]{12}$/);
    expect(secret.toString('hex')).not.toContain(key?.id);
    expect(secret.toString('base64')).not.toContain(key?.id);
  });

  test('a key in a variable, with an id of its own', () => {
    const key = loadEncryptionKey({
      REINDEX_ENCRYPTION_KEY: secret.toString('base64'),
      REINDEX_ENCRYPTION_KEY_ID: 'prod-2026',
    });

    expect(key).toEqual({ id: 'prod-2026', secret });
  });

  test.each<[string, () => Record<string, string>, string]>([
    [
      'a key of 16 bytes',
      () => ({ REINDEX_ENCRYPTION_KEY_FILE: write('short', randomBytes(16).toString('base64')) }),
      'REINDEX_ENCRYPTION_KEY_FILE must hold a base64 key of 32 bytes (make one with: openssl rand -base64 32)',
    ],
    [
      'a key that is not base64',
      () => ({ REINDEX_ENCRYPTION_KEY: 'not a key at all, just words!!' }),
      'REINDEX_ENCRYPTION_KEY must hold a base64 key of 32 bytes (make one with: openssl rand -base64 32)',
    ],
    [
      'a file that is not there',
      () => ({ REINDEX_ENCRYPTION_KEY_FILE: path.join(folder, 'absent') }),
      `REINDEX_ENCRYPTION_KEY_FILE cannot be read (ENOENT): ${path.join(folder, 'absent')}`,
    ],
    [
      'a folder for a file',
      () => ({ REINDEX_ENCRYPTION_KEY_FILE: folder }),
      `REINDEX_ENCRYPTION_KEY_FILE cannot be read (EISDIR): ${folder}`,
    ],
    [
      'both the file and the variable',
      () => ({
        REINDEX_ENCRYPTION_KEY_FILE: write('both', secret.toString('base64')),
        REINDEX_ENCRYPTION_KEY: secret.toString('base64'),
      }),
      'REINDEX_ENCRYPTION_KEY_FILE and REINDEX_ENCRYPTION_KEY are both set: set one',
    ],
    [
      'an id without a key',
      () => ({ REINDEX_ENCRYPTION_KEY_ID: 'prod-2026' }),
      'REINDEX_ENCRYPTION_KEY_ID is set but no key is: set REINDEX_ENCRYPTION_KEY_FILE',
    ],
    [
      'an id with a space',
      () => ({ REINDEX_ENCRYPTION_KEY: secret.toString('base64'), REINDEX_ENCRYPTION_KEY_ID: 'prod 2026' }),
      'REINDEX_ENCRYPTION_KEY_ID must be 1 to 64 letters, digits and . _ -',
    ],
    [
      'a key file others may read',
      () => ({ REINDEX_ENCRYPTION_KEY_FILE: write('shared', secret.toString('base64'), 0o644) }),
      `REINDEX_ENCRYPTION_KEY_FILE names a key file others may read (mode 644): chmod 600 ${path.join(folder, 'shared')}`,
    ],
    [
      'earlier keys without a key to encrypt with',
      () => ({ REINDEX_DECRYPTION_KEY_FILES: write('old', secret.toString('base64')) }),
      'REINDEX_DECRYPTION_KEY_FILES is set but no key to encrypt with is: set REINDEX_ENCRYPTION_KEY_FILE',
    ],
    [
      'an earlier key others may read',
      () => ({
        REINDEX_ENCRYPTION_KEY: secret.toString('base64'),
        REINDEX_DECRYPTION_KEY_FILES: write('old-shared', randomBytes(32).toString('base64'), 0o640),
      }),
      `REINDEX_DECRYPTION_KEY_FILES names a key file others may read (mode 640): chmod 600 ${path.join(folder, 'old-shared')}`,
    ],
    [
      'another key under the id of the current one',
      () => ({
        REINDEX_ENCRYPTION_KEY: secret.toString('base64'),
        REINDEX_ENCRYPTION_KEY_ID: 'prod',
        REINDEX_DECRYPTION_KEY_FILES: `prod=${write('clash', randomBytes(32).toString('base64'))}`,
      }),
      'REINDEX_DECRYPTION_KEY_FILES holds another key under the id prod of the key to encrypt with: give one of them another id',
    ],
  ])('%s is one configuration error naming the variable, never quoting the key', (_case, env, problem) => {
    const environment = env();
    let error: unknown;
    try {
      loadEncryptionKey(environment);
    } catch (thrown) {
      error = thrown;
    }

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`invalid configuration: ${problem}`);
    if (environment.REINDEX_ENCRYPTION_KEY)
      expect((error as ConfigError).message).not.toContain(environment.REINDEX_ENCRYPTION_KEY);
  });

  test('earlier keys come from their files, named by id or by fingerprint', () => {
    const older = randomBytes(32);
    const oldest = randomBytes(32);
    const keyring = loadKeyring({
      REINDEX_ENCRYPTION_KEY: secret.toString('base64'),
      REINDEX_DECRYPTION_KEY_FILES: `prod-2025=${write('older', older.toString('base64'))},${write('oldest', oldest.toString('base64'))}`,
    });

    expect(keyring?.earlier).toEqual([
      { id: 'prod-2025', secret: older },
      { id: keyFingerprint(oldest), secret: oldest },
    ]);
  });

  test("an inline key leaves the process's environment once read, so no child process inherits it, and stays the process's key", () => {
    process.env.REINDEX_ENCRYPTION_KEY = secret.toString('base64');
    try {
      const first = loadKeyring(process.env);
      expect(process.env.REINDEX_ENCRYPTION_KEY).toBeUndefined();
      expect(first?.current.secret.equals(secret)).toBe(true);
      expect(loadKeyring(process.env)?.current).toEqual(first?.current);
    } finally {
      delete process.env.REINDEX_ENCRYPTION_KEY;
    }
  });
});
