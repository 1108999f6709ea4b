import { performance } from 'node:perf_hooks';
import { HearthError } from '../errors.js';
import { HEARTH_VERSION } from '../version.js';
import { type Distribution, distribution } from './stats.js';
import { type BenchTarget, checkTarget, endpointUrl, type RequestSample, sendRequest } from './target.js';
import type { Workload, WorkloadDescription } from './workload.js';

/** How `runBench` loads a server. */
export interface BenchOptions {
  target: BenchTarget;
  workload: Workload;
  /** concurrency levels, run one after another: each keeps that many requests in flight (a closed loop) */
  concurrency: number[];
  /** requests per level; ignored when `durationMs` is set */
  requests?: number;
  /** run each level this long instead of a request count: new requests start until then, running ones finish */
  durationMs?: number;
  /** stream the responses (needed for TTFT, TPOT and ITL) */
  stream: boolean;
  /**
   * Requests sent one at a time before the first level and not measured: they load the model, open
   * connections, size synthetic prompts to the server's tokenizer, and fail the run at once (with the
   * server's message) when the endpoint or model is wrong.
   */
  warmup: number;
  /** a request running longer is cut off and counted as failed */
  timeoutMs: number;
  /** stops the run: requests in flight are cut off and the levels finished so far are reported */
  signal?: AbortSignal;
  /** called after every request */
  onProgress?(progress: BenchProgress): void;
}

export interface BenchProgress {
  concurrency: number;
  completed: number;
  failed: number;
  /** requests in this level, or null in duration mode */
  total: number | null;
}

/** One concurrency level's figures. Latencies are milliseconds; throughputs are per second of the level's wall time. */
export interface LevelResult {
  concurrency: number;
  /** requests that got a complete answer */
  completed: number;
  failed: number;
  /** from the first request sent to the last answer, seconds */
  durationS: number;
  /** completed requests per second */
  requestThroughput: number;
  /** generated tokens per second, all streams together */
  outputThroughput: number;
  /** prompt + generated tokens per second */
  totalThroughput: number;
  /** prompt tokens of the completed requests, as the server counted them */
  promptTokens: number;
  /** generated tokens of the completed requests */
  outputTokens: number;
  /** time to first token */
  ttftMs: Distribution | null;
  /** time per output token after the first: (end-to-end - TTFT) / (tokens - 1), per request */
  tpotMs: Distribution | null;
  /** inter-token latency: every gap between streamed tokens, over all requests */
  itlMs: Distribution | null;
  /** end-to-end latency */
  e2eMs: Distribution | null;
  /** the distinct failures, most frequent first (at most 5) */
  errors: Array<{ message: string; count: number }>;
}

/** A run's report; `hearth bench --json` prints it and `--compare` reads it back. */
export interface BenchReport {
  format: typeof BENCH_REPORT_FORMAT;
  /** ISO time the run started */
  startedAt: string;
  /** the hearth version that measured */
  hearthVersion: string;
  /** a name for the run in comparisons (default: the target's URL and model) */
  label: string;
  target: { url: string; api: BenchTarget['api']; mode: BenchTarget['mode']; model: string; endpoint: string };
  workload: WorkloadDescription;
  stream: boolean;
  warmup: number;
  /** requests per level, or null in duration mode */
  requestsPerLevel: number | null;
  /** seconds per level in duration mode, else null */
  durationPerLevelS: number | null;
  levels: LevelResult[];
}

export const BENCH_REPORT_FORMAT = 'hearth-bench/1';

/** Runs the warm-up, then each concurrency level in turn, and reports them. */
export async function runBench(opts: BenchOptions, label?: string): Promise<BenchReport> {
  checkTarget(opts.target);
  checkLoadShape(opts);
  const startedAt = new Date();
  const endpoint = endpointUrl(opts.target);
  for (let i = 0; i < opts.warmup && !opts.signal?.aborted; i++) {
    const prompt = opts.workload.warmupPrompt(i);
    const sample = await sendRequest(opts.target, prompt, {
      stream: opts.stream,
      timeoutMs: opts.timeoutMs,
      originMs: performance.now(),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (!sample.ok) {
      throw new HearthError('BENCH_TARGET_FAILED', [
        `the warm-up request to ${endpoint} (model "${opts.target.model}") failed: ${sample.error}: check --url, --api and --model`,
      ]);
    }
    if (sample.promptTokens !== null) opts.workload.calibrate(prompt, sample.promptTokens);
  }
  const levels: LevelResult[] = [];
  let nextPrompt = 0;
  for (const concurrency of opts.concurrency) {
    if (opts.signal?.aborted) break;
    const samples = await runLevel(opts, concurrency, () => nextPrompt++);
    levels.push(summarizeLevel(concurrency, samples));
  }
  return {
    format: BENCH_REPORT_FORMAT,
    startedAt: startedAt.toISOString(),
    hearthVersion: HEARTH_VERSION,
    label: label ?? `${opts.target.model} @ ${opts.target.url}`,
    target: {
      url: opts.target.url,
      api: opts.target.api,
      mode: opts.target.mode,
      model: opts.target.model,
      endpoint,
    },
    workload: opts.workload.description,
    stream: opts.stream,
    warmup: opts.warmup,
    requestsPerLevel: opts.durationMs === undefined ? (opts.requests ?? null) : null,
    durationPerLevelS: opts.durationMs === undefined ? null : opts.durationMs / 1000,
    levels,
  };
}

function checkLoadShape(opts: BenchOptions): void {
  const fail = (message: string) => new HearthError('BENCH_OPTIONS_INVALID', [`${message}`]);
  if (opts.concurrency.length === 0) throw fail('no concurrency level given; e.g. --concurrency 1,2,4');
  for (const c of opts.concurrency) {
    if (!Number.isInteger(c) || c < 1 || c > 4096) throw fail(`concurrency ${c} is not a whole number from 1 to 4096`);
  }
  if (opts.durationMs === undefined) {
    if (!Number.isInteger(opts.requests) || (opts.requests ?? 0) < 1) {
      throw fail(`the request count must be a whole number >= 1, got ${String(opts.requests)}`);
    }
  } else if (!(opts.durationMs > 0)) {
    throw fail('the duration must be longer than 0');
  }
  if (!Number.isInteger(opts.warmup) || opts.warmup < 0)
    throw fail(`warm-up must be a whole number >= 0, got ${opts.warmup}`);
  if (!(opts.timeoutMs > 0)) throw fail('the request timeout must be longer than 0');
}

/** `concurrency` workers, each sending its next request as soon as its last one is answered. */
async function runLevel(opts: BenchOptions, concurrency: number, promptIndex: () => number): Promise<LevelSamples> {
  const origin = performance.now();
  const deadline = opts.durationMs === undefined ? null : origin + opts.durationMs;
  const total = deadline === null ? (opts.requests ?? 0) : null;
  const samples: RequestSample[] = [];
  let started = 0;
  let failed = 0;
  const more = () =>
    !opts.signal?.aborted && (deadline === null ? started < (total ?? 0) : performance.now() < deadline);
  const worker = async () => {
    while (more()) {
      started++;
      const sample = await sendRequest(opts.target, opts.workload.prompt(promptIndex()), {
        stream: opts.stream,
        timeoutMs: opts.timeoutMs,
        originMs: origin,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      samples.push(sample);
      if (!sample.ok) failed++;
      opts.onProgress?.({ concurrency, completed: samples.length - failed, failed, total });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { samples, wallMs: performance.now() - origin };
}

interface LevelSamples {
  samples: RequestSample[];
  wallMs: number;
}

/** Turns a level's samples into its figures (exported for tests). */
export function summarizeLevel(concurrency: number, { samples, wallMs }: LevelSamples): LevelResult {
  const ok = samples.filter((s) => s.ok);
  const promptTokens = ok.reduce((n, s) => n + (s.promptTokens ?? 0), 0);
  const outputTokens = ok.reduce((n, s) => n + s.outputTokens, 0);
  const seconds = wallMs / 1000;
  const perSecond = (n: number) => (seconds > 0 ? n / seconds : 0);
  const tpot = ok
    .filter((s) => s.ttftMs !== null && s.outputTokens > 1)
    .map((s) => (s.e2eMs - s.ttftMs!) / (s.outputTokens - 1));
  const errors = new Map<string, number>();
  for (const s of samples) if (!s.ok) errors.set(s.error ?? 'unknown', (errors.get(s.error ?? 'unknown') ?? 0) + 1);
  return {
    concurrency,
    completed: ok.length,
    failed: samples.length - ok.length,
    durationS: seconds,
    requestThroughput: perSecond(ok.length),
    outputThroughput: perSecond(outputTokens),
    totalThroughput: perSecond(promptTokens + outputTokens),
    promptTokens,
    outputTokens,
    ttftMs: distribution(ok.flatMap((s) => (s.ttftMs === null ? [] : [s.ttftMs]))),
    tpotMs: distribution(tpot),
    itlMs: distribution(ok.flatMap((s) => s.itlMs)),
    e2eMs: distribution(ok.map((s) => s.e2eMs)),
    errors: [...errors.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([message, count]) => ({ message, count })),
  };
}
