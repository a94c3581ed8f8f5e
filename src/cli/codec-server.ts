/**
 * `reindex codec-server`: Temporal's remote codec protocol, so the Web UI and `temporal workflow
 * show --codec-endpoint` show an encrypted run's payloads to an operator who holds the key.
 * POST `.../encode` and `.../decode` take and answer `{"payloads":[...]}` in proto3 JSON (metadata
 * values and data in base64); only the last segment of the path counts, so `/{namespace}/decode`
 * works too. Whoever reaches it reads every payload: it binds to 127.0.0.1 unless told otherwise,
 * and serves browsers only from the UI's origin.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { isIP } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { type Command, InvalidArgumentError } from 'commander';
import { EncryptionCodec } from '../encryption/codec';
import { loadKeyring } from '../encryption/key';
import { numberIn, UsageError } from './common';

const DEFAULT_PORT = 8081;
const DEFAULT_UI_ORIGIN = 'http://127.0.0.1:8233';
// The UI sends a history's payloads a page at a time; a payload is at most 2 MB on Temporal's side.
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const ALLOWED_HEADERS = 'content-type, x-namespace, authorization';
/** Requests decoded at once; more wait their turn at the client (503): a flood cannot hold every key operation. */
export const MOST_REQUESTS_IN_FLIGHT = 8;

export interface CodecServerOptions {
  /** The codec of a namespace: payloads are sealed with theirs. */
  codecFor: (namespace: string) => PayloadCodec;
  /** Origins (scheme://host:port) whose pages may call the server: the Temporal Web UI's. */
  uiOrigins: string[];
  /** Serve `/encode`: whoever reaches it could have payloads sealed with the key. Off unless asked. */
  allowEncode?: boolean;
  /** Certificate and key, PEM: the server speaks HTTPS, as a bind beyond this machine requires. */
  tls?: { cert: Buffer; key: Buffer };
  /** Set, every request but a browser's preflight must carry `Authorization: Bearer <token>`. */
  token?: string;
}

/** A token shorter than this is guessable. */
export const SHORTEST_TOKEN = 32;

/** Whether the request carries the token; compared in constant time, whatever its length. */
function carriesToken(request: IncomingMessage, token: string): boolean {
  const sent = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(sent), digest(token));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses a proto3 JSON Payloads message: bytes as base64, as the protocol says. */
function parsePayloads(body: string): Payload[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    // JSON.parse quotes the body in its message, and a body to encode is clear text.
    throw new HttpError(400, 'the body is not JSON');
  }
  try {
    return temporal.api.common.v1.Payloads.fromObject(json as object).payloads;
  } catch (error) {
    throw new HttpError(
      400,
      `the body is not a Payloads message: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function payloadsJson(payloads: Payload[]): string {
  const message = temporal.api.common.v1.Payloads.fromObject({ payloads });
  return JSON.stringify(temporal.api.common.v1.Payloads.toObject(message, { bytes: String, longs: String }));
}

/** The operation the path's last segment names, as the protocol asks. */
function operationOf(url: string | undefined): 'encode' | 'decode' | undefined {
  const last = new URL(url ?? '/', 'http://codec').pathname.split('/').filter(Boolean).pop();
  return last === 'encode' || last === 'decode' ? last : undefined;
}

/**
 * The namespace a request is for:
 * the UI's X-Namespace header, or the segment before the operation (`/{namespace}/decode`).
 */
function namespaceOf(request: IncomingMessage): string {
  const header = request.headers['x-namespace'];
  if (typeof header === 'string' && header !== '') return header;
  const segments = new URL(request.url ?? '/', 'http://codec').pathname.split('/').filter(Boolean);
  return segments.length >= 2 ? decodeURIComponent(segments[segments.length - 2] ?? 'default') : 'default';
}

export function createCodecServer({
  codecFor,
  uiOrigins,
  allowEncode = false,
  tls,
  token,
}: CodecServerOptions): Server {
  let inFlight = 0;
  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const origin = request.headers.origin;
    if (origin !== undefined) {
      // A page of another origin is refused before anything is decrypted, not answered and left to its browser to hide.
      if (!uiOrigins.includes(origin)) throw new HttpError(403, `origin ${origin} may not use this codec server`);
      response.setHeader('Access-Control-Allow-Origin', origin);
      // The UI's "include cross-origin credentials" setting needs this; it allows only the UI's origin.
      response.setHeader('Access-Control-Allow-Credentials', 'true');
      response.setHeader('Vary', 'Origin');
    }
    const operation = operationOf(request.url);
    if (!operation) throw new HttpError(404, 'the codec server answers POST .../encode and .../decode');
    if (operation === 'encode' && !allowEncode)
      throw new HttpError(404, 'encode is off: start the codec server with --allow-encode to serve it');
    if (request.method === 'OPTIONS') {
      response.writeHead(204, {
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': ALLOWED_HEADERS,
        'Access-Control-Max-Age': '600',
      });
      response.end();
      return;
    }
    if (request.method !== 'POST') {
      response.setHeader('Allow', 'POST, OPTIONS');
      throw new HttpError(405, `${operation} takes POST`);
    }
    if (token !== undefined && !carriesToken(request, token)) {
      response.setHeader('WWW-Authenticate', 'Bearer');
      throw new HttpError(
        401,
        'this codec server answers only requests with its bearer token (Authorization: Bearer <token>)',
      );
    }
    if (inFlight >= MOST_REQUESTS_IN_FLIGHT) {
      response.setHeader('Retry-After', '1');
      throw new HttpError(503, `${MOST_REQUESTS_IN_FLIGHT} requests are being answered; try again in a second`);
    }
    inFlight += 1;
    try {
      const payloads = parsePayloads(await readBody(request));
      let answer: Payload[];
      try {
        answer = await codecFor(namespaceOf(request))[operation](payloads);
      } catch (error) {
        throw new HttpError(400, error instanceof Error ? error.message : String(error));
      }
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(payloadsJson(answer));
    } finally {
      inFlight -= 1;
    }
  }

  const handle: RequestListener = (request, response) => {
    serve(request, response).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      // Only the failure: payloads never reach the log.
      console.error(`codec-server: ${request.method ?? ''} ${request.url ?? ''}: ${status} ${message}`);
      if (response.headersSent) {
        response.destroy();
        return;
      }
      response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
      response.end(`${message}\n`);
    });
  };
  return tls ? createTlsServer(tls, handle) : createServer(handle);
}

/** Whether `host` can only be reached from this machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function addOrigin(value: string, previous: string[]): string[] {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new InvalidArgumentError('--ui-origin must be a URL such as http://127.0.0.1:8233');
  }
  return [...previous, parsed.origin];
}

interface CodecServerFlags {
  port: number;
  host: string;
  uiOrigin: string[];
  allowEncode?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
}

/** The token in the file: only its owner may read it, and it must not be guessable. */
function readToken(file: string): string {
  let mode: number;
  let token: string;
  try {
    mode = statSync(file).mode;
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new UsageError(
      `the token file ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  if ((mode & 0o077) !== 0)
    throw new UsageError(
      `the token file ${file} may be read by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`,
    );
  if (token.length < SHORTEST_TOKEN)
    throw new UsageError(
      `the token in ${file} is ${token.length} characters; take at least ${SHORTEST_TOKEN}, such as \`openssl rand -base64 32\``,
    );
  return token;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new UsageError(`${what} ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** The TLS material the flags name; a bind beyond this machine without it is refused. */
function tlsOf(flags: CodecServerFlags): CodecServerOptions['tls'] {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  const tls =
    flags.tlsCert && flags.tlsKey
      ? { cert: readPem(flags.tlsCert, 'the certificate'), key: readPem(flags.tlsKey, 'the key') }
      : undefined;
  if (!tls && !isLoopback(flags.host)) {
    throw new UsageError(
      `--host ${flags.host} reaches beyond this machine, and whoever reaches the codec server reads every payload: give --tls-cert and --tls-key, or put it behind an authenticating HTTPS proxy`,
    );
  }
  return tls;
}

/** The bearer token the flags name; a bind beyond this machine without one is refused. */
function tokenOf(flags: CodecServerFlags): string | undefined {
  if (flags.tokenFile === undefined && !isLoopback(flags.host)) {
    throw new UsageError(
      `--host ${flags.host} reaches beyond this machine: give --token-file, so that only those holding the token read payloads`,
    );
  }
  return flags.tokenFile === undefined ? undefined : readToken(flags.tokenFile);
}

async function listen(server: Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    throw new UsageError(`cannot listen on ${host}:${port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  });
}

export function registerCodecServerCommand(program: Command): void {
  program
    .command('codec-server')
    .description(
      'decrypt payloads for the Temporal Web UI and `temporal workflow show --codec-endpoint` (needs the encryption key)',
    )
    .option('--port <port>', 'port to listen on', numberIn('--port', 1, 65535, true), DEFAULT_PORT)
    .option('--host <address>', 'address to listen on: whoever reaches it reads every payload', '127.0.0.1')
    .option(
      '--ui-origin <url>',
      `the Temporal Web UI origin allowed to call it, repeatable (default ${DEFAULT_UI_ORIGIN})`,
      addOrigin,
      [],
    )
    .option(
      '--allow-encode',
      'serve /encode too, which seals payloads with the key (the UI needs it only to start or signal a workflow)',
    )
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (required for a --host beyond this machine)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option(
      '--token-file <file>',
      'a file (mode 600) holding a bearer token every request must carry (required for a --host beyond this machine)',
    )
    .action(async (flags: CodecServerFlags) => {
      const keyring = loadKeyring();
      if (!keyring)
        throw new UsageError('codec-server needs the key the workers encrypt with: set REINDEX_ENCRYPTION_KEY_FILE');
      const tls = tlsOf(flags);
      const token = tokenOf(flags);
      const uiOrigins = flags.uiOrigin.length > 0 ? flags.uiOrigin : [DEFAULT_UI_ORIGIN];
      // It shows payloads, it does not act on them: those written before encryption are shown as they are.
      const codecFor = (namespace: string) => new EncryptionCodec(keyring, { namespace, allowPlaintext: true });
      const server = createCodecServer({ codecFor, uiOrigins, allowEncode: flags.allowEncode === true, tls, token });
      await listen(server, flags.port, flags.host);
      console.log(
        `codec-server: key id ${keyring.current.id}${keyring.earlier.length > 0 ? ` (and ${keyring.earlier.map((key) => key.id).join(', ')})` : ''}, listening on ${tls ? 'https' : 'http'}://${flags.host}:${flags.port} for ${uiOrigins.join(', ')}${flags.allowEncode ? ', encode on' : ''}${token ? ', bearer token required' : ''}`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
}
