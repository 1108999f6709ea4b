import { performance } from 'node:perf_hooks';
import { HearthError } from '../errors.js';
import type { BenchPrompt } from './workload.js';

/** The API family a server speaks. */
export type BenchApi = 'ollama' | 'openai';
/** chat: the server applies the model's chat template; completion: the prompt is sent as raw text. */
export type BenchMode = 'chat' | 'completion';

/** The endpoint under test: hearth, Ollama, llama.cpp's llama-server, vLLM, or anything speaking one of the two APIs. */
export interface BenchTarget {
  /** the server's base URL, e.g. `http://127.0.0.1:11434` (a trailing `/v1` is accepted for OpenAI servers) */
  url: string;
  api: BenchApi;
  /**
   * `chat`: /api/chat or /v1/chat/completions. `completion`: /api/generate with `raw: true` or
   * /v1/completions (no template: the closest to what llama-bench measures).
   */
  mode: BenchMode;
  /** the model name as the server knows it */
  model: string;
  /** sent as `Authorization: Bearer <key>` when set */
  apiKey?: string;
  /** sampling temperature sent with every request; the server's default when unset */
  temperature?: number;
  /**
   * Extra fields for every request: Ollama `options` (e.g. `num_ctx`, `num_thread`, `seed`), or
   * top-level body fields for OpenAI servers (e.g. vLLM's `ignore_eos`).
   */
  options?: Record<string, unknown>;
}

/** What one request measured; times are milliseconds. */
export interface RequestSample {
  ok: boolean;
  /** why it failed (status and the server's message, or the connection error) */
  error?: string;
  /** when it was sent, from the start of its level */
  sentAtMs: number;
  /** time to the first streamed text; null without streaming or when no text came */
  ttftMs: number | null;
  /** time to the end of the response */
  e2eMs: number;
  /** gaps between successive streamed chunks of text (one token each on hearth, Ollama, vLLM and llama-server) */
  itlMs: number[];
  /** prompt tokens as the server counted them; null when it does not say */
  promptTokens: number | null;
  /** generated tokens as the server counted them (the number of streamed chunks when it does not say) */
  outputTokens: number;
}

/** The path a request goes to. */
export function endpointPath(target: Pick<BenchTarget, 'api' | 'mode'>): string {
  if (target.api === 'ollama') return target.mode === 'chat' ? '/api/chat' : '/api/generate';
  return target.mode === 'chat' ? '/v1/chat/completions' : '/v1/completions';
}

/** The request URL, from a base URL given with or without a trailing `/` or `/v1`. */
export function endpointUrl(target: Pick<BenchTarget, 'url' | 'api' | 'mode'>): string {
  let base = target.url.trim().replace(/\/+$/, '');
  if (target.api === 'openai') base = base.replace(/\/v1$/, '');
  return `${base}${endpointPath(target)}`;
}

function requestBody(target: BenchTarget, prompt: BenchPrompt, stream: boolean): Record<string, unknown> {
  const messages = prompt.messages ?? [{ role: 'user', content: prompt.text }];
  const temperature = target.temperature !== undefined ? { temperature: target.temperature } : {};
  if (target.api === 'ollama') {
    const options = { ...target.options, num_predict: prompt.maxTokens, ...temperature };
    return target.mode === 'chat'
      ? { model: target.model, messages, stream, options }
      : { model: target.model, prompt: prompt.text, raw: true, stream, options };
  }
  return {
    ...target.options,
    model: target.model,
    ...(target.mode === 'chat' ? { messages } : { prompt: prompt.text }),
    max_tokens: prompt.maxTokens,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
    ...temperature,
  };
}

/** Sends one request and measures it. Never throws: a failure is a sample with `ok: false`. */
export async function sendRequest(
  target: BenchTarget,
  prompt: BenchPrompt,
  opts: {
    stream: boolean;
    /** a request still running after this long is cut off and counted as failed */
    timeoutMs: number;
    /** the time origin of `sentAtMs` (performance.now() when the level began) */
    originMs: number;
    signal?: AbortSignal;
  },
): Promise<RequestSample> {
  const url = endpointUrl(target);
  const started = performance.now();
  const sample: RequestSample = {
    ok: false,
    sentAtMs: started - opts.originMs,
    ttftMs: null,
    e2eMs: 0,
    itlMs: [],
    promptTokens: null,
    outputTokens: 0,
  };
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {}),
      },
      body: JSON.stringify(requestBody(target, prompt, opts.stream)),
      signal,
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${errorMessage(await res.text()) || res.statusText}`);
    const reader = new ResponseReader(target.api, started);
    if (opts.stream && res.body) {
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const now = performance.now();
        buffered += decoder.decode(chunk, { stream: true });
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          reader.line(buffered.slice(0, nl), now);
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf('\n');
        }
      }
      reader.line(buffered, performance.now());
    } else {
      reader.whole(await res.text());
    }
    sample.e2eMs = performance.now() - started;
    Object.assign(sample, reader.result());
    sample.ok = true;
  } catch (err) {
    sample.e2eMs = performance.now() - started;
    sample.error = describeFailure(err, url, timeout.aborted ? opts.timeoutMs : null);
  }
  return sample;
}

/** Reads a response in either API's shape, streamed (NDJSON or SSE lines) or whole. */
class ResponseReader {
  private firstAt: number | null = null;
  private lastAt = 0;
  private readonly gaps: number[] = [];
  private chunks = 0;
  private promptTokens: number | null = null;
  private outputTokens: number | null = null;

  constructor(
    private readonly api: BenchApi,
    private readonly started: number,
  ) {}

  line(raw: string, at: number): void {
    let line = raw.trim();
    if (line === '') return;
    if (this.api === 'openai') {
      // SSE: only `data:` lines carry events; comments and other fields are keep-alives
      if (!line.startsWith('data:')) return;
      line = line.slice(5).trim();
      if (line === '[DONE]') return;
    }
    const obj = parseJson(line);
    if (typeof obj['error'] !== 'undefined') throw new Error(`error in the stream: ${errorMessage(line)}`);
    if (contentOf(obj) !== '') {
      this.chunks++;
      if (this.firstAt === null) this.firstAt = at;
      else this.gaps.push(at - this.lastAt);
      this.lastAt = at;
    }
    this.counts(obj);
  }

  whole(text: string): void {
    this.counts(parseJson(text));
  }

  result(): Pick<RequestSample, 'ttftMs' | 'itlMs' | 'promptTokens' | 'outputTokens'> {
    return {
      ttftMs: this.firstAt === null ? null : this.firstAt - this.started,
      itlMs: this.gaps,
      promptTokens: this.promptTokens,
      outputTokens: this.outputTokens ?? this.chunks,
    };
  }

  private counts(obj: Record<string, unknown>): void {
    if (this.api === 'ollama') {
      if (typeof obj['prompt_eval_count'] === 'number') this.promptTokens = obj['prompt_eval_count'];
      if (typeof obj['eval_count'] === 'number') this.outputTokens = obj['eval_count'];
      return;
    }
    const usage = obj['usage'] as Record<string, unknown> | null | undefined;
    if (usage && typeof usage === 'object') {
      if (typeof usage['prompt_tokens'] === 'number') this.promptTokens = usage['prompt_tokens'];
      if (typeof usage['completion_tokens'] === 'number') this.outputTokens = usage['completion_tokens'];
    }
  }
}

/** The text a streamed event carries, in either API's shape. */
function contentOf(obj: Record<string, unknown>): string {
  const message = obj['message'] as { content?: unknown } | undefined;
  if (typeof message?.content === 'string') return message.content;
  if (typeof obj['response'] === 'string') return obj['response'];
  const choice = (obj['choices'] as Array<Record<string, unknown>> | undefined)?.[0];
  if (!choice) return '';
  const delta = choice['delta'] as { content?: unknown; reasoning_content?: unknown } | undefined;
  if (typeof delta?.content === 'string' && delta.content !== '') return delta.content;
  if (typeof delta?.reasoning_content === 'string') return delta.reasoning_content;
  return typeof choice['text'] === 'string' ? choice['text'] : '';
}

function parseJson(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`the server answered something that is not JSON: ${text.slice(0, 120)}`);
  }
  if (!value || typeof value !== 'object') throw new Error(`unexpected answer: ${text.slice(0, 120)}`);
  return value as Record<string, unknown>;
}

/** The message of an error body in either API's shape (`{"error": "..."}` or `{"error": {"message": ...}}`). */
function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: string | { message?: string }; detail?: unknown; message?: unknown };
    if (typeof body.error === 'string') return body.error;
    if (typeof body.error?.message === 'string') return body.error.message;
    if (typeof body.message === 'string') return body.message;
    if (typeof body.detail === 'string') return body.detail;
  } catch {}
  return text.trim().slice(0, 200);
}

function describeFailure(err: unknown, url: string, timedOutAfterMs: number | null): string {
  if (timedOutAfterMs !== null) {
    const limit = timedOutAfterMs < 1000 ? `${timedOutAfterMs} ms` : `${Math.round(timedOutAfterMs / 1000)} s`;
    return `no complete answer from ${url} within ${limit}`;
  }
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'AbortError') return 'stopped';
  if (e?.message === 'fetch failed' || e?.cause?.code) {
    const code = e.cause?.code ?? e.cause?.message ?? 'connection failed';
    return `cannot connect to ${url} (${code})`;
  }
  return e?.message ?? String(err);
}

/** Checks a target before a run, so a wrong flag fails at once rather than as N failed requests. */
export function checkTarget(target: BenchTarget): void {
  const fail = (message: string) => new HearthError('BENCH_OPTIONS_INVALID', [`${message}`]);
  let parsed: URL;
  try {
    parsed = new URL(target.url);
  } catch {
    throw fail(`${JSON.stringify(target.url)} is not a URL; use e.g. http://127.0.0.1:11434`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw fail(`${target.url}: use an http:// or https:// URL`);
  if (target.api !== 'ollama' && target.api !== 'openai')
    throw fail(`unknown API "${target.api}"; use ollama or openai`);
  if (target.mode !== 'chat' && target.mode !== 'completion')
    throw fail(`unknown mode "${target.mode}"; use chat or completion`);
  if (!target.model) throw fail('no model given; name one with --model');
}
