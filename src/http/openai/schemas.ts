import { z } from 'zod';

/**
 * Request bodies of the OpenAI API (openai-openapi, the fields clients send).
 * Every optional field is `nullish`: the SDKs and LangChain send explicit nulls.
 * Fields hearth cannot honour are parsed here and refused, naming them, in the
 * route (see docs/openai-compatibility.md); fields that only carry OpenAI-side
 * metadata are accepted and ignored, as OpenAI's own servers would not change
 * the output for them. Fields unknown to OpenAI are ignored, as Ollama does.
 */

const model = z.string({ error: 'model is required' }).min(1, 'model is required');
const stop = z.union([z.string(), z.array(z.string())]).nullish();
const streamOptions = z.object({ include_usage: z.boolean().nullish() }).nullish();

/** Sampling fields shared by chat and text completions; mapped to Ollama option names in options.ts. */
const sampling = {
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  stop,
  seed: z.number().int().nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  user: z.string().nullish(),
  stream: z.boolean().nullish(),
  stream_options: streamOptions,
};

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string().min(1), detail: z.string().nullish() }),
});
const refusalPart = z.object({ type: z.literal('refusal'), refusal: z.string() });
/** Parsed so the refusal can name them; hearth has no audio or file input. */
const audioPart = z.object({ type: z.literal('input_audio') }).loose();
const filePart = z.object({ type: z.literal('file') }).loose();

export const contentPartSchema = z.discriminatedUnion('type', [textPart, imagePart, refusalPart, audioPart, filePart]);

export const messageToolCallSchema = z.object({
  id: z.string().min(1),
  type: z.literal('function').default('function'),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPartSchema)]).nullish(),
  /** participant name: accepted, not passed to the template (as in Ollama) */
  name: z.string().nullish(),
  tool_calls: z.array(messageToolCallSchema).nullish(),
  tool_call_id: z.string().nullish(),
  refusal: z.string().nullish(),
});

/** OpenAI's rule for function names; node-llama-cpp's function-calling grammar needs plain identifiers too. */
const functionName = z
  .string()
  .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'function names are 1-64 letters, digits, underscores or dashes');

export const toolSchema = z.object({
  type: z.literal('function'),
  function: z.object({
    name: functionName,
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});

export const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string().min(1) }) }),
]);

export const responseFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.object({
      name: z.string().min(1),
      description: z.string().nullish(),
      schema: z.record(z.string(), z.unknown()).nullish(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

export const chatCompletionSchema = z.object({
  model,
  messages: z.array(chatMessageSchema).min(1, 'messages must hold at least one message'),
  ...sampling,
  max_completion_tokens: z.number().int().min(1).nullish(),
  tools: z.array(toolSchema).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: responseFormatSchema.nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().nullish(),
  // Refused unless empty or off: each asks for output hearth does not produce.
  modalities: z.array(z.string()).nullish(),
  audio: z.unknown().optional(),
  functions: z.unknown().optional(),
  function_call: z.unknown().optional(),
  reasoning_effort: z.string().nullish(),
  web_search_options: z.unknown().optional(),
  /** hearth extension: knowledge bases (names) whose retrieved chunks go into the prompt (docs/knowledge.md) */
  knowledge: z.array(z.string().min(1)).max(10).nullish(),
  // Accepted and ignored: OpenAI-side storage, billing and latency hints that do not change the output.
  store: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  service_tier: z.string().nullish(),
  prediction: z.unknown().optional(),
});

export type ChatCompletionBody = z.output<typeof chatCompletionSchema>;
export type ChatMessageBody = z.output<typeof chatMessageSchema>;

export const completionSchema = z.object({
  model,
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.number()), z.array(z.array(z.number()))], {
    error: 'prompt must be a string or an array of strings',
  }),
  ...sampling,
  suffix: z.string().nullish(),
  echo: z.boolean().nullish(),
  best_of: z.number().int().min(1).nullish(),
  logprobs: z.number().int().nullish(),
});

export type CompletionBody = z.output<typeof completionSchema>;

export const embeddingSchema = z.object({
  model,
  input: z.union([z.string(), z.array(z.string()), z.array(z.number()), z.array(z.array(z.number()))], {
    error: 'input must be a string or an array of strings',
  }),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().nullish(),
});
