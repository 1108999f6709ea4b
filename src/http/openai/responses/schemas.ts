import { z } from 'zod';

/**
 * Request bodies of OpenAI's Responses API (`POST /v1/responses`), as the
 * `openai` SDKs, the Vercel AI SDK, LangChain and LlamaIndex send them. Fields
 * hearth cannot honour are parsed so the route can refuse them by name (see
 * docs/openai-compatibility.md); OpenAI-side hints that change nothing are
 * accepted and ignored; unknown fields are ignored, as Ollama does.
 */

const inputText = z.object({ type: z.literal('input_text'), text: z.string() });
const outputText = z.object({ type: z.literal('output_text'), text: z.string() }).loose();
const refusal = z.object({ type: z.literal('refusal'), refusal: z.string() });
const inputImage = z.object({
  type: z.literal('input_image'),
  image_url: z.string().nullish(),
  file_id: z.string().nullish(),
  detail: z.string().nullish(),
});
/** Parsed so the refusal can name it; hearth has no file or audio input. */
const inputFile = z.object({ type: z.literal('input_file') }).loose();
const inputAudio = z.object({ type: z.literal('input_audio') }).loose();

export const contentPartSchema = z.discriminatedUnion('type', [
  inputText,
  outputText,
  refusal,
  inputImage,
  inputFile,
  inputAudio,
]);
export type ContentPart = z.output<typeof contentPartSchema>;

export const messageItemSchema = z.object({
  type: z.literal('message').optional(),
  id: z.string().nullish(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(contentPartSchema)]),
  status: z.string().nullish(),
});

export const functionCallItemSchema = z.object({
  type: z.literal('function_call'),
  id: z.string().nullish(),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
  status: z.string().nullish(),
});

export const functionCallOutputItemSchema = z.object({
  type: z.literal('function_call_output'),
  id: z.string().nullish(),
  call_id: z.string().min(1),
  output: z.union([z.string(), z.array(contentPartSchema)]),
  status: z.string().nullish(),
});

/**
 * An input item before its own schema is applied (by its `type`, in input.ts),
 * so a malformed item gets a message about its own fields, and an item type
 * hearth does not take (item_reference, web_search_call, ...) is refused by name.
 */
export const inputItemSchema = z.object({ type: z.string().optional() }).loose();
export type InputItem = z.output<typeof inputItemSchema>;
export type MessageItem = z.output<typeof messageItemSchema>;
export type FunctionCallItem = z.output<typeof functionCallItemSchema>;
export type FunctionCallOutputItem = z.output<typeof functionCallOutputItemSchema>;

/** OpenAI's rule for function names; the engine's function-calling grammar needs plain identifiers too. */
const functionName = z
  .string()
  .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'function names are 1-64 letters, digits, underscores or dashes');

export const functionToolSchema = z.object({
  type: z.literal('function'),
  name: functionName,
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});
/** A tool before its own schema: hosted tools (web_search, file_search, mcp, ...) are refused by name in the route. */
export const toolSchema = z.object({ type: z.string() }).loose();
export type FunctionTool = z.output<typeof functionToolSchema>;

export const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), name: z.string().min(1) }),
  z.object({ type: z.string() }).loose(),
]);

export const textFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    name: z.string().min(1),
    description: z.string().nullish(),
    schema: z.record(z.string(), z.unknown()),
    strict: z.boolean().nullish(),
  }),
]);
export type TextFormat = z.output<typeof textFormatSchema>;

export const responseCreateSchema = z.object({
  model: z.string({ error: 'model is required' }).min(1, 'model is required'),
  input: z.union([z.string(), z.array(inputItemSchema)], {
    error: 'input must be a string or an array of input items',
  }),
  instructions: z.string().nullish(),
  tools: z.array(toolSchema).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  max_tool_calls: z.number().int().min(1).nullish(),
  text: z
    .object({
      format: textFormatSchema.nullish(),
      verbosity: z.string().nullish(),
    })
    .nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  /** hearth's extension (as in chat completions): the sampling seed */
  seed: z.number().int().nullish(),
  reasoning: z
    .object({
      effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']).nullish(),
      summary: z.enum(['auto', 'concise', 'detailed']).nullish(),
      generate_summary: z.enum(['auto', 'concise', 'detailed']).nullish(),
    })
    .nullish(),
  previous_response_id: z.string().min(1).nullish(),
  store: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_obfuscation: z.boolean().nullish() }).nullish(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  // Refused when set: each asks for something hearth does not do.
  background: z.boolean().nullish(),
  conversation: z.unknown().optional(),
  prompt: z.unknown().optional(),
  top_logprobs: z.number().int().min(0).nullish(),
  // Accepted and ignored: OpenAI-side metadata, billing and caching hints that do not change the output.
  include: z.array(z.string()).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  prompt_cache_retention: z.string().nullish(),
  service_tier: z.string().nullish(),
});

export type ResponseCreateBody = z.output<typeof responseCreateSchema>;
