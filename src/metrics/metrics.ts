import { Counter, Gauge, Registry } from 'prom-client';
import { EngineMetrics, type EngineReadings } from './engine.js';
import { HttpMetrics } from './http.js';
import { KnowledgeMetrics } from './knowledge.js';
import { processMetricsRegistry } from './process.js';

/** How the metrics of one hearth context are set up. */
export interface HearthMetricsOptions {
  /** hearth's version, shown by `hearth_build_info` */
  version: string;
  /** this node's id (`node.id`), shown by `hearth_build_info` */
  nodeId: string;
  /** include the process's default metrics (CPU, memory, event loop, GC); default true */
  processMetrics?: boolean;
}

/** What the context's services show at scrape time. */
export interface MetricSources {
  /** the node cache (`ctx.node.cache`) */
  cache?: { usage(): { bytes: number; entries: number; maxBytes: number } };
  /** the engine (see EngineReadings) */
  engine?: EngineReadings;
  /** the Atlas database: `ping` is timed out after `ATLAS_PING_TIMEOUT_MS` */
  atlasDb?: { ping(timeoutMs?: number): Promise<unknown> };
  /** image generation (src/images): UNet steps and images decoded so far, the execution provider, loaded models */
  images?: { steps(): number; images(): number; provider(): string; loaded(): number };
}

/** A scrape waits at most this long for the Atlas database to answer. */
const ATLAS_PING_TIMEOUT_MS = 2_000;

/**
 * One context's metrics: its own prom-client registry (never the global default one, so two
 * nodes in one process keep their figures apart), the HTTP and engine metrics, and gauges read
 * from the context's services when scraped. Served by GET /metrics on listeners with the
 * `metrics` service class; every metric is described in docs/metrics.md.
 */
export class HearthMetrics {
  readonly registry = new Registry();
  readonly http: HttpMetrics;
  /** the engine's observer, and its scrape-time gauges */
  readonly engine: EngineMetrics;
  /** knowledge-base ingestion and retrieval */
  readonly knowledge: KnowledgeMetrics;
  private sources: MetricSources = {};
  private readonly withProcess: boolean;

  constructor(opts: HearthMetricsOptions) {
    this.withProcess = opts.processMetrics ?? true;
    const registers = [this.registry];
    new Gauge({
      name: 'hearth_build_info',
      help: 'hearth version and node id (always 1)',
      labelNames: ['version', 'node_id'],
      registers,
    }).set({ version: opts.version, node_id: opts.nodeId }, 1);
    this.http = new HttpMetrics(this.registry);
    this.engine = new EngineMetrics(this.registry);
    this.knowledge = new KnowledgeMetrics(this.registry);
    const self = this;
    new Gauge({
      name: 'hearth_node_cache_bytes',
      help: 'Bytes of Atlas blobs (models) cached on this node',
      registers,
      collect() {
        this.set(self.sources.cache?.usage().bytes ?? 0);
      },
    });
    new Gauge({
      name: 'hearth_node_cache_limit_bytes',
      help: 'The node cache budget (node.cacheMaxBytes)',
      registers,
      collect() {
        this.set(self.sources.cache?.usage().maxBytes ?? 0);
      },
    });
    new Gauge({
      name: 'hearth_node_cache_blobs',
      help: 'Blobs cached on this node',
      registers,
      collect() {
        this.set(self.sources.cache?.usage().entries ?? 0);
      },
    });
    new Counter({
      name: 'hearth_image_steps_total',
      help: 'UNet evaluations (sampling steps; a CFG step with a negative prompt counts once) run by this process',
      registers,
      collect() {
        this.reset();
        this.inc(self.sources.images?.steps() ?? 0);
      },
    });
    new Counter({
      name: 'hearth_images_total',
      help: 'Images decoded by the VAE in this process',
      registers,
      collect() {
        this.reset();
        this.inc(self.sources.images?.images() ?? 0);
      },
    });
    new Gauge({
      name: 'hearth_image_models_loaded',
      help: 'Image models loaded in ONNX Runtime on this node',
      registers,
      collect() {
        this.set(self.sources.images?.loaded() ?? 0);
      },
    });
    new Gauge({
      name: 'hearth_image_execution_provider',
      help: 'The ONNX Runtime execution provider image models run on (always 1; none before the first load)',
      labelNames: ['provider'],
      registers,
      collect() {
        this.reset();
        this.set({ provider: self.sources.images?.provider() || 'none' }, 1);
      },
    });
    new Gauge({
      name: 'hearth_atlas_database_up',
      help: `1 if the Atlas database answered a ping within ${ATLAS_PING_TIMEOUT_MS / 1000} s at scrape time, else 0`,
      registers,
      async collect() {
        const db = self.sources.atlasDb;
        if (!db) return this.set(0);
        this.set(
          await db.ping(ATLAS_PING_TIMEOUT_MS).then(
            () => 1,
            () => 0,
          ),
        );
      },
    });
  }

  /** Connects the scrape-time gauges to the context's services. */
  watch(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
    if (sources.engine) this.engine.watch(sources.engine);
  }

  /** The Prometheus text exposition of everything: what GET /metrics answers. */
  async render(): Promise<{ contentType: string; body: string }> {
    const own = await this.registry.metrics();
    const process = this.withProcess ? await processMetricsRegistry().metrics() : '';
    return {
      contentType: this.registry.contentType,
      body: `${process}${process && !process.endsWith('\n') ? '\n' : ''}${own}`,
    };
  }

  /** Stops reading the services and drops the registry's metrics. */
  close(): void {
    this.sources = {};
    this.registry.clear();
  }
}
