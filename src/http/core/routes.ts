import type { FastifyInstance } from 'fastify';
import type { ServiceClass } from '../../config/index.js';
import type { AppContext } from '../../context.js';
import { describeError } from '../../errors.js';
import { OLLAMA_API_VERSION } from '../../version.js';

/**
 * Routes every listener serves, whatever its service classes: the liveness
 * probes clients and orchestrators use.
 */
export async function coreRoutes(
  app: FastifyInstance,
  opts: { ctx: AppContext; serves?: readonly ServiceClass[] },
): Promise<void> {
  const { ctx } = opts;

  // Ollama clients probe `GET /` and `HEAD /` for a plain-text banner; a browser is sent to the chat UI.
  const servesUi = opts.serves?.includes('ui') ?? false;
  app.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: async (request, reply) => {
      if (servesUi && request.method === 'GET' && /\btext\/html\b/.test(request.headers.accept ?? '')) {
        return reply.redirect('/ui/');
      }
      return reply.type('text/plain; charset=utf-8').send('hearth is running');
    },
  });

  app.get('/api/version', async (_request, reply) => {
    reply.header('x-hearth-version', ctx.version);
    return { version: OLLAMA_API_VERSION, hearth_version: ctx.version };
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  const files = memoised(5_000, () => ctx.atlas.files.checkWritable());
  app.get('/readyz', async (_request, reply) => {
    const [database, fileStore] = await Promise.allSettled([ctx.atlas.db.ping(2_000), files()]);
    const checks = {
      database: database.status === 'fulfilled' ? 'ok' : describeError(database.reason),
      files: fileStore.status === 'fulfilled' ? 'ok' : describeError(fileStore.reason),
    };
    const ready = checks.database === 'ok' && checks.files === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });
}

/** Runs `fn` at most once per `ms`; concurrent callers share the run in flight. Failures are not remembered. */
function memoised(ms: number, fn: () => Promise<void>): () => Promise<void> {
  let last = 0;
  let inflight: Promise<void> | null = null;
  return async () => {
    if (Date.now() - last < ms) return;
    inflight ??= fn()
      .then(() => {
        last = Date.now();
      })
      .finally(() => {
        inflight = null;
      });
    return inflight;
  };
}
