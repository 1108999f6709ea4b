import Fastify, { type FastifyInstance } from 'fastify';
import { parseListenAddress, type ServiceClass } from '../config/index.js';
import type { AppContext } from '../context.js';
import { HearthError } from '../errors.js';
import { AccessControl, assertExposureAllowed, type ListenerGuard } from '../net/index.js';
import { adminKeyRoutes } from './admin/keys.js';
import { anthropicRoutes } from './anthropic/index.js';
import { installJsonBodies } from './body.js';
import { comfyRoutes } from './comfy/routes.js';
import { coreRoutes } from './core/routes.js';
import { installErrorHandling } from './errors.js';
import { guardListenerApp, serviceClassScope } from './guard.js';
import { fileRoutes } from './jobs/files.js';
import { jobRoutes } from './jobs/routes.js';
import { knowledgeApiRoutes } from './knowledge/routes.js';
import { installHttpMetrics, metricsRoutes } from './metrics.js';
import { ollamaImageRoutes } from './ollama/images.js';
import { ollamaInferenceRoutes } from './ollama/inference.js';
import { ollamaLibraryRoutes, ollamaManageRoutes } from './ollama/models.js';
import { openaiRoutes } from './openai/index.js';
import { ollamaRerankRoutes } from './rerank.js';
import { UnreadBodies } from './shutdown.js';
import { uiApiRoutes } from './ui/api.js';
import { uiAppRoutes } from './ui/app.js';

export interface HttpAppOptions {
  /** listener name, for logs */
  listener: string;
  /** service classes this listener serves; routes of other classes answer 404 here */
  serves: readonly ServiceClass[];
  /** the listener's access control (zones at accept, Host/CORS, API keys); absent in apps built for `inject` tests */
  guard?: ListenerGuard;
  /** where responses sent before their request body was read are noted, so shutdown can cut them */
  unreadBodies?: UnreadBodies;
  /** called for every route as it is added (the fuzz suite derives its route list from it) */
  onRoute?: (route: { method: string | string[]; url: string }) => void;
}

/**
 * A route module belongs to exactly one service class. Adding an API means
 * adding an entry here; the listener decides whether it is mounted.
 */
type RouteModule = (app: FastifyInstance, opts: { ctx: AppContext }) => Promise<void>;
const ROUTES: ReadonlyArray<{ serviceClass: ServiceClass; routes: RouteModule }> = [
  { serviceClass: 'inference', routes: ollamaInferenceRoutes },
  { serviceClass: 'inference', routes: ollamaLibraryRoutes },
  { serviceClass: 'inference', routes: ollamaImageRoutes },
  { serviceClass: 'inference', routes: ollamaRerankRoutes },
  { serviceClass: 'inference', routes: openaiRoutes },
  { serviceClass: 'inference', routes: anthropicRoutes },
  { serviceClass: 'admin', routes: ollamaManageRoutes },
  { serviceClass: 'admin', routes: adminKeyRoutes },
  { serviceClass: 'admin', routes: fileRoutes },
  { serviceClass: 'jobs', routes: jobRoutes },
  { serviceClass: 'jobs', routes: knowledgeApiRoutes },
  { serviceClass: 'workflows', routes: comfyRoutes },
  { serviceClass: 'metrics', routes: metricsRoutes },
  { serviceClass: 'ui', routes: uiApiRoutes },
  { serviceClass: 'ui', routes: uiAppRoutes },
];

/** Builds the Fastify app for one listener. */
export async function buildHttpApp(ctx: AppContext, opts: HttpAppOptions): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: ctx.log.child({ component: 'http', listener: opts.listener }),
    bodyLimit: ctx.config.server.bodyLimit,
    disableRequestLogging: true,
    // Close idle keep-alive sockets at shutdown; in-flight requests are drained.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  // first hook: every request is counted, those the access guard refuses included
  if (opts.onRoute) app.addHook('onRoute', opts.onRoute);
  installHttpMetrics(app, ctx.metrics.http, opts.listener);
  installErrorHandling(app);
  installJsonBodies(app);
  if (opts.guard) guardListenerApp(app, opts.guard);
  opts.unreadBodies?.install(app);
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });
  await app.register(coreRoutes, { ctx, serves: opts.serves });
  for (const { serviceClass, routes } of ROUTES) {
    if (opts.serves.includes(serviceClass))
      await app.register(serviceClassScope(serviceClass, routes, opts.guard), { ctx });
  }
  return app;
}

export interface RunningServer {
  /** the addresses actually bound, e.g. `http://127.0.0.1:11434` (port 0 in config binds a free port) */
  readonly urls: string[];
  /** stops accepting, drains in-flight requests (up to server.shutdownTimeout), then resolves */
  close(): Promise<void>;
}

/** Binds every configured listener. A listener that cannot bind stops start-up, naming it. */
export async function startHttp(ctx: AppContext): Promise<RunningServer> {
  // Refused before anything binds: a wildcard or public address without allowPublicBind, admin outside adminZones.
  for (const warning of assertExposureAllowed(ctx.config)) ctx.log.warn(warning);
  const access = new AccessControl({ config: ctx.config, db: ctx.atlas.db, log: ctx.log.child({ component: 'net' }) });
  const apps: FastifyInstance[] = [];
  const urls: string[] = [];
  const unreadBodies = new UnreadBodies();
  try {
    for (const listener of ctx.config.listeners) {
      const app = await buildHttpApp(ctx, {
        listener: listener.name,
        serves: listener.serves,
        guard: access.listener(listener),
        unreadBodies,
      });
      const { host, port } = parseListenAddress(listener.address);
      try {
        await app.listen({ host, port });
      } catch (err) {
        await app.close();
        const code = (err as NodeJS.ErrnoException).code;
        const hint =
          code === 'EADDRINUSE'
            ? 'another process (an Ollama?) already listens there: stop it or choose another port'
            : code === 'EADDRNOTAVAIL'
              ? 'this machine has no such address: check the interface/VLAN is up'
              : 'check the address';
        throw new HearthError(
          'CONFIG_INVALID',
          `listeners.${listener.name}: cannot bind ${listener.address} (${code}): ${hint}`,
          {
            cause: err,
          },
        );
      }
      apps.push(app);
      const addr = app.server.address();
      if (addr && typeof addr === 'object') {
        const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        urls.push(`http://${h}:${addr.port}`);
      }
    }
  } catch (err) {
    await Promise.allSettled(apps.map((a) => a.close()));
    access.close();
    throw err;
  }
  return {
    urls,
    close: async () => {
      // A streaming response that finishes during the drain leaves a keep-alive socket that
      // Node's close() would wait on forever: keep closing sockets as they fall idle.
      // A body still arriving for a response already sent (a refused upload) is cut, not waited for.
      unreadBodies.abort();
      const sweep = setInterval(() => {
        unreadBodies.abort();
        for (const a of apps) a.server.closeIdleConnections();
      }, 100);
      try {
        await Promise.allSettled(apps.map((a) => a.close()));
      } finally {
        clearInterval(sweep);
      }
      access.close();
    },
  };
}
