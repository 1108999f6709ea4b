/**
 * The guard in Fastify: the accept filter on the listener's server, a
 * request hook for Host and CORS on every route, and a per-service-class
 * hook for API keys. Errors are thrown as HearthErrors, so they leave through
 * the one HTTP error path (src/http/errors.ts) in each API family's shape.
 * (The guard itself, src/net/access.ts, knows nothing of Fastify.)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { ServiceClass } from '../config/index.js';
import { isHearthError } from '../errors.js';
import type { ListenerGuard, Principal } from '../net/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request was admitted as (an API key, or a loopback caller); undefined on keyless classes or without a guard. */
    principal?: Principal;
  }
}

const PREFLIGHT_METHODS = 'GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS';

/**
 * Guards a listener's app: call right after creating it, before routes are
 * registered and before `listen`, so the filter sees the first connection.
 */
export function guardListenerApp(app: FastifyInstance, guard: ListenerGuard): void {
  guard.protect(app.server);
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const decision = guard.checkRequest(request.raw);
    if (decision.allowOrigin === undefined) return;
    reply.header('access-control-allow-origin', decision.allowOrigin);
    reply.header('vary', 'Origin');
    if (decision.preflight) {
      const requested = request.headers['access-control-request-headers'];
      return reply
        .code(204)
        .header('access-control-allow-methods', PREFLIGHT_METHODS)
        .header('access-control-allow-headers', requested ?? 'Authorization, Content-Type')
        .header('access-control-max-age', '600')
        .send();
    }
  });
}

/** The hook that admits requests to one service class's routes (API keys, scopes, rate limit). */
export function serviceClassHook(guard: ListenerGuard, serviceClass: ServiceClass): onRequestAsyncHookHandler {
  return async (request, reply) => {
    try {
      const principal = await guard.authorize(request.raw, serviceClass);
      if (principal) request.principal = principal;
    } catch (err) {
      if (isHearthError(err, 'AUTH_REQUIRED')) reply.header('www-authenticate', 'Bearer realm="hearth"');
      if (isHearthError(err, 'AUTH_RATE_LIMITED')) {
        reply.header('retry-after', String(err.details?.['retryAfterSeconds'] ?? 60));
      }
      throw err;
    }
  };
}

/**
 * Wraps a route module so its routes pass the `serviceClass` check first.
 * Without a guard (an app built for `inject` tests) the module is returned as is.
 */
export function serviceClassScope<O extends Record<string, unknown>>(
  serviceClass: ServiceClass,
  routes: (app: FastifyInstance, opts: O) => Promise<void>,
  guard: ListenerGuard | undefined,
): (app: FastifyInstance, opts: O) => Promise<void> {
  if (!guard) return routes;
  return async (scope, opts) => {
    scope.addHook('onRequest', serviceClassHook(guard, serviceClass));
    await scope.register(routes, opts);
  };
}
