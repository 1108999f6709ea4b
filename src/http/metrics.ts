// The Fastify side of the HTTP metrics: the hook that counts requests and the /metrics route.
// (The metrics themselves, src/metrics/, know nothing of Fastify.)
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { type HttpMetrics, methodLabel, UNMATCHED_ROUTE } from '../metrics/index.js';

/**
 * Counts every request of one listener's app. Installed on the root app before any route, so it
 * sees them all; it listens for the response's `close` rather than Fastify's onResponse hook,
 * because streamed responses (NDJSON, SSE) hijack the reply and never reach onResponse.
 */
export function installHttpMetrics(app: FastifyInstance, metrics: HttpMetrics, listener: string): void {
  app.addHook('onRequest', async (request, reply) => {
    const started = process.hrtime.bigint();
    metrics.inFlight.inc({ listener });
    let counted = false;
    const count = (status: string) => {
      if (counted) return;
      counted = true;
      metrics.inFlight.dec({ listener });
      const method = methodLabel(request.method);
      const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
      metrics.requests.inc({ listener, method, route, status });
      metrics.duration.observe({ listener, method, route }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    // `finish`: the whole response was handed to the OS; `close` without it: the client left first
    reply.raw.once('finish', () => count(String(reply.raw.statusCode)));
    reply.raw.once('close', () => count('499'));
  });
}

/** GET /metrics: the Prometheus text format (route module of the `metrics` service class). */
export async function metricsRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { metrics } = opts.ctx;
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
}
