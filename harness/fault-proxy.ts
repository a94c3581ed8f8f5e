/**
 * An HTTP proxy in front of one AWS endpoint (moto's), for faults that must strike at an exact
 * point of a conversation: it forwards every call, except that when a call matches the armed
 * trigger it runs the test's fault (kill the worker, say) and drops the call unanswered.
 */
import { createServer, request, type Server } from 'node:http';
import { freePort } from './ports';

/** What the proxy sees of a call: the JSON protocol's operation (X-Amz-Target) and body. */
export interface ProxiedCall {
  operation: string;
  body: Record<string, unknown>;
}

export interface FaultProxy {
  endpoint: string;
  /** The next call for which `matches` holds runs `fault` and is never answered; once. */
  arm(matches: (call: ProxiedCall) => boolean, fault: () => Promise<void>): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  let trigger: { matches: (call: ProxiedCall) => boolean; fault: () => Promise<void> } | undefined;

  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation =
        String(incoming.headers['x-amz-target'] ?? '')
          .split('.')
          .pop() ?? '';
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        // Not the JSON protocol: never a trigger.
      }
      if (trigger?.matches({ operation, body: parsed })) {
        const { fault } = trigger;
        trigger = undefined;
        void fault().finally(() => incoming.socket.destroy());
        return;
      }
      const forwarded = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forwarded.on('error', () => outgoing.destroy());
      forwarded.end(body);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));

  return {
    endpoint: `http://127.0.0.1:${port}`,
    arm(matches, fault) {
      trigger = { matches, fault };
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
