// The bench client against a scripted server: what it measures from NDJSON and SSE streams.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type BenchTarget, endpointUrl, sendRequest } from './target.js';

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  );
});

/** A server that answers every POST with `lines`, `gapMs` apart, and remembers the last body. */
async function scripted(
  lines: string[],
  gapMs: number,
  contentType: string,
): Promise<{ url: string; body: () => any }> {
  let last: unknown = null;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => {
      text += c;
    });
    req.on('end', async () => {
      last = JSON.parse(text);
      res.writeHead(200, { 'content-type': contentType });
      for (const line of lines) {
        res.write(`${line}\n`);
        await new Promise((r) => setTimeout(r, gapMs));
      }
      res.end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, body: () => last };
}

const prompt = { text: 'hello there', maxTokens: 3 };

describe('sendRequest', () => {
  it('measures TTFT, inter-token gaps and the server counts of an Ollama stream', async () => {
    const lines = [
      ...['a', 'b', 'c'].map((t) => JSON.stringify({ message: { role: 'assistant', content: t }, done: false })),
      JSON.stringify({ message: { role: 'assistant', content: '' }, done: true, prompt_eval_count: 11, eval_count: 3 }),
    ];
    const srv = await scripted(lines, 40, 'application/x-ndjson');
    const target: BenchTarget = {
      url: srv.url,
      api: 'ollama',
      mode: 'chat',
      model: 'm',
      temperature: 0,
      options: { num_ctx: 64 },
    };
    const sample = await sendRequest(target, prompt, { stream: true, timeoutMs: 5_000, originMs: performance.now() });
    expect(sample.ok).toBe(true);
    expect(sample.promptTokens).toBe(11);
    expect(sample.outputTokens).toBe(3);
    expect(sample.itlMs).toHaveLength(2);
    // the client cannot see the last token before the server sent it (80 ms after the first); a busy
    // machine may delay the first one, so only a generous part of that is asserted
    expect(sample.itlMs[0]! + sample.itlMs[1]!).toBeGreaterThan(40);
    expect(sample.e2eMs).toBeGreaterThan(sample.ttftMs! + 40);
    expect(srv.body()).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'hello there' }],
      stream: true,
      options: { num_ctx: 64, num_predict: 3, temperature: 0 },
    });
  });

  it('reads OpenAI server-sent events, with usage from the last chunk', async () => {
    const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n`;
    const lines = [
      ': keep-alive',
      chunk(''),
      chunk('x'),
      chunk('y'),
      `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 2 } })}\n`,
      'data: [DONE]\n',
    ];
    const srv = await scripted(lines, 10, 'text/event-stream');
    const target: BenchTarget = {
      url: `${srv.url}/v1/`,
      api: 'openai',
      mode: 'completion',
      model: 'm',
      options: { ignore_eos: true },
    };
    expect(endpointUrl(target)).toBe(`${srv.url}/v1/completions`);
    const sample = await sendRequest(target, prompt, { stream: true, timeoutMs: 5_000, originMs: performance.now() });
    expect(sample).toMatchObject({ ok: true, promptTokens: 7, outputTokens: 2 });
    expect(sample.itlMs).toHaveLength(1);
    expect(srv.body()).toMatchObject({
      prompt: 'hello there',
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true,
    });
  });

  it('counts an in-band error line and a stalled server as failures', async () => {
    const srv = await scripted([JSON.stringify({ error: 'model crashed' })], 0, 'application/x-ndjson');
    const target: BenchTarget = { url: srv.url, api: 'ollama', mode: 'completion', model: 'm' };
    const failed = await sendRequest(target, prompt, { stream: true, timeoutMs: 5_000, originMs: 0 });
    expect(failed).toMatchObject({ ok: false, error: 'error in the stream: model crashed' });

    const slow = await scripted([JSON.stringify({ response: 'a', done: false })], 3_000, 'application/x-ndjson');
    const started = Date.now();
    const stalled = await sendRequest({ ...target, url: slow.url }, prompt, {
      stream: true,
      timeoutMs: 300,
      originMs: 0,
    });
    expect(stalled.ok).toBe(false);
    expect(stalled.error).toMatch(/no complete answer from .* within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
