import type { FastifyInstance } from 'fastify';
import { HearthError } from '../errors.js';

/**
 * How deep a JSON body may nest. Real requests stay far below it (a tool's JSON schema, a ComfyUI
 * graph: tens of levels); past it, code that walks the value recursively (schema conversion,
 * grammar building, validation) would run out of stack and answer 500.
 */
export const MAX_JSON_DEPTH = 128;

/** Throws BAD_REQUEST when `value` nests deeper than {@link MAX_JSON_DEPTH} (checked without recursion). */
export function checkJsonDepth(value: unknown, max = MAX_JSON_DEPTH): void {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: next, depth } = stack.pop()!;
    if (next === null || typeof next !== 'object') continue;
    if (depth >= max) {
      throw new HearthError(
        'BAD_REQUEST',
        `the JSON in the request body is nested more than ${max} levels deep: flatten it`,
      );
    }
    for (const child of Array.isArray(next) ? next : Object.values(next))
      stack.push({ value: child, depth: depth + 1 });
  }
}

/**
 * Every JSON request body goes through here: Fastify's JSON parser (it refuses `__proto__`
 * poisoning), then the depth bound. Ollama parses every body as JSON whatever its Content-Type,
 * and its users rely on that (`curl -d '{...}'` sends application/x-www-form-urlencoded; `fetch`
 * with a string body sends text/plain), so hearth does the same; an empty body of another type is
 * no body.
 */
export function installJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'ignore');
  const bounded = (
    request: Parameters<typeof parse>[0],
    body: string,
    done: (err: Error | null, value?: unknown) => void,
  ) =>
    parse(request, body, (err, value) => {
      if (err) return done(err);
      try {
        checkJsonDepth(value);
      } catch (depthErr) {
        return done(depthErr as Error);
      }
      done(null, value);
    });
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    bounded(request, body as string, done),
  );
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    // No route, no body to read: a multipart POST to /v1/audio/transcriptions is a 404, not "invalid JSON".
    if (request.is404) return done(null, undefined);
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    bounded(request, text, (err, value) => {
      if (err && !(err instanceof HearthError)) (err as Error & { statusCode?: number }).statusCode = 400;
      done(err, value);
    });
  });
}
