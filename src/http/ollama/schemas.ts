import { z } from 'zod';

/** Request bodies of the Ollama API (api/types.go). Unknown fields are ignored, as Ollama ignores them. */

const format = z.union([z.literal('json'), z.literal(''), z.record(z.string(), z.unknown())]).optional();
const keepAlive = z.union([z.string(), z.number()]).optional().nullable();
const options = z.record(z.string(), z.unknown()).optional().nullable();

export const toolCallSchema = z.object({
  id: z.string().optional(),
  function: z.object({
    index: z.number().optional(),
    name: z.string().min(1),
    arguments: z.record(z.string(), z.unknown()).default({}),
  }),
});

export const messageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string().default(''),
  images: z.array(z.string()).optional().nullable(),
  tool_calls: z.array(toolCallSchema).optional().nullable(),
  tool_name: z.string().optional(),
  thinking: z.string().optional(),
});

export const toolSchema = z.object({
  type: z.literal('function').default('function'),
  function: z.object({
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
  }),
});

export const generateSchema = z.object({
  model: z.string({ error: 'model is required' }).min(1, 'model is required'),
  prompt: z.string().optional().default(''),
  suffix: z.string().optional(),
  system: z.string().optional(),
  template: z.string().optional(),
  context: z.array(z.number().int()).optional(),
  stream: z.boolean().optional().default(true),
  raw: z.boolean().optional().default(false),
  format,
  images: z.array(z.string()).optional().nullable(),
  options,
  keep_alive: keepAlive,
  think: z.union([z.boolean(), z.string()]).optional(),
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(20).optional(),
});

export const chatSchema = z.object({
  model: z.string({ error: 'model is required' }).min(1, 'model is required'),
  messages: z.array(messageSchema).optional().default([]),
  tools: z.array(toolSchema).optional().nullable(),
  format,
  options,
  stream: z.boolean().optional().default(true),
  keep_alive: keepAlive,
  think: z.union([z.boolean(), z.string()]).optional(),
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(20).optional(),
  /** hearth extension: knowledge bases (names) whose retrieved chunks go into the prompt (docs/knowledge.md) */
  knowledge: z.array(z.string().min(1)).max(10).optional(),
});

export const embedSchema = z.object({
  model: z.string({ error: 'model is required' }).min(1, 'model is required'),
  input: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .default([]),
  truncate: z.boolean().optional().default(true),
  dimensions: z.number().int().positive().optional(),
  options,
  keep_alive: keepAlive,
});

export const embeddingsSchema = z.object({
  model: z.string({ error: 'model is required' }).min(1, 'model is required'),
  prompt: z.string().optional().default(''),
  options,
  keep_alive: keepAlive,
});

/** Ollama accepts `model` and the older `name` for these. */
const modelOrName = z
  .object({ model: z.string().optional(), name: z.string().optional() })
  .refine((b) => !!(b.model || b.name), {
    message: 'model is required',
    path: ['model'],
  });

export const showSchema = z.intersection(modelOrName, z.object({ verbose: z.boolean().optional() }));
export const deleteSchema = modelOrName;
export const copySchema = z.object({
  source: z.string().min(1, 'source is required'),
  destination: z.string().min(1, 'destination is required'),
});
export const pullSchema = z.intersection(
  modelOrName,
  z.object({ insecure: z.boolean().optional(), stream: z.boolean().optional().default(true) }),
);

export const createSchema = z.intersection(
  modelOrName,
  z.object({
    from: z.string().optional(),
    files: z.record(z.string(), z.string()).optional(),
    adapters: z.record(z.string(), z.string()).optional(),
    template: z.string().optional(),
    license: z.union([z.string(), z.array(z.string())]).optional(),
    system: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })).optional(),
    quantize: z.string().optional(),
    stream: z.boolean().optional().default(true),
    /** Ollama before 0.5 sent the Modelfile text itself */
    modelfile: z.string().optional(),
  }),
);
