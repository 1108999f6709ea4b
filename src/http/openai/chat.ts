import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import type { ThinkSetting, TokenLogprob } from '../../engine/types.js';
import { HearthError, isHearthError } from '../../errors.js';
import { withKnowledge } from '../../knowledge/index.js';
import { wireLogprobs } from '../logprobs.js';
import { clientGone, SseStream } from '../stream.js';
import { parseRequest } from '../validate.js';
import { inlineImageUrls } from './image-urls.js';
import { toEngineFormat, toEngineMessages, toEngineToolChoice, toEngineTools } from './messages.js';
import { invalidParam, openaiOptions, prepareModel } from './options.js';
import { finishReason, responseId, UsageCounter, unixSeconds } from './results.js';
import { type ChatCompletionBody, chatCompletionSchema } from './schemas.js';

/** Fields OpenAI honours that would change the response; hearth refuses them rather than ignore them. */
function refuseUnsupported(body: ChatCompletionBody): void {
  if (body.top_logprobs !== undefined && body.top_logprobs !== null) {
    if (body.logprobs !== true) throw invalidParam('top_logprobs', 'top_logprobs needs logprobs: true');
    if (body.top_logprobs < 0 || body.top_logprobs > 20)
      throw invalidParam('top_logprobs', `top_logprobs must be between 0 and 20, got ${body.top_logprobs}`);
  }
  if (body.modalities?.some((m) => m !== 'text')) {
    throw invalidParam('modalities', 'hearth generates text only: set modalities to ["text"] or leave it out');
  }
  if (body.audio !== undefined && body.audio !== null)
    throw invalidParam('audio', 'audio output is not supported: leave audio out');
  if (body.functions !== undefined && body.functions !== null) {
    throw invalidParam('functions', 'functions (deprecated) is not supported: send them as tools with type "function"');
  }
  if (body.function_call !== undefined && body.function_call !== null) {
    throw invalidParam('function_call', 'function_call (deprecated) is not supported: use tool_choice');
  }
  if (body.web_search_options !== undefined && body.web_search_options !== null) {
    throw invalidParam('web_search_options', 'web search is not supported: leave web_search_options out');
  }
}

const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'];

/**
 * OpenAI's `reasoning_effort` as Ollama's `think`: none turns thinking off, minimal reads as low, xhigh as high.
 * Every model accepts it (the planner drops it where the model cannot think), as Ollama does.
 */
function thinkOf(effort: string | null | undefined): ThinkSetting | undefined {
  if (effort === undefined || effort === null) return undefined;
  if (!EFFORTS.includes(effort)) {
    throw invalidParam(
      'reasoning_effort',
      `reasoning_effort must be one of ${EFFORTS.join(', ')}; got ${JSON.stringify(effort)}`,
    );
  }
  if (effort === 'none') return false;
  if (effort === 'minimal') return 'low';
  return effort === 'xhigh' ? 'high' : (effort as 'low' | 'medium' | 'high');
}

/** The engine names Ollama's `images` field; an OpenAI client sent its images inside `messages`. */
function namingMessages(err: unknown): unknown {
  if (!isHearthError(err) || err.details?.['param'] !== 'images') return err;
  return new HearthError(err.code, err.message, {
    status: err.status,
    details: { ...err.details, param: 'messages' },
    cause: err,
  });
}

/** POST /v1/chat/completions */
export async function chatCompletionRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.post('/v1/chat/completions', async (request, reply) => {
    const body = parseRequest(chatCompletionSchema, request.body);
    refuseUnsupported(body);
    await inlineImageUrls(body.messages, ctx.config.inference.fetchImageUrls);
    const messages = toEngineMessages(body.messages);
    const tools = toEngineTools(body);
    const toolChoice = toEngineToolChoice(body, tools);
    const format = toEngineFormat(body.response_format);
    const think = thinkOf(body.reasoning_effort);
    const prepared = await prepareModel(ctx, body.model, openaiOptions(body));
    // API keys have no user: only shared knowledge bases.
    const { messages: conversation, citations } = await withKnowledge(
      ctx.knowledge,
      { userId: null },
      body.knowledge,
      ctx.inference.withModelPrelude(prepared.entry, messages),
    );
    const extension = body.knowledge?.length ? { hearth: { citations } } : {};
    const signal = clientGone(reply);

    const id = responseId('chatcmpl');
    const created = unixSeconds();
    const includeUsage = body.stream === true && body.stream_options?.include_usage === true;
    const stream = body.stream ? new SseStream(request, reply) : null;
    // Streaming: the citations come first, in a chunk with no choices.
    if (stream && body.knowledge?.length) {
      stream.send({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], ...extension });
    }
    // With include_usage every chunk carries `usage: null` and one last chunk the totals, as OpenAI sends them.
    const chunk = (choices: unknown[]) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: body.model,
      choices,
      ...(includeUsage ? { usage: null } : {}),
    });
    const usage = new UsageCounter();
    const choices: unknown[] = [];
    const n = body.n ?? 1;

    try {
      // n > 1 runs the conversation n times, one after another, on the same scheduler.
      for (let index = 0; index < n; index++) {
        let roleSent = false;
        const delta = (d: Record<string, unknown>, finish: string | null = null, probs?: TokenLogprob[]) => {
          stream?.send(
            chunk([
              {
                index,
                delta: roleSent ? d : { role: 'assistant', ...d },
                logprobs: probs ? { content: wireLogprobs(probs), refusal: null } : null,
                finish_reason: finish,
              },
            ]),
          );
          roleSent = true;
        };
        const result = await ctx.engine.generate(
          await ctx.inference.chat(prepared, {
            messages: conversation,
            signal,
            tools,
            toolChoice,
            format,
            think,
            thinkUnsupported: 'ignore',
            logprobs: body.logprobs === true ? (body.top_logprobs ?? 0) : undefined,
            ...(stream
              ? {
                  onText: (text: string, probs?: TokenLogprob[]) => text && delta({ content: text }, null, probs),
                  // llama.cpp's field and Ollama's, so either kind of client finds it
                  onThinking: (text: string) => text && delta({ reasoning_content: text, reasoning: text }),
                }
              : {}),
          }),
        );
        usage.add(result, index === 0);
        const calls = body.parallel_tool_calls === false ? result.toolCalls.slice(0, 1) : result.toolCalls;
        const toolCalls = calls.map((c) => ({
          id: c.id,
          type: 'function' as const,
          function: { name: c.name, arguments: JSON.stringify(c.arguments) },
        }));
        const finish = finishReason(result, toolCalls.length);
        if (stream) {
          if (toolCalls.length) delta({ tool_calls: toolCalls.map((c, i) => ({ index: i, ...c })) });
          delta(roleSent ? {} : { content: '' }, finish);
        } else {
          choices.push({
            index,
            message: {
              role: 'assistant',
              // OpenAI answers a pure tool call with null content.
              content: toolCalls.length && result.text === '' ? null : result.text,
              ...(result.thinking ? { reasoning_content: result.thinking, reasoning: result.thinking } : {}),
              refusal: null,
              ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
            },
            logprobs: result.logprobs ? { content: wireLogprobs(result.logprobs), refusal: null } : null,
            finish_reason: finish,
          });
        }
      }
      if (!stream) {
        return {
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices,
          usage: usage.toJSON(),
          ...extension,
        };
      }
      if (includeUsage) stream.send({ ...chunk([]), usage: usage.toJSON() });
      stream.done();
      return reply;
    } catch (err) {
      if (!stream) throw namingMessages(err);
      stream.fail(namingMessages(err));
      return reply;
    }
  });
}
