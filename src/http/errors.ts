import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HearthError } from '../errors.js';

/**
 * The one HTTP error path. Each API family keeps its clients' error shape:
 * - ollama (default): `{"error": "message"}` — what the ollama SDKs read;
 * - openai: `{"error": {"message", "type", "param", "code"}}`;
 * - anthropic: `{"type": "error", "error": {"type", "message"}}` — what the Anthropic SDKs read.
 * A route picks its family with `config: { errorShape: 'openai' }` (route plugins set it once).
 */
export type ErrorShape = 'ollama' | 'openai' | 'anthropic';

declare module 'fastify' {
  interface FastifyContextConfig {
    errorShape?: ErrorShape;
  }
}

/**
 * SQLSTATEs a request can provoke in PostgreSQL (and PGlite), as client errors. Text and jsonb
 * cannot hold NUL; catching that here covers every route that stores text, instead of each one.
 */
function fromDatabase(thrown: unknown): HearthError | null {
  // Query builders wrap the driver's error (drizzle's DrizzleQueryError): look down the causes.
  let err = thrown;
  for (let depth = 0; depth < 4 && err instanceof Error && !isSqlState((err as { code?: unknown }).code); depth++) {
    err = err.cause;
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (!isSqlState(code)) return null;
  const message = String((err as { message?: unknown }).message ?? '');
  // 22021: a NUL in text ("invalid byte sequence ... 0x00"); 22P05: \u0000 in jsonb.
  if ((code === '22021' && message.includes('0x00')) || code === '22P05') {
    return new HearthError(
      'BAD_REQUEST',
      'text in the request contains a NUL (\\u0000) character, which cannot be stored: remove it',
      {
        cause: err,
      },
    );
  }
  if (code === '53100') {
    return new HearthError('ATLAS_DB_FULL', [], { cause: err });
  }
  return null;
}

function isSqlState(code: unknown): code is string {
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

export function toHearthError(err: unknown): HearthError {
  if (err instanceof HearthError) return err;
  const db = fromDatabase(err);
  if (db) return db;
  const fe = err as Partial<FastifyError> & { message?: string };
  if (fe && typeof fe === 'object') {
    if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return new HearthError('BAD_REQUEST', 'request body is empty: send a JSON object');
    }
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return new HearthError('BAD_REQUEST', `unsupported Content-Type: ${fe.message ?? ''}`.trim(), { status: 415 });
    }
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return new HearthError('PAYLOAD_TOO_LARGE');
    }
    if (err instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return new HearthError('BAD_REQUEST', `invalid JSON in request body: ${fe.message ?? 'parse error'}`);
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return new HearthError('BAD_REQUEST', fe.message ?? 'bad request', { status: fe.statusCode });
    }
  }
  return new HearthError('INTERNAL', 'internal server error', { cause: err });
}

const OPENAI_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  503: 'server_error',
};

/** Anthropic's error types by status (its API answers 529 overloaded_error; hearth keeps 503 with that type). */
const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  503: 'overloaded_error',
  529: 'overloaded_error',
};

export function errorBody(shape: ErrorShape, err: HearthError): unknown {
  if (shape === 'anthropic') {
    const type = ANTHROPIC_TYPES[err.status] ?? (err.status >= 500 ? 'api_error' : 'invalid_request_error');
    return { type: 'error', error: { type, message: err.message } };
  }
  if (shape === 'openai') {
    const param = typeof err.details?.['param'] === 'string' ? err.details['param'] : null;
    return {
      error: {
        message: err.message,
        type: OPENAI_TYPES[err.status] ?? (err.status >= 500 ? 'server_error' : 'invalid_request_error'),
        param,
        code: err.code.toLowerCase(),
      },
    };
  }
  return { error: err.message };
}

export function sendError(request: FastifyRequest, reply: FastifyReply, err: HearthError): FastifyReply {
  const shape = request.routeOptions.config?.errorShape ?? 'ollama';
  return reply.code(err.status).type('application/json; charset=utf-8').send(errorBody(shape, err));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((raw, request, reply) => {
    const err = toHearthError(raw);
    if (err.status >= 500) request.log.error({ err: raw, code: err.code }, err.message);
    else request.log.debug({ code: err.code }, err.message);
    return sendError(request, reply, err);
  });
  app.setNotFoundHandler((request, reply) => {
    const err = new HearthError('NOT_FOUND', `${request.method} ${request.url.split('?')[0]}: no such route`);
    return sendError(request, reply, err);
  });
}
