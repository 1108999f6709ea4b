import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { HearthError } from '../../errors.js';
import { installErrorHandling } from '../errors.js';
import { SseStream } from './sse.js';

const apps: Array<ReturnType<typeof Fastify>> = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** An app whose one route streams `before` events, then fails with `err` (or finishes). */
async function appStreaming(before: number, err?: HearthError) {
  const app = Fastify();
  apps.push(app);
  installErrorHandling(app);
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('access-control-allow-origin', 'http://ui.home');
  });
  app.post('/v1/stream', { config: { errorShape: 'openai' } }, async (request, reply) => {
    const stream = new SseStream(request, reply);
    try {
      for (let i = 0; i < before; i++) stream.send({ n: i });
      if (err) throw err;
      stream.done();
      return reply;
    } catch (e) {
      stream.fail(e);
      return reply;
    }
  });
  return app;
}

function events(body: string): string[] {
  return body
    .split('\n\n')
    .filter(Boolean)
    .map((e) => e.replace(/^data: /, ''));
}

describe('SseStream', () => {
  it('frames events as data lines, ends with [DONE], and keeps headers set by hooks', async () => {
    const app = await appStreaming(2);
    const res = await app.inject({ method: 'POST', url: '/v1/stream', payload: {} });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.headers['access-control-allow-origin']).toBe('http://ui.home');
    expect(res.body).toBe('data: {"n":0}\n\ndata: {"n":1}\n\ndata: [DONE]\n\n');
  });

  it("reports an error after output began as a final error event in OpenAI's shape", async () => {
    const app = await appStreaming(1, new HearthError('ENGINE_GPU_FAILED', 'the GPU went away: check nvidia-smi'));
    const res = await app.inject({ method: 'POST', url: '/v1/stream', payload: {} });
    expect(res.statusCode).toBe(200);
    const [first, last, ...rest] = events(res.body);
    expect(JSON.parse(first!)).toEqual({ n: 0 });
    expect(JSON.parse(last!)).toEqual({
      error: {
        message: 'the GPU went away: check nvidia-smi',
        type: 'server_error',
        param: null,
        code: 'engine_gpu_failed',
      },
    });
    expect(rest).toEqual([]);
  });

  it('leaves an error before any output to the normal error path, with its status', async () => {
    const app = await appStreaming(0, new HearthError('QUEUE_FULL', 'server busy: try again'));
    const res = await app.inject({ method: 'POST', url: '/v1/stream', payload: {} });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json().error).toMatchObject({ message: 'server busy: try again', code: 'queue_full' });
  });
});
