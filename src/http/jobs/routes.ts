import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import * as z from 'zod';
import type { AppContext } from '../../context.js';
import { batchRequestSchema, FINISHED_STATES, JOB_STATES, type JobView } from '../../jobs/index.js';
import { SseStream } from '../stream.js';
import { parseRequest } from '../validate.js';

const listQuery = z.strictObject({
  /** one state or a comma-separated list */
  state: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(z.enum(JOB_STATES)))
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  /** the id of the last job of the previous page */
  before: z.string().optional(),
});

const logsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(5000).optional(),
});

const retryBody = z.strictObject({
  max_errors: z.union([z.number().min(0), z.string().regex(/^\d+(\.\d+)?%$/)]).optional(),
});

/** How often an SSE stream looks at the job (any node may be running it, so it asks the database). */
const EVENTS_POLL_MS = 500;
/** A comment line this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

/**
 * The batch job API (service class `jobs`): submit, list, inspect, cancel, retry, the job's log, and
 * its progress as server-sent events.
 */
export async function jobRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  // Open event streams end when the server closes, so a shutdown does not wait on them.
  const streams = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.abort();
  });

  app.post('/api/jobs', async (request, reply) => {
    const body = parseRequest(batchRequestSchema, request.body);
    return reply.code(201).send(await ctx.jobs.submit(body));
  });

  app.get('/api/jobs', async (request) => {
    const query = parseRequest(listQuery, request.query ?? {}, 'query');
    return ctx.jobs.list({
      ...(query.state ? { states: query.state } : {}),
      ...(query.limit !== undefined ? { limit: query.limit } : {}),
      ...(query.before !== undefined ? { before: query.before } : {}),
    });
  });

  app.get('/api/jobs/:id', async (request) => ctx.jobs.get((request.params as { id: string }).id));

  app.post('/api/jobs/:id/cancel', async (request) => ctx.jobs.cancel((request.params as { id: string }).id));

  app.post('/api/jobs/:id/retry', async (request) => {
    const body = parseRequest(retryBody, request.body ?? {});
    return ctx.jobs.retry(
      (request.params as { id: string }).id,
      body.max_errors !== undefined ? { maxErrors: body.max_errors } : {},
    );
  });

  app.get('/api/jobs/:id/logs', async (request) => {
    const query = parseRequest(logsQuery, request.query ?? {}, 'query');
    return {
      events: await ctx.jobs.events((request.params as { id: string }).id, query.after ?? 0, query.limit ?? 1000),
    };
  });

  // Server-sent events: `progress` (the job, whenever it changes), `log` (each log line, with its id, so
  // a client that reconnects with Last-Event-ID misses none), and `end` (the finished job) before closing.
  app.get('/api/jobs/:id/events', async (request, reply) => {
    const { id } = request.params as { id: string };
    let job = await ctx.jobs.get(id);
    const stop = new AbortController();
    streams.add(stop);
    const stream = new SseStream(request, reply);
    stream.signal.addEventListener('abort', () => stop.abort(), { once: true });
    stream.open();
    let lastLog = Number(request.headers['last-event-id'] ?? 0) || 0;
    let lastShown = '';
    let lastWrite = Date.now();
    try {
      while (!stop.signal.aborted) {
        const events = await ctx.jobs.events(id, lastLog, 500);
        for (const event of events) {
          await stream.send(event, { event: 'log', id: event.id });
          lastLog = event.id;
        }
        job = await ctx.jobs.get(id);
        const shown = progressKey(job);
        if (shown !== lastShown || events.length) {
          lastShown = shown;
          await stream.send(job, { event: 'progress' });
          lastWrite = Date.now();
        } else if (Date.now() - lastWrite > KEEPALIVE_MS) {
          await stream.comment('keep-alive');
          lastWrite = Date.now();
        }
        if (FINISHED_STATES.includes(job.state) && events.length === 0) {
          await stream.send(job, { event: 'end' });
          break;
        }
        await sleep(EVENTS_POLL_MS, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    } catch (err) {
      request.log.warn({ err, job: id }, 'job event stream ended by an error');
    } finally {
      streams.delete(stop);
      stream.end();
    }
    return reply;
  });
}

function progressKey(job: JobView): string {
  return `${job.state}|${job.updated_at}|${JSON.stringify(job.progress)}`;
}
