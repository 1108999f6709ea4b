import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { HearthError } from '../errors.js';
import { installErrorHandling } from './errors.js';
import { NdjsonStream, ResponseStream, SseStream } from './stream.js';

const apps: FastifyInstance[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** An app whose hooks set headers, as CORS and the UI do. */
function newApp(): FastifyInstance {
  const app = Fastify();
  apps.push(app);
  installErrorHandling(app);
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('access-control-allow-origin', 'http://ui.home');
    reply.header('vary', 'Origin');
    reply.header('cache-control', 'no-store');
  });
  return app;
}

/** An app whose one route streams `before` SSE events, then fails with `err` (or finishes). */
function sseApp(before: number, err?: HearthError): FastifyInstance {
  const app = newApp();
  app.post('/v1/stream', { config: { errorShape: 'openai' } }, async (request, reply) => {
    const stream = new SseStream(request, reply);
    try {
      for (let i = 0; i < before; i++) await stream.send({ n: i });
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

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

/** Waits until `check` holds, for at most 5 s. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(10);
  expect(check()).toBe(true);
}

describe('SseStream', () => {
  it('frames events as data lines, ends with [DONE], and keeps headers set by hooks', async () => {
    const res = await sseApp(2).inject({ method: 'POST', url: '/v1/stream', payload: {} });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.headers['access-control-allow-origin']).toBe('http://ui.home');
    expect(res.headers.vary).toBe('Origin');
    // A hook's cache-control wins over the framing's default.
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toBe('data: {"n":0}\n\ndata: {"n":1}\n\ndata: [DONE]\n\n');
  });

  it('writes named events with ids, and comments', async () => {
    const app = Fastify();
    apps.push(app);
    app.get('/events', async (request, reply) => {
      const stream = new SseStream(request, reply);
      await stream.send({ a: 1 }, { event: 'log', id: 7 });
      await stream.comment('keep-alive');
      await stream.send({ b: 2 }, { event: 'end' });
      stream.end();
      return reply;
    });
    const res = await app.inject({ method: 'GET', url: '/events' });
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.body).toBe('id: 7\nevent: log\ndata: {"a":1}\n\n: keep-alive\n\nevent: end\ndata: {"b":2}\n\n');
  });

  it("reports an error after output began as a final error event in OpenAI's shape", async () => {
    const app = sseApp(1, new HearthError('ENGINE_GPU_FAILED', ['the GPU went away: check nvidia-smi']));
    const res = await app.inject({ method: 'POST', url: '/v1/stream', payload: {} });
    expect(res.statusCode).toBe(200);
    const [first, last, ...rest] = events(res.body);
    expect(JSON.parse(first!)).toEqual({ n: 0 });
    expect(JSON.parse(last!)).toEqual({
      error: {
        message: 'engine: the GPU went away: check nvidia-smi',
        type: 'server_error',
        param: null,
        code: 'engine_gpu_failed',
      },
    });
    expect(rest).toEqual([]);
  });

  it('leaves an error before any output to the normal error path, with its status', async () => {
    const app = sseApp(0, new HearthError('QUEUE_FULL', [4]));
    const res = await app.inject({ method: 'POST', url: '/v1/stream', payload: {} });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json().error).toMatchObject({
      message: expect.stringMatching(/^server busy, please try again/),
      code: 'queue_full',
    });
  });
});

describe('NdjsonStream', () => {
  it('writes one JSON object a line with the headers hooks set, and ends with an error line on failure', async () => {
    const app = newApp();
    app.post('/api/stream', async (request, reply) => {
      const stream = new NdjsonStream(request, reply);
      try {
        await stream.write({ n: 0 });
        throw new HearthError('ENGINE_GPU_FAILED', ['the GPU went away']);
      } catch (e) {
        stream.fail(e);
        return reply;
      }
    });
    const res = await app.inject({ method: 'POST', url: '/api/stream', payload: {} });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-ndjson');
    expect(res.headers['access-control-allow-origin']).toBe('http://ui.home');
    expect(res.headers.vary).toBe('Origin');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toBe('{"n":0}\n{"error":"engine: the GPU went away"}\n');
  });
});

describe('ResponseStream', () => {
  it('refuses writes after end', async () => {
    const app = Fastify();
    apps.push(app);
    let late: boolean | undefined;
    app.get('/s', async (request, reply) => {
      const stream = new ResponseStream(request, reply, { contentType: 'text/plain' });
      expect(await stream.write('one\n')).toBe(true);
      stream.end();
      expect(stream.closed).toBe(true);
      late = await stream.write('two\n');
      return reply;
    });
    const res = await app.inject({ method: 'GET', url: '/s' });
    expect(res.body).toBe('one\n');
    expect(late).toBe(false);
  });

  it('aborts its signal when the client disconnects, and refuses writes after', async () => {
    const app = Fastify();
    let stream: ResponseStream | undefined;
    let afterClose: boolean | undefined;
    app.get('/s', async (request, reply) => {
      stream = new ResponseStream(request, reply, { contentType: 'text/plain' });
      await stream.write('first\n');
      await new Promise((resolve) => stream!.signal.addEventListener('abort', resolve, { once: true }));
      afterClose = await stream.write('never\n');
      return reply;
    });
    apps.push(app);
    const port = await listen(app);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/s' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', reject);
      req.end();
    });
    await until(() => afterClose !== undefined);
    expect(stream!.signal.aborted).toBe(true);
    expect(stream!.closed).toBe(true);
    expect(afterClose).toBe(false);
  });

  it('waits for drain when the client reads slowly, and sends every byte in order', async () => {
    const app = Fastify();
    apps.push(app);
    const chunk = 'x'.repeat(64 * 1024);
    // 64 MiB: more than loopback socket buffers can grow to (tcp_rmem's maximum is 6 MiB by default,
    // 32 MiB on some hosts; 4 MiB, this test's old size, fit whole into a roomy one)
    const count = 1024;
    // Whether a write was asked for while the socket still wanted a drain: never, if write() waits.
    const writesIntoFullBuffer: boolean[] = [];
    let finished = false;
    app.get('/s', async (request, reply) => {
      const stream = new ResponseStream(request, reply, { contentType: 'application/octet-stream' });
      for (let i = 0; i < count; i++) {
        writesIntoFullBuffer.push(reply.raw.writableNeedDrain);
        expect(await stream.write(chunk)).toBe(true);
      }
      stream.end();
      finished = true;
      return reply;
    });
    const port = await listen(app);
    let received = 0;
    let finishedBeforeReading: boolean | undefined;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/s' }, (res) => {
        res.pause();
        // Read nothing until the server has filled the buffers and is waiting.
        setTimeout(() => {
          finishedBeforeReading = finished;
          res.on('data', (d: Buffer) => {
            received += d.length;
          });
          res.on('end', resolve);
          res.resume();
        }, 300);
      });
      req.on('error', reject);
      req.end();
    });
    expect(finishedBeforeReading).toBe(false);
    expect(received).toBe(chunk.length * count);
    expect(finished).toBe(true);
    expect(writesIntoFullBuffer).toEqual(new Array(count).fill(false));
  });
});
