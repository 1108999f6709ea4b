import { HearthError } from '../../errors.js';
import { newToolCallId } from '../chat.js';
import { normalize } from '../embed.js';
import type {
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  GenerateRequest,
  GenerateResult,
  OutputFormat,
  RerankRequest,
  RerankResult,
  SamplingOptions,
  TokenLogprob,
  ToolCall,
} from '../types.js';
import { prefillCallMarker } from './forced-call.js';
import type { LlamaServerProcess } from './process.js';

/** llama-server's per-request timings (the last chunk of a stream carries them). */
interface Timings {
  cache_n?: number;
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
}

/** Ollama's sampling options in llama-server's request body (its /completion and chat extensions). */
function samplingBody(s: SamplingOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {
    temperature: s.temperature,
    top_k: s.topK,
    top_p: s.topP,
    min_p: s.minP,
    typical_p: s.typicalP,
    repeat_penalty: s.repeatPenalty,
    repeat_last_n: s.repeatLastN,
    presence_penalty: s.presencePenalty,
    frequency_penalty: s.frequencyPenalty,
    n_predict: s.numPredict,
    stop: s.stop,
    cache_prompt: true,
  };
  if (s.seed !== undefined) body['seed'] = s.seed;
  if (s.numKeep !== undefined) body['n_keep'] = s.numKeep;
  return body;
}

/** llama-server's per-token probabilities (its OpenAI `logprobs.content` and /completion `completion_probabilities`). */
interface ServerLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
  top_logprobs?: Array<{ token: string; logprob: number; bytes?: number[] | null }>;
}

function toLogprobs(entries: ServerLogprob[] | undefined, top: number): TokenLogprob[] {
  return (entries ?? []).map((e) => ({
    token: e.token,
    logprob: e.logprob,
    bytes: e.bytes ?? [...Buffer.from(e.token)],
    top: (e.top_logprobs ?? [])
      .slice(0, top)
      .map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes ?? [...Buffer.from(t.token)] })),
  }));
}

function formatBody(format: OutputFormat | undefined): Record<string, unknown> {
  if (!format) return {};
  if (format === 'json') return { json_schema: { type: 'object' } };
  return { json_schema: format.schema };
}

function chatMessage(m: ChatMessage, toolIds: Map<string, string[]>): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.images?.length ? visionContent(m) : m.content };
  if (m.toolCalls?.length) {
    out['tool_calls'] = m.toolCalls.map((c) => {
      const ids = toolIds.get(c.name) ?? [];
      ids.push(c.id);
      toolIds.set(c.name, ids);
      return { id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } };
    });
  }
  if (m.role === 'tool') {
    // the answer to the oldest open call of that function (Ollama's tool messages name the function, not the call)
    const id = m.toolName ? toolIds.get(m.toolName)?.shift() : undefined;
    if (id) out['tool_call_id'] = id;
    if (m.toolName) out['name'] = m.toolName;
  }
  return out;
}

/** A message with images as OpenAI content parts: llama-server runs each image_url data URL through the projector (mtmd). */
function visionContent(m: ChatMessage): Array<Record<string, unknown>> {
  const parts: Array<Record<string, unknown>> = (m.images ?? []).map((data) => ({
    type: 'image_url',
    image_url: { url: `data:${imageMediaType(data)};base64,${data}` },
  }));
  if (m.content !== '') parts.push({ type: 'text', text: m.content });
  return parts;
}

/** The media type of base64 image data, from its first bytes (llama.cpp decodes PNG, JPEG, GIF, BMP ... by content). */
function imageMediaType(base64: string): string {
  const head = Buffer.from(base64.slice(0, 16), 'base64');
  if (head[0] === 0xff && head[1] === 0xd8) return 'image/jpeg';
  if (head.subarray(0, 3).toString('latin1') === 'GIF') return 'image/gif';
  if (head.subarray(0, 4).toString('latin1') === 'RIFF') return 'image/webp';
  return 'image/png';
}

function chatBody(req: ChatRequest): Record<string, unknown> {
  const toolIds = new Map<string, string[]>();
  const body: Record<string, unknown> = {
    messages: req.messages.map((m) => chatMessage(m, toolIds)),
    stream: true,
    // the running token count in every chunk (chat chunks carry no other): see generateOnServer
    timings_per_token: true,
    ...samplingBody(req.sampling),
    ...formatBody(req.format),
  };
  if (req.think !== undefined) {
    // the template's own switch (Qwen 3's enable_thinking); an effort goes to the template as reasoning_effort
    body['chat_template_kwargs'] = { enable_thinking: req.think !== false };
    if (typeof req.think === 'string') body['reasoning_effort'] = req.think;
  }
  if (req.logprobs) {
    body['logprobs'] = true;
    // top_logprobs 0 sends none: one alternative at least, cut to `top` on the way back
    body['top_logprobs'] = Math.max(1, req.logprobs.top);
  }
  const tools = req.toolChoice === 'none' ? [] : (req.tools ?? []);
  if (tools.length > 0 && !req.format) {
    body['tools'] = tools.map((t) => ({
      type: 'function',
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        parameters: t.parameters ?? { type: 'object', properties: {} },
      },
    }));
    const choice = req.toolChoice;
    if (choice === 'required') body['tool_choice'] = 'required';
    else if (typeof choice === 'object') body['tool_choice'] = { type: 'function', function: { name: choice.name } };
    // a named tool: only that one is offered (llama-server takes auto/none/required)
    if (typeof choice === 'object') {
      body['tools'] = (body['tools'] as Array<{ function: { name: string } }>).filter(
        (t) => t.function.name === choice.name,
      );
      body['tool_choice'] = 'required';
    }
  }
  return body;
}

function completionBody(req: CompletionRequest): { path: string; body: Record<string, unknown> } {
  const common = {
    stream: true,
    ...samplingBody(req.sampling),
    ...formatBody(req.format),
    // n_probs 0 sends none: one alternative at least, cut to `top` on the way back
    ...(req.logprobs ? { n_probs: Math.max(1, req.logprobs.top) } : {}),
  };
  if (req.suffix !== undefined) {
    return { path: '/infill', body: { ...common, input_prefix: req.prompt, input_suffix: req.suffix, prompt: '' } };
  }
  return { path: '/completion', body: { ...common, prompt: req.prompt } };
}

interface Partial {
  text: string;
  thinking: string;
  logprobs: TokenLogprob[] | null;
  calls: Map<number, { id: string; name: string; args: string }>;
  finish: string | null;
  timings: Timings;
  firstTokenAt: bigint | null;
  started: bigint;
}

/**
 * Runs one generation on a llama-server: the request in its body, tokens
 * streamed back (text to `onText`, tool-call fragments collected), and the
 * result in hearth's contract (counts and durations from the server's timings).
 */
export async function generateOnServer(
  proc: LlamaServerProcess,
  req: GenerateRequest,
  signal: AbortSignal,
  onTokens?: (n: number) => void,
): Promise<Omit<GenerateResult, 'loadDurationNs' | 'totalDurationNs'>> {
  const state: Partial = {
    text: '',
    thinking: '',
    logprobs: req.logprobs ? [] : null,
    calls: new Map(),
    finish: null,
    timings: {},
    firstTokenAt: null,
    started: process.hrtime.bigint(),
  };
  const top = req.logprobs?.top ?? 0;
  const emit = (text: string, probs?: ServerLogprob[]) => {
    const logprobs = state.logprobs && probs ? toLogprobs(probs, top) : undefined;
    if (logprobs) state.logprobs!.push(...logprobs);
    if (text === '') return;
    state.firstTokenAt ??= process.hrtime.bigint();
    state.text += text;
    if (logprobs) req.onText?.(text, logprobs);
    else req.onText?.(text);
  };
  // Sampled tokens, from the server's running count: a token may bring no text (an end-of-generation
  // token, part of a UTF-8 character the server holds back, a tool-call fragment), and the observer's
  // time to first token and inter-token latency count tokens, as in-process.
  let counted = 0;
  const sampled = (total: number | undefined) => {
    if (total === undefined || total <= counted) return;
    onTokens?.(total - counted);
    counted = total;
  };
  if (req.kind === 'chat') {
    const body = chatBody(req);
    // a forced call: the template's call marker prefilled, so the grammar admits only a call (./forced-call.ts)
    await prefillCallMarker(proc, body);
    await proc.post('/v1/chat/completions', body, {
      signal,
      onEvent: (data) => {
        const chunk = JSON.parse(data) as {
          choices?: Array<{
            delta?: {
              content?: string | null;
              reasoning_content?: string | null;
              tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>;
            };
            finish_reason?: string | null;
            logprobs?: { content?: ServerLogprob[] | null } | null;
          }>;
          timings?: Timings;
        };
        if (chunk.timings) {
          state.timings = chunk.timings;
          sampled(chunk.timings.predicted_n);
        }
        const choice = chunk.choices?.[0];
        if (!choice) return;
        const reasoning = choice.delta?.reasoning_content;
        if (reasoning) {
          state.firstTokenAt ??= process.hrtime.bigint();
          state.thinking += reasoning;
          req.onThinking?.(reasoning);
        }
        if (choice.delta?.content) emit(choice.delta.content, choice.logprobs?.content ?? undefined);
        for (const call of choice.delta?.tool_calls ?? []) {
          const index = call.index ?? 0;
          const entry = state.calls.get(index) ?? { id: call.id ?? '', name: '', args: '' };
          if (call.id) entry.id = call.id;
          if (call.function?.name) entry.name += call.function.name;
          if (call.function?.arguments) entry.args += call.function.arguments;
          state.calls.set(index, entry);
          state.firstTokenAt ??= process.hrtime.bigint();
        }
        if (choice.finish_reason) state.finish = choice.finish_reason;
      },
    });
  } else {
    const { path, body } = completionBody(req);
    await proc.post(path, body, {
      refuse: (status) =>
        path === '/infill' && status === 501
          ? new HearthError(
              'ENGINE_CAPABILITY',
              `model "${req.model.name}" does not support insert (fill-in-the-middle): it has no infill tokens; drop suffix or use a code model with FIM tokens`,
              { details: { param: 'suffix' } },
            )
          : null,
      signal,
      onEvent: (data) => {
        const chunk = JSON.parse(data) as {
          content?: string;
          completion_probabilities?: ServerLogprob[];
          stop?: boolean;
          stop_type?: string;
          tokens_predicted?: number;
          timings?: Timings;
        };
        sampled(chunk.tokens_predicted);
        if (chunk.content || chunk.completion_probabilities?.length)
          emit(chunk.content ?? '', chunk.completion_probabilities);
        if (chunk.timings) state.timings = chunk.timings;
        if (chunk.stop) state.finish = chunk.stop_type === 'limit' ? 'length' : 'stop';
      },
    });
  }
  return result(state);
}

function result(state: Partial): Omit<GenerateResult, 'loadDurationNs' | 'totalDurationNs'> {
  const t = state.timings;
  const toolCalls: ToolCall[] = completeCalls(state).map((c) => ({
    // hearth's call ids on both engines (OpenAI's `call_` form), not llama-server's bare random ones
    id: newToolCallId(),
    name: c.name,
    arguments: parseArguments(c.name, c.args),
  }));
  const evaluated = t.prompt_n ?? 0;
  const promptEvalNs = Math.round((t.prompt_ms ?? 0) * 1e6);
  return {
    text: state.text,
    ...(state.thinking ? { thinking: state.thinking } : {}),
    ...(state.logprobs ? { logprobs: state.logprobs } : {}),
    toolCalls,
    doneReason: toolCalls.length > 0 ? 'toolCalls' : state.finish === 'length' ? 'length' : 'stop',
    promptTokens: evaluated + (t.cache_n ?? 0),
    promptTokensEvaluated: evaluated,
    evalTokens: t.predicted_n ?? 0,
    promptEvalDurationNs: promptEvalNs,
    evalDurationNs: Math.round((t.predicted_ms ?? 0) * 1e6),
  };
}

/**
 * The calls to return. A generation stopped by `num_predict` may end inside a
 * call (the grammar admits a further call after each one): such a call is left
 * out, and with none complete the answer is a plain `length` stop, as OpenAI's
 * `finish_reason: "length"` says to raise the limit.
 */
function completeCalls(state: Partial): Array<{ id: string; name: string; args: string }> {
  const calls = [...state.calls.values()];
  if (state.finish !== 'length') return calls;
  return calls.filter((c) => c.name !== '' && isJsonObject(c.args));
}

function isJsonObject(text: string): boolean {
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

function parseArguments(name: string, text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // below
  }
  throw new HearthError(
    'INTERNAL',
    `engine: the model called "${name}" with arguments that are not a JSON object: ${text.slice(0, 200)}`,
  );
}

/**
 * Embeddings of `inputs` from an embedding-mode llama-server (L2-normalised by
 * the server; cut to `dimensions` and normalised again). Inputs are tokenized
 * first: one longer than the context is refused (truncate false) or cut.
 */
export async function embedOnServer(
  proc: LlamaServerProcess,
  inputs: string[],
  opts: { dimensions?: number; truncate: boolean; contextSize: number; model: string; signal: AbortSignal },
): Promise<{ embeddings: number[][]; promptTokens: number }> {
  const limit = opts.contextSize;
  const prepared: number[][] = [];
  for (const [index, input] of inputs.entries()) {
    let answer: { tokens?: number[] } = {};
    await proc.post(
      '/tokenize',
      { content: input, add_special: true },
      {
        signal: opts.signal,
        onEvent: (data) => {
          answer = JSON.parse(data) as typeof answer;
        },
      },
    );
    const tokens = answer.tokens ?? [];
    if (tokens.length > limit && !opts.truncate) {
      throw new HearthError(
        'BAD_REQUEST',
        `input ${index} has ${tokens.length} tokens, more than the ${limit} that fit the context of model "${opts.model}": shorten it, raise num_ctx, or set truncate to true`,
        { details: { param: 'input', index, tokens: tokens.length, limit } },
      );
    }
    prepared.push(tokens.slice(0, limit));
  }
  let answer: { data?: Array<{ embedding: number[]; index: number }> } = {};
  await proc.post(
    '/v1/embeddings',
    { input: prepared, encoding_format: 'float' },
    {
      signal: opts.signal,
      onEvent: (data) => {
        answer = JSON.parse(data) as typeof answer;
      },
    },
  );
  const rows = [...(answer.data ?? [])].sort((a, b) => a.index - b.index).map((d) => d.embedding);
  return {
    embeddings: rows.map((v) => normalize(v, opts.dimensions)),
    promptTokens: prepared.reduce((n, t) => n + t.length, 0),
  };
}

/**
 * Scores each document against the query on a rerank-mode llama-server
 * (`/v1/rerank`, Jina's shape): best first, cut to `topN`.
 */
export async function rerankOnServer(
  proc: LlamaServerProcess,
  req: RerankRequest,
  signal: AbortSignal,
): Promise<Pick<RerankResult, 'results' | 'promptTokens'>> {
  let answer: {
    results?: Array<{ index: number; relevance_score: number }>;
    usage?: { prompt_tokens?: number };
  } = {};
  await proc.post(
    '/v1/rerank',
    { query: req.query, documents: req.documents, top_n: req.topN ?? req.documents.length },
    {
      signal,
      onEvent: (data) => {
        answer = JSON.parse(data) as typeof answer;
      },
    },
  );
  return {
    results: (answer.results ?? []).map((r) => ({ index: r.index, relevanceScore: r.relevance_score })),
    promptTokens: answer.usage?.prompt_tokens ?? 0,
  };
}
