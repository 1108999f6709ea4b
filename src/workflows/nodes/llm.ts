import type { ChatMessage, OutputFormat } from '../../engine/types.js';
import { HearthError } from '../../errors.js';
import { parseOptions } from '../../models/options.js';
import type { NodeDefinition, NodeRunContext } from '../types.js';

const MODEL = { type: 'STRING', default: '', tooltip: 'a model of the library (hearth model ls)' } as const;
const SAMPLING = {
  temperature: { type: 'FLOAT', default: 0.8, min: 0, max: 2, step: 0.05 },
  max_tokens: { type: 'INT', default: 256, min: 1, max: 32_768, tooltip: 'tokens generated at most (num_predict)' },
  seed: { type: 'INT', default: 0, min: 0, max: 2 ** 31 - 1, tooltip: 'fixed seed, so a cached result is the result' },
  system: { type: 'STRING', multiline: true, default: '' },
  json_schema: { type: 'STRING', multiline: true, default: '', tooltip: 'a JSON schema the answer must follow' },
  options: { type: 'JSON', tooltip: 'further Ollama options (top_k, num_ctx, ...)' },
} as const;

function format(schema: string): OutputFormat | undefined {
  if (schema.trim() === '') return undefined;
  try {
    return { schema: JSON.parse(schema) as Record<string, unknown> };
  } catch (err) {
    throw new HearthError('WORKFLOW_INVALID', `json_schema is not JSON: ${(err as Error).message}`);
  }
}

/** Every LLM node goes the one way: InferencePlanner.prepare and .chat, then the engine. */
async function chat(ctx: NodeRunContext, inputs: Record<string, unknown>, messages: ChatMessage[]) {
  const options = parseOptions({
    ...((inputs['options'] as object | undefined) ?? {}),
    temperature: inputs['temperature'],
    num_predict: inputs['max_tokens'],
    seed: inputs['seed'],
  });
  const prepared = await ctx.inference.prepare(inputs['model'] as string, options, undefined);
  const fmt = format(inputs['json_schema'] as string);
  let produced = 0;
  const max = inputs['max_tokens'] as number;
  const result = await ctx.engine.generate(
    await ctx.inference.chat(prepared, {
      signal: ctx.signal,
      messages: ctx.inference.withModelPrelude(prepared.entry, messages, (inputs['system'] as string) || undefined),
      format: fmt,
      // Text chunks are progress points; progress() throws once the prompt is interrupted, ending generation.
      onText: () => ctx.progress(Math.min(++produced, max), max),
    }),
  );
  let json: unknown = null;
  if (fmt) {
    try {
      json = JSON.parse(result.text);
    } catch {
      json = null;
    }
  }
  return { outputs: [result.text, json] };
}

function toMessages(value: unknown): ChatMessage[] {
  const list = Array.isArray(value) ? value : [value];
  return list.map((m, i) => {
    if (typeof m === 'string') return { role: 'user', content: m };
    const role = (m as { role?: unknown })?.role;
    const content = (m as { content?: unknown })?.content;
    if ((role !== 'system' && role !== 'user' && role !== 'assistant') || typeof content !== 'string') {
      throw new HearthError('WORKFLOW_INVALID', `messages[${i}] must be {role: system|user|assistant, content: text}`);
    }
    return { role, content };
  });
}

/** LLM nodes: generate, chat, embed and similarity through the local engine. */
export const llmNodes: NodeDefinition[] = [
  {
    name: 'LLMGenerate',
    displayName: 'LLM Generate',
    description: 'Answers one prompt with a local model; with a JSON schema the answer is JSON that follows it.',
    category: 'llm',
    inputs: {
      required: { model: MODEL, prompt: { type: 'STRING', multiline: true, default: '' } },
      optional: SAMPLING,
    },
    outputs: [
      { type: 'STRING', name: 'text' },
      { type: 'JSON', name: 'json' },
    ],
    run: (inputs, ctx) => chat(ctx, inputs, [{ role: 'user', content: inputs['prompt'] as string }]),
  },
  {
    name: 'LLMChat',
    displayName: 'LLM Chat',
    description: 'Continues a conversation given as JSON [{role, content}, ...] with a local model.',
    category: 'llm',
    inputs: { required: { model: MODEL, messages: { type: 'JSON' } }, optional: SAMPLING },
    outputs: [
      { type: 'STRING', name: 'text' },
      { type: 'JSON', name: 'json' },
    ],
    run: (inputs, ctx) => chat(ctx, inputs, toMessages(inputs['messages'])),
  },
  {
    name: 'LLMEmbed',
    displayName: 'Embed Text',
    description: 'An embedding vector (L2-normalised) of a text.',
    category: 'llm',
    inputs: { required: { model: MODEL, text: { type: 'STRING', multiline: true, default: '' } } },
    outputs: [{ type: 'EMBEDDING', name: 'EMBEDDING' }],
    run: async ({ model, text }, ctx) => {
      const prepared = await ctx.inference.prepare(model as string, {}, undefined);
      const result = await ctx.engine.embed(
        ctx.inference.embedding(prepared, { inputs: [text as string], signal: ctx.signal, truncate: true }),
      );
      return { outputs: [result.embeddings[0] ?? []] };
    },
  },
  {
    name: 'EmbeddingSimilarity',
    displayName: 'Similarity',
    description: 'Cosine similarity of two embeddings (-1 to 1).',
    category: 'llm',
    inputs: { required: { a: { type: 'EMBEDDING' }, b: { type: 'EMBEDDING' } } },
    outputs: [{ type: 'FLOAT', name: 'FLOAT' }],
    run: async ({ a, b }) => {
      const x = a as number[];
      const y = b as number[];
      if (x.length !== y.length) {
        throw new HearthError(
          'WORKFLOW_INVALID',
          `embeddings differ in length (${x.length} and ${y.length}): embed both with one model`,
        );
      }
      let dot = 0;
      let nx = 0;
      let ny = 0;
      for (let i = 0; i < x.length; i++) {
        dot += x[i]! * y[i]!;
        nx += x[i]! * x[i]!;
        ny += y[i]! * y[i]!;
      }
      return { outputs: [nx === 0 || ny === 0 ? 0 : dot / Math.sqrt(nx * ny)] };
    },
  },
];
