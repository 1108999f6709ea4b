// Prometheus metrics: one registry per application context, served on `metrics` listeners (docs/metrics.md).
export type { EngineObserver, InferenceKind, InferenceRequestObserver, UnloadReason } from '../engine/observer.js';
export { EngineMetrics, type EngineReadings } from './engine.js';
export { HttpMetrics, UNMATCHED_ROUTE } from './http.js';
export { BoundedLabel, methodLabel, OTHER_LABEL } from './labels.js';
export { HearthMetrics, type HearthMetricsOptions, type MetricSources } from './metrics.js';
export { processMetricsRegistry } from './process.js';
