/**
 * HTTP front of rekognition-local. POST / with `X-Amz-Target: RekognitionService.<Operation>`
 * speaks AWS JSON 1.1 to the unmodified SDK; /_admin/ holds what the real service has no API for:
 * reset, the current face model version, quotas, latency, faults and per-operation counters.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { RekognitionError } from './errors';
import { FACE_ID_BEHAVIOURS, FACE_MODEL_VERSIONS, type RekognitionService } from './service';
import type { Store } from './store';
import { type Traffic, trafficSettingsSchema } from './traffic';
import { type Operation, schemas, validate } from './validation';

const TARGET_PREFIX = 'RekognitionService.';
/** Above the 5 MB image limit once base64-encoded, so that limit is the one a caller meets. */
const MOST_BODY_BYTES = 16 * 1024 * 1024;

const adminSettingsSchema = trafficSettingsSchema.partial().extend({
  currentFaceModelVersion: z.enum(FACE_MODEL_VERSIONS).optional(),
  faceIds: z.enum(FACE_ID_BEHAVIOURS).optional(),
  maxFacesPerCollection: z.number().int().positive().optional(),
});

function isOperation(name: string): name is Operation {
  return Object.hasOwn(schemas, name);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MOST_BODY_BYTES) {
      throw new RekognitionError('ImageTooLargeException', 'Request body is larger than the service accepts.');
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/x-amz-json-1.1',
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': crypto.randomUUID(),
    ...headers,
  });
  response.end(text);
}

function sendError(response: ServerResponse, error: RekognitionError): void {
  sendJson(response, error.status, { __type: error.type, message: error.message }, { 'x-amzn-ErrorType': error.type });
}

/** Host names that can only mean this machine. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function hostOf(request: IncomingMessage): string {
  try {
    return new URL(`http://${request.headers.host ?? ''}`).hostname;
  } catch {
    return '';
  }
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

export function createRekognitionServer(service: RekognitionService, store: Store, traffic: Traffic): Server {
  const settingsView = () => {
    const { currentFaceModelVersion, faceIds, maxFacesPerCollection } = service.settings;
    return { currentFaceModelVersion, faceIds, maxFacesPerCollection, ...traffic.current() };
  };

  async function handleOperation(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const target = String(request.headers['x-amz-target'] ?? '');
    const operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
    if (!isOperation(operation)) {
      throw new RekognitionError(
        'UnknownOperationException',
        `Unknown operation: ${target || '(no X-Amz-Target header)'}`,
      );
    }
    traffic.admit(operation);
    const delay = traffic.delayFor(operation);
    const body = await readBody(request);
    let input: unknown;
    try {
      input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      throw new RekognitionError('SerializationException', 'Request body is not valid JSON.');
    }
    try {
      const result = await (service[operation] as (input: unknown) => unknown)(validate(operation, input));
      if (delay > 0) await sleep(delay);
      traffic.succeeded(operation);
      sendJson(response, 200, result);
    } catch (error) {
      traffic.failed(operation);
      throw error;
    }
  }

  async function handleAdmin(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    const send = (body: unknown, status = 200) => {
      // Admin calls are rare; not keeping their connections open lets a restart start clean.
      response.writeHead(status, { 'Content-Type': 'application/json', Connection: 'close' });
      response.end(JSON.stringify(body));
    };
    const route = `${request.method ?? 'GET'} ${path}`;
    // A web page whose name was rebound to 127.0.0.1 reaches this port with its own name as Host.
    if (!LOOPBACK_HOSTS.has(hostOf(request)))
      return send(
        { error: `admin calls are served to this machine only, not to Host ${request.headers.host ?? '(none)'}` },
        403,
      );
    switch (route) {
      case 'GET /_admin/health':
        return send({ ok: true });
      case 'POST /_admin/reset':
        // A JSON body a page cannot send without a CORS preflight, which this server never grants.
        if (
          !String(request.headers['content-type'] ?? '').startsWith('application/json') ||
          !isJsonObject((await readBody(request)).toString('utf8'))
        ) {
          return send(
            {
              error:
                'reset deletes every collection: send it with Content-Type application/json and a JSON object body',
            },
            400,
          );
        }
        store.commit({ kind: 'reset' });
        traffic.resetCounters();
        return send({ ok: true });
      case 'GET /_admin/settings':
        return send(settingsView());
      case 'PUT /_admin/settings': {
        const parsed = adminSettingsSchema.safeParse(JSON.parse((await readBody(request)).toString('utf8') || '{}'));
        if (!parsed.success) return send({ error: z.prettifyError(parsed.error) }, 400);
        const { currentFaceModelVersion, faceIds, maxFacesPerCollection, ...trafficChanges } = parsed.data;
        if (currentFaceModelVersion) service.settings.currentFaceModelVersion = currentFaceModelVersion;
        if (faceIds) service.settings.faceIds = faceIds;
        if (maxFacesPerCollection) service.settings.maxFacesPerCollection = maxFacesPerCollection;
        traffic.configure(trafficSettingsSchema.parse({ ...traffic.current(), ...trafficChanges }));
        return send(settingsView());
      }
      case 'GET /_admin/counters':
        return send(traffic.report());
      case 'DELETE /_admin/counters':
        traffic.resetCounters();
        return send({ ok: true });
      default:
        return send({ error: `no admin route ${route}` }, 404);
    }
  }

  return createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const handled = path.startsWith('/_admin/')
      ? handleAdmin(request, response, path)
      : handleOperation(request, response);
    handled.catch((error: unknown) => {
      if (response.headersSent) return response.destroy();
      if (error instanceof RekognitionError) return sendError(response, error);
      if (error instanceof SyntaxError) return sendJson(response, 400, { error: 'body is not valid JSON' });
      sendError(
        response,
        new RekognitionError('InternalServerError', error instanceof Error ? error.message : String(error)),
      );
    });
  });
}
