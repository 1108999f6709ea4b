import type { AppContext } from '../../context.js';
import { HearthError, isHearthError } from '../../errors.js';
import type { PreparedRequest } from '../../models/inference.js';
import { type ModelOptions, parseOptions } from '../../models/options.js';

/** A 400 in OpenAI's shape naming the field (`param`). */
export function invalidParam(param: string, message: string): HearthError {
  return new HearthError('BAD_REQUEST', message, { details: { param } });
}

/** The sampling fields chat and text completions share. */
export interface OpenAISampling {
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  max_tokens?: number | null | undefined;
  max_completion_tokens?: number | null | undefined;
  stop?: string | string[] | null | undefined;
  seed?: number | null | undefined;
  presence_penalty?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
  logit_bias?: Record<string, number> | null | undefined;
}

/**
 * OpenAI's sampling fields under their Ollama option names, validated by the
 * same parser as Ollama's `options`. Fields left out stay unset, so the
 * model's Modelfile PARAMETERs (num_ctx, temperature, stop, ...) apply exactly
 * as they do for /api/chat; OpenAI's own defaults (temperature 1, top_p 1) do not.
 */
export function openaiOptions(body: OpenAISampling): ModelOptions {
  if (body.logit_bias && Object.keys(body.logit_bias).length > 0) {
    throw invalidParam('logit_bias', 'logit_bias is not supported: leave it out or send {}');
  }
  const raw: Record<string, unknown> = {};
  const set = (name: string, value: unknown) => {
    if (value !== undefined && value !== null) raw[name] = value;
  };
  set('temperature', body.temperature);
  set('top_p', body.top_p);
  set('num_predict', body.max_completion_tokens ?? body.max_tokens);
  set('stop', body.stop);
  set('seed', body.seed);
  set('presence_penalty', body.presence_penalty);
  set('frequency_penalty', body.frequency_penalty);
  return parseOptions(raw, 'request');
}

/** `ctx.inference.prepare` (the one path to engine options), with an unknown model naming `model`. */
export async function prepareModel(ctx: AppContext, model: string, options: ModelOptions): Promise<PreparedRequest> {
  try {
    return await ctx.inference.prepare(model, options, undefined);
  } catch (err) {
    if (isHearthError(err, 'MODEL_NOT_FOUND') && err.details?.['param'] === undefined) {
      throw new HearthError(err.code, err.message, { details: { ...err.details, param: 'model' }, cause: err });
    }
    throw err;
  }
}
