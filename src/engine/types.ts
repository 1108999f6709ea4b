/**
 * The engine's contract with the rest of hearth. The HTTP layers (Ollama,
 * OpenAI, later the UI and jobs) speak only these types; everything
 * node-llama-cpp-specific stays inside src/engine/.
 */

/** Options that decide a model instance: a request asking for different ones gets a different instance. */
export interface LoadOptions {
  /** context length per sequence (Ollama num_ctx); default 2048, capped at the model's trained context */
  numCtx: number;
  /** prompt-processing batch size (num_batch); default 512 */
  numBatch: number;
  /** layers to offload to the GPU (num_gpu): -1 = auto (as many as fit), 0 = CPU only */
  numGpu: number;
  /** CPU threads (num_thread); 0 = the engine's measured default */
  numThread: number;
  /** mmap the weights (use_mmap); default true */
  useMmap: boolean;
  /** parallel sequences sharing one context (num_parallel); default from inference.numParallel */
  numParallel: number;
}

/** Per-request sampling (Ollama `options`); each field falls back to the model's Modelfile PARAMETERs, then Ollama's defaults. */
export interface SamplingOptions {
  temperature: number; // 0.8
  topK: number; // 40
  topP: number; // 0.9
  minP: number; // 0.0
  typicalP: number; // 1.0 (accepted; llama.cpp sampler via node-llama-cpp has no typical-p: ignored, documented)
  repeatPenalty: number; // 1.1
  repeatLastN: number; // 64
  presencePenalty: number; // 0
  frequencyPenalty: number; // 0
  /** tokens to generate; -1 = until the context is full (Ollama num_predict) */
  numPredict: number;
  seed?: number;
  stop: string[];
  /** tokens of the prompt kept when the context shifts (num_keep) */
  numKeep?: number;
}

/** A model as the library hands it to the engine: identity and how to get a verified local file. */
export interface ModelSpec {
  /** normalised name, e.g. `llama3.2:latest` */
  name: string;
  /** sha256 hex of the GGUF blob: the instance cache key together with LoadOptions */
  digest: string;
  size: number;
  /** makes the blob available as a local, verified file (node cache copy) and pins it until release() */
  resolveFile(): Promise<{ path: string; release(): void }>;
  /** the vision projector (llama.cpp mmproj GGUF) of a model that sees images; part of the instance key */
  projector?: { digest: string; resolveFile(): Promise<{ path: string; release(): void }> };
}

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ToolCall {
  /** OpenAI needs ids; Ollama ignores them. Stable per call within one response. */
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** assistant turns that called tools */
  toolCalls?: ToolCall[];
  /** for role 'tool': which function's result this is */
  toolName?: string;
  /** images (base64); the engine refuses them (ENGINE_CAPABILITY) for models that cannot see */
  images?: string[];
}

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON schema of the arguments object */
  parameters?: Record<string, unknown>;
}

/** Grammar-constrained output: `json` = any JSON object; a schema object = JSON that validates against it. */
export type OutputFormat = 'json' | { schema: Record<string, unknown> };

interface RequestBase {
  model: ModelSpec;
  load: LoadOptions;
  /** ms the instance stays loaded after this request; < 0 forever; 0 = unload when done */
  keepAliveMs: number;
  /** aborted when the client goes away: generation stops and the sequence is freed at once */
  signal?: AbortSignal;
}

/** One generated token's log-probability, and the most likely alternatives at that position. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  /** UTF-8 bytes of the token (a token may hold part of a character) */
  bytes: number[];
  /** the `top` most likely tokens at this position, most likely first (empty when top is 0) */
  top: Array<{ token: string; logprob: number; bytes: number[] }>;
}

/** Log-probabilities of the generated tokens: `top` alternatives per position (0-20). Server engine only. */
export interface LogprobsRequest {
  top: number;
}

/** Whether (and how hard) a model thinks before it answers, as Ollama's `think`. */
export type ThinkSetting = boolean | 'low' | 'medium' | 'high';

export interface ChatRequest extends RequestBase {
  kind: 'chat';
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  /** 'auto' (default): the model may call a tool; 'none': never; 'required': must call one; or a function name */
  toolChoice?: 'auto' | 'none' | 'required' | { name: string };
  format?: OutputFormat;
  sampling: SamplingOptions;
  /** undefined: the model's template decides; only a model that thinks gets a value here (the planner checks) */
  think?: ThinkSetting;
  /** log-probabilities of the generated tokens (server engine) */
  logprobs?: LogprobsRequest;
  /** streamed text as it is generated (tool-call syntax is not streamed as text), with its tokens' logprobs when asked */
  onText?: (text: string, logprobs?: TokenLogprob[]) => void;
  /** streamed reasoning as it is generated (only with think) */
  onThinking?: (text: string) => void;
}

export interface CompletionRequest extends RequestBase {
  kind: 'completion';
  /** raw text, no chat template (Ollama `raw: true`, OpenAI /v1/completions) */
  prompt: string;
  /** fill-in-the-middle: text after the cursor; needs a model with infill tokens (ENGINE_CAPABILITY otherwise) */
  suffix?: string;
  format?: OutputFormat;
  sampling: SamplingOptions;
  /** log-probabilities of the generated tokens (server engine) */
  logprobs?: LogprobsRequest;
  onText?: (text: string, logprobs?: TokenLogprob[]) => void;
}

export type GenerateRequest = ChatRequest | CompletionRequest;

/** Durations are nanoseconds, as Ollama reports them. */
export interface GenerateResult {
  text: string;
  /** the model's reasoning, apart from the answer (a thinking model on the server engine) */
  thinking?: string;
  /** per generated answer token, when the request asked for logprobs */
  logprobs?: TokenLogprob[];
  toolCalls: ToolCall[];
  /** stop: end of turn or a stop sequence; length: numPredict or context exhausted; toolCalls: stopped to call tools */
  doneReason: 'stop' | 'length' | 'toolCalls';
  promptTokens: number;
  /** prompt tokens actually evaluated (fewer than promptTokens when the prompt cache hit) */
  promptTokensEvaluated: number;
  evalTokens: number;
  /** token ids of prompt + response (Ollama's deprecated `context`) */
  context?: number[];
  loadDurationNs: number;
  promptEvalDurationNs: number;
  evalDurationNs: number;
  totalDurationNs: number;
}

export interface EmbedRequest extends RequestBase {
  inputs: string[];
  /** true (default): cut inputs longer than the context; false: ENGINE_CAPABILITY/BAD_REQUEST error naming the input */
  truncate: boolean;
  /** return only the first N dimensions (renormalised); must be <= the model's */
  dimensions?: number;
}

export interface EmbedResult {
  /** L2-normalised, one per input */
  embeddings: number[][];
  promptTokens: number;
  loadDurationNs: number;
  totalDurationNs: number;
}

/** Reranking (hearth's /api/rerank, /v1/rerank): how relevant each document is to the query. */
export interface RerankRequest extends RequestBase {
  query: string;
  documents: string[];
  /** the best N only (default: all), best first */
  topN?: number;
}

export interface RerankResult {
  /** best first */
  results: Array<{ index: number; relevanceScore: number }>;
  promptTokens: number;
  loadDurationNs: number;
  totalDurationNs: number;
}

/** What `ollama ps` shows. */
export interface LoadedModel {
  name: string;
  digest: string;
  size: number;
  /** bytes of the instance in VRAM (0 on CPU) */
  sizeVram: number;
  contextLength: number;
  /** null = kept forever */
  expiresAt: Date | null;
  load: LoadOptions;
  /** sequences in use right now / total */
  activeSequences: number;
  parallel: number;
}

export interface ModelCapabilities {
  completion: boolean;
  /** the GGUF's chat template has function-calling syntax node-llama-cpp parses */
  tools: boolean;
  /** the GGUF's chat template has a thinking section (`<think>`, `enable_thinking`, `reasoning_content`) */
  thinking: boolean;
  /** fill-in-the-middle tokens present */
  insert: boolean;
  embedding: boolean;
  vision: boolean;
}
