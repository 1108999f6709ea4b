import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../../context.js';
import type { ThinkSetting } from '../../../engine/types.js';
import { HearthError } from '../../../errors.js';
import type { ResponseCaller } from '../../../responses/store.js';
import { errorBody, toHearthError } from '../../errors.js';
import { clientGone, SseStream } from '../../stream.js';
import { parseRequest } from '../../validate.js';
import { openaiOptions, prepareModel } from '../options.js';
import { itemId, unixSeconds } from '../results.js';
import {
  type ConversationItem,
  inputItems,
  refuseUnsupported,
  toEngineFormat,
  toEngineMessages,
  toEngineToolChoice,
  toEngineTools,
} from './input.js';
import { ResponseBuilder, type ResponseEvent, type ResponseObject } from './output.js';
import { type MessageItem, type ResponseCreateBody, responseCreateSchema } from './schemas.js';

/** Who may read a stored response: the API key that made it; loopback callers (and keyless test apps) read all. */
export function responseCaller(request: FastifyRequest): ResponseCaller {
  const principal = request.principal;
  return { key: principal?.kind === 'key' ? principal.key.id : null };
}

function notFound(id: string, param?: string): HearthError {
  return new HearthError('RESPONSE_NOT_FOUND', [id], param ? { details: { param } } : undefined);
}

/** `reasoning.effort` as Ollama's `think`: none/minimal turn thinking off, the others set its level. */
function thinkOf(body: ResponseCreateBody): ThinkSetting | undefined {
  const effort = body.reasoning?.effort;
  if (!effort) return undefined;
  if (effort === 'none' || effort === 'minimal') return false;
  return effort === 'xhigh' ? 'high' : effort;
}

/** The response object before any output: what response.created carries. */
function initialResponse(body: ResponseCreateBody, prepared: { temperature: number; topP: number }): ResponseObject {
  return {
    id: itemId('resp'),
    object: 'response',
    created_at: unixSeconds(),
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model: body.model,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    service_tier: 'default',
    store: body.store ?? true,
    temperature: prepared.temperature,
    text: { format: body.text?.format ?? { type: 'text' }, verbosity: body.text?.verbosity ?? 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: (body.tools ?? []).map((t) => ({ strict: null, description: null, parameters: null, ...t })),
    top_logprobs: 0,
    top_p: prepared.topP,
    truncation: body.truncation ?? 'disabled',
    usage: null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

/**
 * OpenAI's Responses API (`/v1/responses`): a translation onto the one
 * inference path. The items become the same engine chat request that
 * /v1/chat/completions makes; the result is shaped as a response object (and,
 * streamed, as typed events). Stored responses live on Atlas (src/responses),
 * so `previous_response_id` works on every node and across restarts.
 */
export async function responsesRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.post('/v1/responses', async (request, reply) => {
    const body = parseRequest(responseCreateSchema, request.body);
    refuseUnsupported(body);
    const caller = responseCaller(request);
    let history: ConversationItem[] = [];
    if (body.previous_response_id) {
      const previous = await ctx.responses.get(body.previous_response_id, caller);
      if (!previous) throw notFound(body.previous_response_id, 'previous_response_id');
      history = previous.conversation as ConversationItem[];
    }
    const input = inputItems(body);
    const messages = toEngineMessages([...history, ...input]);
    const tools = toEngineTools(body);
    const toolChoice = toEngineToolChoice(body, tools);
    const format = toEngineFormat(body);
    const prepared = await prepareModel(
      ctx,
      body.model,
      openaiOptions({
        temperature: body.temperature,
        top_p: body.top_p,
        max_tokens: body.max_output_tokens,
        seed: body.seed,
      }),
    );
    // `instructions` apply to this response only: a chained one does not inherit them (as OpenAI).
    const conversation = ctx.inference.withModelPrelude(prepared.entry, messages, body.instructions ?? undefined);
    const response = initialResponse(body, {
      temperature: prepared.sampling.temperature,
      topP: prepared.sampling.topP,
    });
    return generate(request, reply, body, response, async (builder, signal) => {
      const result = await ctx.engine.generate(
        await ctx.inference.chat(prepared, {
          messages: conversation,
          signal,
          tools,
          toolChoice,
          format,
          think: thinkOf(body),
          thinkUnsupported: 'ignore',
          ...(body.stream
            ? { onText: (text: string) => builder.text(text), onThinking: (text: string) => builder.thinking(text) }
            : {}),
        }),
      );
      let calls = body.parallel_tool_calls === false ? result.toolCalls.slice(0, 1) : result.toolCalls;
      if (body.max_tool_calls) calls = calls.slice(0, body.max_tool_calls);
      const final = builder.finish(result, calls);
      if (body.store !== false) {
        // On Atlas before the client hears of it (invariant 1): a chained request may land on another node.
        await ctx.responses.save({
          id: final.id,
          owner: caller.key,
          model: body.model,
          response: final,
          conversation: [...history, ...input, ...final.output],
        });
      }
      builder.complete();
      return final;
    });
  });

  app.get('/v1/responses/:id', async (request) => {
    const { id } = request.params as { id: string };
    const stored = await ctx.responses.get(id, responseCaller(request));
    if (!stored) throw notFound(id);
    return stored.response;
  });

  app.delete('/v1/responses/:id', async (request) => {
    const { id } = request.params as { id: string };
    if (!(await ctx.responses.delete(id, responseCaller(request)))) throw notFound(id);
    return { id, object: 'response', deleted: true };
  });

  app.get('/v1/responses/:id/input_items', async (request) => {
    const { id } = request.params as { id: string };
    const query = parseRequest(inputItemsQuerySchema, request.query ?? {}, 'query');
    const stored = await ctx.responses.get(id, responseCaller(request));
    if (!stored) throw notFound(id);
    const outputs = Array.isArray(stored.response['output']) ? stored.response['output'].length : 0;
    const items = listedItems(id, stored.conversation.slice(0, stored.conversation.length - outputs));
    // Newest first unless asked otherwise, as OpenAI lists them.
    if (query.order !== 'asc') items.reverse();
    const start = query.after ? items.findIndex((item) => item.id === query.after) + 1 : 0;
    const limit = query.limit ?? 20;
    const data = items.slice(start, start + limit);
    return {
      object: 'list',
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: start + limit < items.length,
    };
  });
}

const inputItemsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).optional(),
  order: z.enum(['asc', 'desc']).optional(),
  after: z.string().optional(),
  include: z.unknown().optional(),
});

/**
 * The input items of a stored response as OpenAI lists them: each with an id
 * (the client's, or one derived from the response id and the item's place, so
 * it is the same on every call) and string content as an `input_text` part.
 */
function listedItems(responseId: string, conversation: unknown[]): Array<{ id: string } & Record<string, unknown>> {
  return (conversation as ConversationItem[]).map((item, i) => {
    const prefix = item.type === 'message' ? 'msg' : item.type === 'reasoning' ? 'rs' : 'fc';
    const derived = `${prefix}_${createHash('sha256').update(`${responseId}:${i}`).digest('hex').slice(0, 32)}`;
    const id = typeof item.id === 'string' && item.id ? item.id : derived;
    if (item.type !== 'message') return { ...item, id };
    const m = item as MessageItem & { type: 'message' };
    const partType = m.role === 'assistant' ? 'output_text' : 'input_text';
    const content = typeof m.content === 'string' ? [{ type: partType, text: m.content }] : m.content;
    return { ...m, id, content, status: m.status ?? 'completed' };
  });
}

/** Runs one response, answering it as a JSON object or, with `stream: true`, as typed server-sent events. */
async function generate(
  request: FastifyRequest,
  reply: FastifyReply,
  body: ResponseCreateBody,
  response: ResponseObject,
  run: (builder: ResponseBuilder, signal: AbortSignal) => Promise<ResponseObject>,
): Promise<unknown> {
  if (!body.stream) return run(new ResponseBuilder(response, null), clientGone(reply));
  const stream = new SseStream(request, reply);
  let sequence = 0;
  // Each event named by its type and numbered, as OpenAI's typed stream.
  const builder = new ResponseBuilder(response, (event: ResponseEvent) => {
    void stream.send({ ...event, sequence_number: sequence++ }, { event: event.type });
  });
  try {
    await run(builder, stream.signal);
  } catch (err) {
    if (!stream.hasStarted) throw err;
    const he = toHearthError(err);
    if (he.status >= 500) request.log.error({ err }, he.message);
    builder.fail((errorBody('openai', he) as { error: { message: string; param: unknown; code: string } }).error);
  }
  stream.end();
  return reply;
}
