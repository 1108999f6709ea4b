import { z } from 'zod';

/**
 * Request bodies of Anthropic's Messages API (`POST /v1/messages`,
 * `/v1/messages/count_tokens`) as the Anthropic SDKs and Claude Code send them.
 * Content blocks and tools hearth cannot honour are parsed loosely so the
 * translation refuses them by name (docs/anthropic-compatibility.md);
 * `cache_control` and other hints are accepted and ignored.
 */

const textBlock = z.object({ type: z.literal('text'), text: z.string() }).loose();

export const imageBlockSchema = z.object({
  type: z.literal('image'),
  source: z.union([
    z.object({ type: z.literal('base64'), media_type: z.string(), data: z.string().min(1) }),
    z.object({ type: z.literal('url'), url: z.string() }),
    z.object({ type: z.string() }).loose(),
  ]),
});

export const toolUseBlockSchema = z.object({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
});

export const toolResultBlockSchema = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(z.object({ type: z.string() }).loose())]).optional(),
  is_error: z.boolean().nullish(),
});

/** Any block before its own schema is applied by type (translate.ts), so errors name the block's own fields. */
const block = z.object({ type: z.string() }).loose();
export type Block = z.output<typeof block>;

export const messageParamSchema = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(block)]),
});
export type MessageParam = z.output<typeof messageParamSchema>;

const toolName = z
  .string()
  .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'tool names are 1-64 letters, digits, underscores or dashes');

/** A client tool (`type` absent or "custom"); server tools (web_search_…, bash_…, text_editor_…) are refused by name. */
export const customToolSchema = z.object({
  type: z.literal('custom').optional(),
  name: toolName,
  description: z.string().nullish(),
  input_schema: z.record(z.string(), z.unknown()),
  cache_control: z.unknown().optional(),
});
const tool = z.object({ type: z.string().optional() }).loose();

export const toolChoiceSchema = z.object({
  type: z.enum(['auto', 'any', 'tool', 'none']),
  name: z.string().min(1).optional(),
  disable_parallel_tool_use: z.boolean().optional(),
});

export const thinkingSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('enabled'), budget_tokens: z.number().int().min(1024) }).loose(),
  z.object({ type: z.literal('adaptive') }).loose(),
  z.object({ type: z.literal('between_tools') }).loose(),
  z.object({ type: z.literal('disabled') }).loose(),
]);

/** Structured output (`output_config.format`) and the effort hint. */
export const outputConfigSchema = z.object({
  effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max']).nullish(),
  format: z.object({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) }).nullish(),
});

/** What a prompt is made of: count_tokens takes exactly this. */
const promptFields = {
  model: z.string({ error: 'model is required' }).min(1, 'model is required'),
  system: z.union([z.string(), z.array(textBlock)]).optional(),
  messages: z.array(messageParamSchema).min(1, 'messages must hold at least one message'),
  tools: z.array(tool).optional(),
  tool_choice: toolChoiceSchema.optional(),
  thinking: thinkingSchema.optional(),
};

export const countTokensSchema = z.object(promptFields);

export const messageCreateSchema = z.object({
  ...promptFields,
  max_tokens: z.number({ error: 'max_tokens is required' }).int().min(1),
  stop_sequences: z.array(z.string()).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  stream: z.boolean().optional(),
  output_config: outputConfigSchema.optional(),
  // Refused when set: each asks for something hearth does not do.
  container: z.unknown().optional(),
  mcp_servers: z.array(z.unknown()).optional(),
  // Accepted and ignored: billing, routing and metadata hints that do not change the output.
  metadata: z.object({ user_id: z.string().nullish() }).loose().optional(),
  service_tier: z.string().optional(),
  speed: z.string().nullish(),
  inference_geo: z.string().nullish(),
  cache_control: z.unknown().optional(),
});

export type MessageCreateBody = z.output<typeof messageCreateSchema>;
export type CountTokensBody = z.output<typeof countTokensSchema>;
