import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import type { TokenLogprob } from '../../engine/types.js';
import { clientGone, SseStream } from '../stream.js';
import { parseRequest } from '../validate.js';
import { invalidParam, openaiOptions, prepareModel } from './options.js';
import { finishReason, responseId, UsageCounter, unixSeconds } from './results.js';
import { type CompletionBody, completionSchema } from './schemas.js';

/** The prompts of a request: text only (there is no detokenizer on this path). */
function promptsOf(body: CompletionBody): string[] {
  const { prompt } = body;
  if (typeof prompt === 'string') return [prompt];
  if (prompt.length === 0) throw invalidParam('prompt', 'prompt must not be an empty array: send a string or strings');
  if (prompt.every((p) => typeof p === 'string')) return prompt as string[];
  throw invalidParam('prompt', 'token-array prompts are not supported: send the prompt as text');
}

/** The legacy completions shape of logprobs: parallel arrays, alternatives as {token: logprob}, offsets into the text. */
function legacyLogprobs(entries: TokenLogprob[], offset: number) {
  const text_offset: number[] = [];
  let at = offset;
  for (const e of entries) {
    text_offset.push(at);
    at += e.token.length;
  }
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

/** POST /v1/completions: raw text completion (no chat template), fill-in-the-middle with `suffix`. */
export async function completionRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.post('/v1/completions', async (request, reply) => {
    const body = parseRequest(completionSchema, request.body);
    const prompts = promptsOf(body);
    const logprobs = body.logprobs ?? undefined;
    if (logprobs !== undefined && (logprobs < 0 || logprobs > 5)) {
      throw invalidParam('logprobs', `logprobs must be between 0 and 5, got ${logprobs}`);
    }
    const n = body.n ?? 1;
    if (body.best_of !== undefined && body.best_of !== null && body.best_of !== n) {
      throw invalidParam('best_of', 'best_of is not supported: leave it out (or set it equal to n)');
    }
    const suffix = body.suffix ? body.suffix : undefined;
    const prepared = await prepareModel(ctx, body.model, openaiOptions(body));
    const signal = clientGone(reply);

    const id = responseId('cmpl');
    const created = unixSeconds();
    const includeUsage = body.stream === true && body.stream_options?.include_usage === true;
    const stream = body.stream ? new SseStream(request, reply) : null;
    const chunk = (choices: unknown[]) => ({
      id,
      object: 'text_completion',
      created,
      model: body.model,
      choices,
      ...(includeUsage ? { usage: null } : {}),
    });
    const usage = new UsageCounter();
    const choices: unknown[] = [];

    try {
      // One choice per prompt and n, prompt-major, as OpenAI numbers them; generated one after another.
      for (const [p, prompt] of prompts.entries()) {
        for (let k = 0; k < n; k++) {
          const index = p * n + k;
          // The echoed prompt rides on the first chunk, so an engine refusal still gets its status code.
          let echoPending = body.echo === true;
          let streamed = echoPending ? prompt.length : 0;
          const text = (t: string, finish: string | null = null, probs?: TokenLogprob[]) => {
            const out = echoPending ? prompt + t : t;
            const lp = probs ? legacyLogprobs(probs, streamed) : null;
            streamed += t.length;
            echoPending = false;
            stream?.send(chunk([{ text: out, index, logprobs: lp, finish_reason: finish }]));
          };
          const result = await ctx.engine.generate(
            ctx.inference.completion(prepared, {
              prompt,
              suffix,
              signal,
              logprobs,
              ...(stream
                ? { onText: (t: string, probs?: TokenLogprob[]) => (t ? text(t, null, probs) : undefined) }
                : {}),
            }),
          );
          usage.add(result, k === 0);
          const finish = finishReason(result, 0);
          if (stream) text('', finish);
          else {
            choices.push({
              text: body.echo ? prompt + result.text : result.text,
              index,
              logprobs: result.logprobs ? legacyLogprobs(result.logprobs, body.echo ? prompt.length : 0) : null,
              finish_reason: finish,
            });
          }
        }
      }
      if (!stream) return { id, object: 'text_completion', created, model: body.model, choices, usage: usage.toJSON() };
      if (includeUsage) stream.send({ ...chunk([]), usage: usage.toJSON() });
      stream.done();
      return reply;
    } catch (err) {
      if (!stream) throw err;
      stream.fail(err);
      return reply;
    }
  });
}
