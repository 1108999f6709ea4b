import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

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
