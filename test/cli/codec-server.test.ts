/**
 * The codec server decrypts every payload it is sent, so it serves as little as it can: /encode
 * only when asked, a bounded number of requests at once, HTTPS when given a certificate, and no
 * address beyond this machine without one.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { createCodecServer, isLoopback, MOST_REQUESTS_IN_FLIGHT } from '../../src/cli/codec-server';
import { EncryptionCodec } from '../../src/encryption/codec';
import { runCli } from '../../harness/cli';

const key = { id: 'test-key', secret: randomBytes(32) };
const codecFor = (namespace: string) =>
  new EncryptionCodec({ current: key, earlier: [] }, { namespace, allowPlaintext: true });
const clear = {
  payloads: [
    {
      metadata: { encoding: Buffer.from('json/plain').toString('base64') },
      data: Buffer.from('"ana.jpg"').toString('base64'),
    },
  ],
};
let directory: string;
let keyFile: string;

beforeAll(() => {
  directory = mkdtempSync(path.join(tmpdir(), 'reindex-codec-'));
  keyFile = path.join(directory, 'key');
  writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
});

afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function listening(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const close = (server: Server) => new Promise((resolve) => server.close(resolve));
const post = (url: string, body: unknown = clear) => fetch(url, { method: 'POST', body: JSON.stringify(body) });

test('encode is served only when asked for; decode always', async () => {
  const closed = createCodecServer({ codecFor, uiOrigins: [] });
  const open = createCodecServer({ codecFor, uiOrigins: [], allowEncode: true });
  try {
    const [closedUrl, openUrl] = [await listening(closed), await listening(open)];

    const refused = await post(`${closedUrl}/default/encode`);
    expect(refused.status).toBe(404);
    expect(await refused.text()).toContain('--allow-encode');
    const sealed = await post(`${openUrl}/default/encode`);
    expect(sealed.status).toBe(200);
    const decoded = await post(`${closedUrl}/default/decode`, await sealed.json());
    expect(decoded.status).toBe(200);
    expect(await decoded.json()).toEqual(clear);
  } finally {
    await Promise.all([close(closed), close(open)]);
  }
});

test(`at most ${MOST_REQUESTS_IN_FLIGHT} requests are answered at once; one more is told to come back`, async () => {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  let decoding = 0;
  // A codec that answers once released: the requests pile up as they would behind a slow key.
  const slow: PayloadCodec = {
    encode: (payloads: Payload[]) => Promise.resolve(payloads),
    decode: async (payloads: Payload[]) => {
      decoding += 1;
      await held;
      return payloads;
    },
  };
  const server = createCodecServer({ codecFor: () => slow, uiOrigins: [] });
  try {
    const url = await listening(server);
    const answered = Array.from({ length: MOST_REQUESTS_IN_FLIGHT }, () => post(`${url}/decode`));
    while (decoding < MOST_REQUESTS_IN_FLIGHT) await new Promise((resolve) => setTimeout(resolve, 10));

    const extra = await post(`${url}/decode`);
    expect(extra.status).toBe(503);
    expect(extra.headers.get('retry-after')).toBe('1');
    release();
    expect((await Promise.all(answered)).map((response) => response.status)).toEqual(answered.map(() => 200));
    expect((await post(`${url}/decode`)).status).toBe(200);
  } finally {
    release();
    await close(server);
  }
});

test('with a certificate it speaks HTTPS only', async () => {
  const certFile = path.join(directory, 'cert.pem');
  const keyPem = path.join(directory, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPem,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const cert = readFileSync(certFile);
  const server = createCodecServer({ codecFor, uiOrigins: [], tls: { cert, key: readFileSync(keyPem) } });
  try {
    const { port } = new URL(await listening(server));
    const status = await new Promise<number>((resolve, reject) => {
      const sent = request({ host: '127.0.0.1', port, path: '/decode', method: 'POST', ca: cert }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      sent.on('error', reject);
      sent.end(JSON.stringify(clear));
    });
    expect(status).toBe(200);
    await expect(post(`http://127.0.0.1:${port}/decode`)).rejects.toThrow();
  } finally {
    await close(server);
  }
});

test('an address beyond this machine is refused without TLS, before anything listens', async () => {
  const env = { ...process.env, REINDEX_ENCRYPTION_KEY_FILE: keyFile };

  const wide = await runCli(['codec-server', '--host', '0.0.0.0'], env);
  expect(wide.code).toBe(2);
  expect(wide.stderr).toMatch(
    /^reindex: --host 0\.0\.0\.0 reaches beyond this machine, and whoever reaches the codec server reads every payload: give --tls-cert and --tls-key/,
  );
  expect(wide.stderr.trim().split('\n')).toHaveLength(1);
  const half = await runCli(['codec-server', '--tls-cert', path.join(directory, 'cert.pem')], env);
  expect(half).toMatchObject({ code: 2, stderr: 'reindex: --tls-cert and --tls-key go together\n' });

  expect(['127.0.0.1', '127.8.0.1', '::1', 'localhost'].map(isLoopback)).toEqual([true, true, true, true]);
  expect(['0.0.0.0', '10.0.0.7', '::', 'codec.example.com'].map(isLoopback)).toEqual([false, false, false, false]);
});

test('with a token, only a request that carries it is answered; a browser preflight needs none', async () => {
  const token = randomBytes(32).toString('base64');
  const server = createCodecServer({ codecFor, uiOrigins: ['http://127.0.0.1:8233'], allowEncode: true, token });
  try {
    const url = await listening(server);
    const bearing = (sent: string | undefined) =>
      fetch(`${url}/default/encode`, {
        method: 'POST',
        body: JSON.stringify(clear),
        headers: sent === undefined ? {} : { authorization: sent },
      });

    const none = await bearing(undefined);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await bearing(`Bearer ${token.slice(1)}`)).status).toBe(401);
    expect((await bearing(token)).status).toBe(401);
    expect((await bearing(`Bearer ${token}`)).status).toBe(200);
    const preflight = await fetch(`${url}/default/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:8233' },
    });
    expect(preflight.status).toBe(204);
  } finally {
    await close(server);
  }
});

test('an address beyond this machine needs a token file only its owner reads, holding a token no one guesses', async () => {
  const env = { ...process.env, REINDEX_ENCRYPTION_KEY_FILE: keyFile };
  const pem = (name: string) => path.join(directory, name);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=codec',
      '-days',
      '1',
      '-keyout',
      pem('wide-key.pem'),
      '-out',
      pem('wide-cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const wide = [
    'codec-server',
    '--host',
    '0.0.0.0',
    '--port',
    '1',
    '--tls-cert',
    pem('wide-cert.pem'),
    '--tls-key',
    pem('wide-key.pem'),
  ];

  expect(await runCli(wide, env)).toMatchObject({
    code: 2,
    stderr:
      'reindex: --host 0.0.0.0 reaches beyond this machine: give --token-file, so that only those holding the token read payloads\n',
  });
  const shared = pem('shared-token');
  writeFileSync(shared, randomBytes(32).toString('base64'), { mode: 0o644 });
  expect(await runCli([...wide, '--token-file', shared], env)).toMatchObject({
    code: 2,
    stderr: `reindex: the token file ${shared} may be read by others (mode 644): chmod 600 it\n`,
  });
  const short = pem('short-token');
  writeFileSync(short, 'secret', { mode: 0o600 });
  expect(await runCli([...wide, '--token-file', short], env)).toMatchObject({
    code: 2,
    stderr: `reindex: the token in ${short} is 6 characters; take at least 32, such as \`openssl rand -base64 32\`\n`,
  });
});
