import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import type { ChatMessage, ChatRequest, ThinkSetting, ToolDefinition } from '../../engine/types.js';
import { HearthError, isHearthError } from '../../errors.js';
import type { PreparedRequest } from '../../models/inference.js';
import type { ModelOptions } from '../../models/options.js';
import { clientGone, SseStream } from '../stream.js';
import { parseRequest } from '../validate.js';
import { MessageBuilder, type MessageEvent } from './output.js';
import { type CountTokensBody, countTokensSchema, type MessageCreateBody, messageCreateSchema } from './schemas.js';
import {
  refuseUnsupported,
  samplingOptions,
  systemPrompt,
  toEngineMessages,
  toEngineToolChoice,
  toEngineTools,
} from './translate.js';

/**
 * `thinking` as Ollama's `think`: only when asked (Ollama's issue #15287 is
 * that it thinks unasked); `output_config.effort` sets the level.
 */
function thinkOf(body: MessageCreateBody): ThinkSetting | undefined {
  const type = body.thinking?.type;
  if (type === undefined) return undefined;
  if (type === 'disabled') return false;
  const effort = body.output_config?.effort;
  if (!effort) return true;
  return effort === 'low' || effort === 'medium' ? effort : 'high';
}

/** The engine's inputs of a Messages request, shared by /v1/messages and count_tokens. */
interface Prompt {
  prepared: PreparedRequest;
  messages: ChatMessage[];
  tools: ToolDefinition[] | undefined;
  toolChoice: ChatRequest['toolChoice'];
}

async function preparePrompt(ctx: AppContext, body: CountTokensBody, options: ModelOptions): Promise<Prompt> {
  const messages = toEngineMessages(body);
  const tools = toEngineTools(body);
  const toolChoice = toEngineToolChoice(body, tools);
  let prepared: PreparedRequest;
  try {
    prepared = await ctx.inference.prepare(body.model, options, undefined);
  } catch (err) {
    // Anthropic's message for an unknown model names it; hearth's says how to get one.
    if (isHearthError(err, 'MODEL_NOT_FOUND')) {
      throw new HearthError(err.code, `model: ${err.message}`, { details: { param: 'model' }, cause: err });
    }
    throw err;
  }
  return {
    prepared,
    messages: ctx.inference.withModelPrelude(prepared.entry, messages, systemPrompt(body)),
    tools,
    toolChoice,
  };
}

/**
 * Anthropic's Messages API (`/v1/messages`, service class `inference`): a
 * translation onto the one chat inference path, so it runs on whichever engine
 * serves /v1/chat/completions. Errors answer in Anthropic's shape; keys are
 * read from `x-api-key` as well as `Authorization: Bearer` (src/net).
 * See docs/anthropic-compatibility.md.
 */
export async function anthropicRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, errorShape: 'anthropic' };
  });

  app.post('/v1/messages', async (request, reply) => {
    const body = parseRequest(messageCreateSchema, request.body);
    refuseUnsupported(body);
    const prompt = await preparePrompt(ctx, body, samplingOptions(body));
    return respond(request, reply, body, async (builder, signal) => {
      const result = await ctx.engine.generate(
        await ctx.inference.chat(prompt.prepared, {
          messages: prompt.messages,
          signal,
          tools: prompt.tools,
          toolChoice: prompt.toolChoice,
          // Grammar-constrained, so the text parses against the schema.
          format: body.output_config?.format ? { schema: body.output_config.format.schema } : undefined,
          think: thinkOf(body),
          thinkUnsupported: 'ignore',
          ...(body.stream
            ? { onText: (text: string) => builder.text(text), onThinking: (text: string) => builder.thinking(text) }
            : {}),
        }),
      );
      const calls = body.tool_choice?.disable_parallel_tool_use ? result.toolCalls.slice(0, 1) : result.toolCalls;
      return builder.finish(result, calls);
    });
  });

  app.post('/v1/messages/count_tokens', async (request, reply) => {
    const body = parseRequest(countTokensSchema, request.body);
    // The engine counts the prompt as it reads it (chat template and tool definitions included), so one token is generated.
    const prompt = await preparePrompt(ctx, body, { num_predict: 1 });
    const result = await ctx.engine.generate(
      await ctx.inference.chat(prompt.prepared, {
        messages: prompt.messages,
        signal: clientGone(reply),
        tools: prompt.tools,
        toolChoice: prompt.toolChoice,
      }),
    );
    return { input_tokens: result.promptTokens };
  });
}

/** Runs one message, answering it as a JSON object or, with `stream: true`, as Anthropic's server-sent events. */
async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  body: MessageCreateBody,
  run: (builder: MessageBuilder, signal: AbortSignal) => Promise<unknown>,
): Promise<unknown> {
  if (!body.stream) return run(new MessageBuilder(body.model, null), clientGone(reply));
  // An error after the first event: `event: error` with Anthropic's error body, which the SDKs raise.
  const stream = new SseStream(request, reply, { errorShape: 'anthropic', errorEvent: 'error' });
  const builder = new MessageBuilder(body.model, (event: MessageEvent) => {
    void stream.send(event, { event: event.type });
  });
  try {
    await run(builder, stream.signal);
    stream.end();
  } catch (err) {
    stream.fail(err);
  }
  return reply;
}
