import { collectDefaultMetrics, Registry } from 'prom-client';

// The process's default metrics (CPU, memory, event loop lag, GC, handles) describe the one
// process, and collecting them starts process-wide monitors (an event-loop delay histogram, a GC
// observer) that prom-client never stops: so they live in one registry per process, made on first
// use, and every context's /metrics includes it. Everything hearth-specific is per context.
let processRegistry: Registry | null = null;

/** The registry of the process's default metrics (`process_*`, `nodejs_*`). */
export function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    // The event-loop delay histogram samples on a timer of this resolution, for as long as the
    // process lives once /metrics was first scraped: prom-client's 10 ms default wakes an idle
    // process 100 times a second. 100 ms still catches any stall longer than that.
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 100 });
  }
  return processRegistry;
}
