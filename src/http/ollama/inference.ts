import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { AppContext } from '../../context.js';
import type {
  ChatMessage,
  GenerateResult,
  OutputFormat,
  ThinkSetting,
  TokenLogprob,
  ToolDefinition,
} from '../../engine/types.js';
import { HearthError } from '../../errors.js';
import { withKnowledge } from '../../knowledge/index.js';
import { parseKeepAlive } from '../../models/keep-alive.js';
import { parseOptions } from '../../models/options.js';
import { wireLogprobs } from '../logprobs.js';
import { clientGone } from '../stream.js';
import { parseRequest } from '../validate.js';
import { chatSchema, embeddingsSchema, embedSchema, generateSchema, type messageSchema } from './schemas.js';
import { respond } from './stream.js';

const now = () => new Date().toISOString();

function outputFormat(format: unknown): OutputFormat | undefined {
  if (format === undefined || format === '' || format === null) return undefined;
  if (format === 'json') return 'json';
  return { schema: format as Record<string, unknown> };
}

/** Ollama's `think`: true/false or an effort; the string "false"/"" reads as off. */
function thinkOf(think: unknown): ThinkSetting | undefined {
  if (think === undefined || think === null) return undefined;
  if (think === true || think === 'low' || think === 'medium' || think === 'high') return think;
  if (think === false || think === '' || think === 'false') return false;
  return true;
}

/** Ollama's `logprobs`/`top_logprobs` as the planner's count of alternatives; undefined when not asked. */
function logprobsOf(body: { logprobs?: boolean | undefined; top_logprobs?: number | undefined }): number | undefined {
  if (body.logprobs !== true && !body.top_logprobs) return undefined;
  return body.top_logprobs ?? 0;
}

function metrics(r: GenerateResult) {
  return {
    total_duration: r.totalDurationNs,
    load_duration: r.loadDurationNs,
    prompt_eval_count: r.promptTokens,
    prompt_eval_duration: r.promptEvalDurationNs,
    eval_count: r.evalTokens,
    eval_duration: r.evalDurationNs,
  };
}

function toEngineMessages(messages: Array<z.output<typeof messageSchema>>): ChatMessage[] {
  return messages.map((m) => {
    const out: ChatMessage = { role: m.role, content: m.content };
    if (m.images?.length) out.images = m.images;
    if (m.tool_calls?.length) {
      out.toolCalls = m.tool_calls.map((c, i) => ({
        id: c.id ?? `call_${i}`,
        name: c.function.name,
        arguments: c.function.arguments,
      }));
    }
    if (m.tool_name) out.toolName = m.tool_name;
    return out;
  });
}

async function loadOrUnload(
  ctx: AppContext,
  model: string,
  keepAliveMs: number | undefined,
  options: unknown,
): Promise<{ done_reason: 'load' | 'unload'; load_duration?: number; total_duration?: number }> {
  const started = process.hrtime.bigint();
  const prepared = await ctx.inference.prepare(model, parseOptions(options), keepAliveMs);
  if (prepared.keepAliveMs === 0) {
    await ctx.engine.unload(prepared.entry.digest);
    return { done_reason: 'unload' };
  }
  const { loadDurationNs } = await ctx.engine.load(prepared.spec, prepared.load, prepared.keepAliveMs);
  return {
    done_reason: 'load',
    load_duration: loadDurationNs,
    total_duration: Number(process.hrtime.bigint() - started),
  };
}

export async function ollamaInferenceRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.post('/api/generate', async (request: FastifyRequest, reply: FastifyReply) => {
    const body = parseRequest(generateSchema, request.body);
    const keepAliveMs = parseKeepAlive(body.keep_alive);
    if (body.template) {
      throw new HearthError(
        'BAD_REQUEST',
        'template overrides are not supported: hearth uses the chat template in the GGUF; use raw: true to send a fully formatted prompt',
        {
          details: { param: 'template' },
        },
      );
    }
    if (body.prompt === '' && !body.suffix && !body.images?.length) {
      const r = await loadOrUnload(ctx, body.model, keepAliveMs, body.options);
      return { model: body.model, created_at: now(), response: '', done: true, ...r };
    }
    const prepared = await ctx.inference.prepare(body.model, parseOptions(body.options), keepAliveMs);
    const signal = clientGone(reply);
    const format = outputFormat(body.format);
    const raw = body.raw || body.suffix !== undefined;
    if (raw && body.images?.length) {
      throw new HearthError('BAD_REQUEST', 'images need the chat template: leave raw and suffix out to send images', {
        details: { param: 'images' },
      });
    }
    const user: ChatMessage = { role: 'user', content: body.prompt };
    if (body.images?.length) user.images = body.images;
    return respond(request, reply, body.stream, async (stream) => {
      // A refusal comes before the first line, so it keeps its status code.
      const logprobs = logprobsOf(body);
      const onText = stream
        ? (text: string, probs?: TokenLogprob[]) =>
            stream.write({
              model: body.model,
              created_at: now(),
              response: text,
              done: false,
              ...(probs ? { logprobs: wireLogprobs(probs) } : {}),
            })
        : undefined;
      const onThinking = stream
        ? (thinking: string) =>
            stream.write({ model: body.model, created_at: now(), response: '', thinking, done: false })
        : undefined;
      const result = await ctx.engine.generate(
        raw
          ? ctx.inference.completion(prepared, {
              prompt: body.prompt,
              suffix: body.suffix,
              signal,
              format,
              logprobs,
              onText,
            })
          : await ctx.inference.chat(prepared, {
              messages: ctx.inference.withModelPrelude(prepared.entry, [user], body.system),
              signal,
              format,
              think: thinkOf(body.think),
              logprobs,
              onText,
              onThinking,
            }),
      );
      return {
        model: body.model,
        created_at: now(),
        response: stream ? '' : result.text,
        ...(!stream && result.thinking ? { thinking: result.thinking } : {}),
        ...(!stream && result.logprobs ? { logprobs: wireLogprobs(result.logprobs) } : {}),
        done: true,
        done_reason: result.doneReason === 'length' ? 'length' : 'stop',
        ...(result.context ? { context: result.context } : {}),
        ...metrics(result),
      };
    });
  });

  app.post('/api/chat', async (request, reply) => {
    const body = parseRequest(chatSchema, request.body);
    const keepAliveMs = parseKeepAlive(body.keep_alive);
    if (body.messages.length === 0) {
      const r = await loadOrUnload(ctx, body.model, keepAliveMs, body.options);
      return { model: body.model, created_at: now(), message: { role: 'assistant', content: '' }, done: true, ...r };
    }
    const prepared = await ctx.inference.prepare(body.model, parseOptions(body.options), keepAliveMs);
    // API keys have no user: only shared knowledge bases.
    const { messages, citations } = await withKnowledge(
      ctx.knowledge,
      { userId: null },
      body.knowledge,
      ctx.inference.withModelPrelude(prepared.entry, toEngineMessages(body.messages)),
    );
    const tools: ToolDefinition[] | undefined = body.tools?.length
      ? body.tools.map((t) => ({
          name: t.function.name,
          ...(t.function.description !== undefined ? { description: t.function.description } : {}),
          ...(t.function.parameters !== undefined ? { parameters: t.function.parameters } : {}),
        }))
      : undefined;
    const signal = clientGone(reply);
    return respond(request, reply, body.stream, async (stream) => {
      const onText = stream
        ? (text: string, probs?: TokenLogprob[]) =>
            stream.write({
              model: body.model,
              created_at: now(),
              message: { role: 'assistant', content: text },
              done: false,
              ...(probs ? { logprobs: wireLogprobs(probs) } : {}),
            })
        : undefined;
      const onThinking = stream
        ? (thinking: string) =>
            stream.write({
              model: body.model,
              created_at: now(),
              message: { role: 'assistant', content: '', thinking },
              done: false,
            })
        : undefined;
      const result = await ctx.engine.generate(
        await ctx.inference.chat(prepared, {
          messages,
          signal,
          tools,
          format: outputFormat(body.format),
          think: thinkOf(body.think),
          logprobs: logprobsOf(body),
          onText,
          onThinking,
        }),
      );
      const toolCalls = result.toolCalls.map((c, index) => ({
        id: c.id,
        function: { index, name: c.name, arguments: c.arguments },
      }));
      if (stream && toolCalls.length) {
        stream.write({
          model: body.model,
          created_at: now(),
          message: { role: 'assistant', content: '', tool_calls: toolCalls },
          done: false,
        });
      }
      return {
        model: body.model,
        created_at: now(),
        message: {
          role: 'assistant',
          content: stream ? '' : result.text,
          ...(!stream && result.thinking ? { thinking: result.thinking } : {}),
          ...(!stream && toolCalls.length ? { tool_calls: toolCalls } : {}),
        },
        ...(!stream && result.logprobs ? { logprobs: wireLogprobs(result.logprobs) } : {}),
        done: true,
        done_reason: result.doneReason === 'length' ? 'length' : 'stop',
        ...metrics(result),
        ...(body.knowledge?.length ? { hearth: { citations } } : {}),
      };
    });
  });

  app.post('/api/embed', async (request, reply) => {
    const body = parseRequest(embedSchema, request.body);
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    const keepAliveMs = parseKeepAlive(body.keep_alive);
    const prepared = await ctx.inference.prepare(body.model, parseOptions(body.options), keepAliveMs);
    const result = await ctx.engine.embed(
      ctx.inference.embedding(prepared, {
        inputs,
        signal: clientGone(reply),
        truncate: body.truncate,
        dimensions: body.dimensions,
      }),
    );
    return {
      model: body.model,
      embeddings: result.embeddings,
      total_duration: result.totalDurationNs,
      load_duration: result.loadDurationNs,
      prompt_eval_count: result.promptTokens,
    };
  });

  // The legacy endpoint: one prompt, one vector.
  app.post('/api/embeddings', async (request, reply) => {
    const body = parseRequest(embeddingsSchema, request.body);
    const prepared = await ctx.inference.prepare(
      body.model,
      parseOptions(body.options),
      parseKeepAlive(body.keep_alive),
    );
    if (body.prompt === '') return { embedding: [] };
    const result = await ctx.engine.embed(
      ctx.inference.embedding(prepared, { inputs: [body.prompt], signal: clientGone(reply), truncate: true }),
    );
    return { embedding: result.embeddings[0] ?? [] };
  });
}
