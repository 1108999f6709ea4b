// The kept-alive connection to a llama-server process and its one retry. llama-server cannot be
// made to close a kept connection at a chosen moment, so the process here is a stand-in: a small
// Node HTTP server on the same Unix socket (`--host`), started through LlamaServerProcess.start
// like the real one. It drops the connection on cue, either before answering (the retry case) or
// in the middle of an answer (never retried).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../log.js';
import { LlamaServerProcess } from './process.js';

const STAND_IN = `
const http = require('node:http');
const socket = process.argv[process.argv.indexOf('--host') + 1];
let connections = 0;
let completions = 0;
let dropNext = null; // 'before' | 'during'
const server = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (req.url === '/health') return res.end('{"status":"ok"}');
    if (req.url === '/drop') { dropNext = JSON.parse(body).when; return res.end('{}'); }
    if (req.url === '/counts') return res.end(JSON.stringify({ connections, completions }));
    if (dropNext === 'before') { dropNext = null; return req.socket.destroy(); }
    completions++;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"content":"a"}\\n\\n');
    if (dropNext === 'during') { dropNext = null; return setTimeout(() => req.socket.destroy(), 20); }
    res.end('data: {"content":"b"}\\n\\n');
  });
});
server.on('connection', () => connections++);
server.listen(socket);
`;

let dir: string;
let proc: LlamaServerProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-standin-'));
  const script = join(dir, 'stand-in.cjs');
  await writeFile(script, STAND_IN);
  proc = await LlamaServerProcess.start({
    binary: process.execPath,
    args: [script],
    readyTimeoutMs: 30_000,
    log: silentLogger(),
  });
});

afterAll(async () => {
  await proc?.kill();
  await rm(dir, { recursive: true, force: true });
});

async function complete(): Promise<string[]> {
  const events: string[] = [];
  await proc.post(
    '/completion',
    { prompt: 'x' },
    { signal: new AbortController().signal, onEvent: (e) => events.push(e) },
  );
  return events;
}

async function counts(): Promise<{ connections: number; completions: number }> {
  let out = '';
  await proc.post('/counts', {}, { signal: new AbortController().signal, onEvent: (e) => (out = e) });
  return JSON.parse(out);
}

async function dropNext(when: 'before' | 'during'): Promise<void> {
  await proc.post('/drop', { when }, { signal: new AbortController().signal, onEvent: () => {} });
}

describe('kept-alive connections to a llama-server process', () => {
  it('reuses one connection for requests in turn', async () => {
    const before = await counts();
    for (let i = 0; i < 5; i++) expect(await complete()).toEqual(['{"content":"a"}', '{"content":"b"}']);
    const after = await counts();
    expect(after.completions - before.completions).toBe(5);
    expect(after.connections).toBe(before.connections);
  });

  it('opens a new connection for each streamed request, which llama-server closes after its answer', async () => {
    const before = await counts();
    for (let i = 0; i < 2; i++) {
      const events: string[] = [];
      await proc.post(
        '/completion',
        { prompt: 'x', stream: true },
        { signal: new AbortController().signal, onEvent: (e) => events.push(e) },
      );
      expect(events).toEqual(['{"content":"a"}', '{"content":"b"}']);
    }
    const after = await counts();
    expect(after.completions - before.completions).toBe(2);
    // one connection per streamed request; the counts went over the kept one
    expect(after.connections - before.connections).toBe(2);
  });

  it('sends a request once more on a new connection when the kept one is dropped before any answer', async () => {
    await dropNext('before');
    const before = await counts();
    expect(await complete()).toEqual(['{"content":"a"}', '{"content":"b"}']);
    const after = await counts();
    expect(after.completions - before.completions).toBe(1);
    // the retry's own new connection, and a new kept one for the count (the dropped one is gone)
    expect(after.connections - before.connections).toBe(2);
  });

  it('never retries once an answer has begun: the request fails, the next one works', async () => {
    await dropNext('during');
    const before = await counts();
    const events: string[] = [];
    const failed = await proc
      .post('/completion', { prompt: 'x' }, { signal: new AbortController().signal, onEvent: (e) => events.push(e) })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(failed).toBeInstanceOf(Error);
    expect(events).toEqual(['{"content":"a"}']);
    expect(await complete()).toEqual(['{"content":"a"}', '{"content":"b"}']);
    expect((await counts()).completions - before.completions).toBe(2);
  });
});
