import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AppContext } from '../context.js';
import { methodLabel } from './labels.js';

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The label of requests no route matched: the raw URL never becomes a label. */
export const UNMATCHED_ROUTE = 'unmatched';

/** HTTP request metrics; label values are the listener, the method, the route pattern and the status. */
export class HttpMetrics {
  readonly requests: Counter<'listener' | 'method' | 'route' | 'status'>;
  readonly duration: Histogram<'listener' | 'method' | 'route'>;
  readonly inFlight: Gauge<'listener'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'hearth_http_requests_total',
      help: 'HTTP requests answered, by listener, method, route pattern and status (499: the client closed the connection first)',
      labelNames: ['listener', 'method', 'route', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'hearth_http_request_duration_seconds',
      help: 'Time from a request arriving to its response ending (a streamed response counts until its last byte), by listener, method and route pattern',
      labelNames: ['listener', 'method', 'route'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.inFlight = new Gauge({
      name: 'hearth_http_requests_in_flight',
      help: 'HTTP requests being answered right now, by listener',
      labelNames: ['listener'],
      registers,
    });
  }
}

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
