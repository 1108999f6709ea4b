import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EngineObserver, InferenceKind, InferenceRequestObserver, UnloadReason } from '../engine/observer.js';
import type { LoadedModel } from '../engine/types.js';
import { BoundedLabel } from './labels.js';

/** What the engine shows at scrape time. */
export interface EngineReadings {
  /** the backend llama.cpp runs on (cpu, cuda, vulkan, metal) */
  readonly backend: string;
  loaded(): LoadedModel[];
  queueDepth(): number;
  /** VRAM of the GPU backend in bytes; absent or null on the CPU */
  vram?(): Promise<{ total: number; used: number } | null>;
}

const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5];
const QUEUE_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const LOAD_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];

/** At most this many distinct model names appear as labels; more become `other`. */
const MAX_MODEL_LABELS = 100;

const seconds = (fromNs: bigint, toNs: bigint) => Number(toNs - fromNs) / 1e9;

/** Inference and model metrics: fed by the engine through EngineObserver, read from it at scrape time. */
export class EngineMetrics implements EngineObserver {
  private readonly models = new BoundedLabel(MAX_MODEL_LABELS);
  private readonly requests: Counter<'model' | 'kind' | 'outcome'>;
  private readonly promptTokens: Counter<'model'>;
  private readonly cachedPromptTokens: Counter<'model'>;
  private readonly generatedTokens: Counter<'model'>;
  private readonly queueWait: Histogram<'model'>;
  private readonly ttft: Histogram<'model'>;
  private readonly itl: Histogram<'model'>;
  private readonly loadDuration: Histogram<'model'>;
  private readonly loadFailures: Counter<'model' | 'code'>;
  private readonly unloads: Counter<'model' | 'reason'>;
  private readonly serverRestarts: Counter<'model'>;
  private readings: EngineReadings | null = null;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'hearth_inference_requests_total',
      help: 'Generate and embed requests the engine finished, by model, kind and outcome (ok, or the error code in lower case)',
      labelNames: ['model', 'kind', 'outcome'],
      registers,
    });
    this.promptTokens = new Counter({
      name: 'hearth_inference_prompt_tokens_total',
      help: 'Prompt tokens of completed requests, by model',
      labelNames: ['model'],
      registers,
    });
    this.cachedPromptTokens = new Counter({
      name: 'hearth_inference_prompt_cached_tokens_total',
      help: 'Prompt tokens served from the prompt cache (not evaluated again), by model',
      labelNames: ['model'],
      registers,
    });
    this.generatedTokens = new Counter({
      name: 'hearth_inference_generated_tokens_total',
      help: 'Tokens generated (sampled), by model',
      labelNames: ['model'],
      registers,
    });
    this.queueWait = new Histogram({
      name: 'hearth_inference_queue_wait_seconds',
      help: 'Time from a request reaching the engine to it holding a sequence (queueing and model loading), by model',
      labelNames: ['model'],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.ttft = new Histogram({
      name: 'hearth_inference_time_to_first_token_seconds',
      help: 'Time from a request reaching the engine to its first generated token (queue, load and prompt evaluation), by model',
      labelNames: ['model'],
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.itl = new Histogram({
      name: 'hearth_inference_inter_token_latency_seconds',
      help: 'Time between successive generated tokens of a request, by model',
      labelNames: ['model'],
      buckets: ITL_BUCKETS,
      registers,
    });
    this.loadDuration = new Histogram({
      name: 'hearth_model_load_duration_seconds',
      help: 'Time to load a model instance (weights and context), by model',
      labelNames: ['model'],
      buckets: LOAD_BUCKETS,
      registers,
    });
    this.loadFailures = new Counter({
      name: 'hearth_model_load_failures_total',
      help: 'Model loads that failed, by model and error code',
      labelNames: ['model', 'code'],
      registers,
    });
    this.unloads = new Counter({
      name: 'hearth_model_unloads_total',
      help: 'Model instances unloaded, by model and reason (evicted: to make room for another model)',
      labelNames: ['model', 'reason'],
      registers,
    });

    this.serverRestarts = new Counter({
      name: 'hearth_engine_server_restarts_total',
      help: 'llama-server processes that exited while serving (the next request starts a new one), by model',
      labelNames: ['model'],
      registers,
    });

    const self = this;
    new Gauge({
      name: 'hearth_inference_queue_depth',
      help: 'Requests waiting for a sequence or a model load',
      registers,
      collect() {
        this.set(self.readings?.queueDepth() ?? 0);
      },
    });
    new Gauge({
      name: 'hearth_inference_active_sequences',
      help: 'Sequences generating (or embedding) right now, by model',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const [model, m] of self.byModel()) this.set({ model }, m.active);
      },
    });
    new Gauge({
      name: 'hearth_inference_sequence_slots',
      help: 'Parallel sequences of the loaded instances (num_parallel), by model',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const [model, m] of self.byModel()) this.set({ model }, m.slots);
      },
    });
    new Gauge({
      name: 'hearth_models_loaded',
      help: 'Model instances loaded',
      registers,
      collect() {
        this.set(self.readings?.loaded().length ?? 0);
      },
    });
    new Gauge({
      name: 'hearth_model_memory_bytes',
      help: 'Memory of the loaded instances (weights and KV cache, estimated), by model; memory="total" or "vram" (the part in GPU memory)',
      labelNames: ['model', 'memory'],
      registers,
      collect() {
        this.reset();
        for (const [model, m] of self.byModel()) {
          this.set({ model, memory: 'total' }, m.bytes);
          this.set({ model, memory: 'vram' }, m.vram);
        }
      },
    });
    new Gauge({
      name: 'hearth_engine_info',
      help: 'The backend llama.cpp runs on (always 1)',
      labelNames: ['backend'],
      registers,
      collect() {
        this.reset();
        if (self.readings) this.set({ backend: self.readings.backend }, 1);
      },
    });
    new Gauge({
      name: 'hearth_gpu_vram_bytes',
      help: 'GPU memory as the backend reports it: state="total" or "used" (absent on the CPU backend)',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        const vram = await self.readings?.vram?.().catch(() => null);
        if (!vram) return;
        this.set({ state: 'total' }, vram.total);
        this.set({ state: 'used' }, vram.used);
      },
    });
  }

  /** Where the scrape-time gauges read from (the engine, once it is open). */
  watch(readings: EngineReadings): void {
    this.readings = readings;
  }

  modelLoaded(event: { model: string; durationNs: number }): void {
    this.loadDuration.observe({ model: this.models.value(event.model) }, event.durationNs / 1e9);
  }

  /** A llama-server process of the server engine exited while serving. */
  serverCrashed(model: string): void {
    this.serverRestarts.inc({ model: this.models.value(model) });
  }

  modelLoadFailed(event: { model: string; code: string }): void {
    this.loadFailures.inc({ model: this.models.value(event.model), code: event.code.toLowerCase() });
  }

  modelUnloaded(event: { model: string; reason: UnloadReason }): void {
    this.unloads.inc({ model: this.models.value(event.model), reason: event.reason });
  }

  requestQueued(event: { model: string; kind: InferenceKind }): InferenceRequestObserver {
    const model = this.models.value(event.model);
    const labels = { model };
    const queued = process.hrtime.bigint();
    let last: bigint | null = null;
    let ended = false;
    const end = (outcome: string) => {
      if (ended) return false;
      ended = true;
      this.requests.inc({ model, kind: event.kind, outcome });
      return true;
    };
    return {
      started: () => {
        this.queueWait.observe(labels, seconds(queued, process.hrtime.bigint()));
      },
      tokens: (count) => {
        if (ended || count <= 0) return;
        const now = process.hrtime.bigint();
        if (last === null) {
          this.ttft.observe(labels, seconds(queued, now));
          // tokens that came together with the first one have no gap of their own to report
        } else {
          const gap = seconds(last, now) / count;
          for (let i = 0; i < count; i++) this.itl.observe(labels, gap);
        }
        last = now;
      },
      finished: (figures) => {
        if (!end('ok')) return;
        this.promptTokens.inc(labels, figures.promptTokens);
        this.cachedPromptTokens.inc(labels, Math.max(0, figures.promptTokens - figures.promptTokensEvaluated));
        this.generatedTokens.inc(labels, figures.generatedTokens);
      },
      failed: ({ code }) => {
        end(code.toLowerCase());
      },
    };
  }

  /** The loaded instances summed per model (several instances of one model differ only in load options). */
  private byModel(): Map<string, { active: number; slots: number; bytes: number; vram: number }> {
    const out = new Map<string, { active: number; slots: number; bytes: number; vram: number }>();
    for (const m of this.readings?.loaded() ?? []) {
      const model = this.models.value(m.name);
      const sum = out.get(model) ?? { active: 0, slots: 0, bytes: 0, vram: 0 };
      sum.active += m.activeSequences;
      sum.slots += m.parallel;
      sum.bytes += m.size;
      sum.vram += m.sizeVram;
      out.set(model, sum);
    }
    return out;
  }
}
