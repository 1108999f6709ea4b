// The official `ollama` npm client against hearth: what existing clients do.

import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let ollama: Ollama;
let files: Server;
let fileUrl: string;
let sha: string;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-client-');
  const chat = await generateModel({
    path: join(dirs.root, 'chat.gguf'),
    seed: 5,
    chatTemplate: 'chatml',
    contextLength: 1024,
  });
  const embed = await generateModel({
    path: join(dirs.root, 'embed.gguf'),
    seed: 6,
    chatTemplate: 'none',
    embedding: true,
    contextLength: 512,
  });
  sha = chat.sha256;
  const blobs: Record<string, Buffer> = {
    '/chat.gguf': await readFile(chat.path),
    '/embed.gguf': await readFile(embed.path),
  };
  files = createServer((req, res) => {
    const body = blobs[req.url ?? ''];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
  fileUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  hearth = await startHearthInProcess(dirs, { inference: { numCtx: 1024 } });
  ollama = new Ollama({ host: hearth.url });
});

afterAll(async () => {
  await hearth?.close();
  await new Promise((resolve) => files?.close(resolve));
  await dirs?.cleanup();
});

describe('the ollama npm client', () => {
  it('pulls with progress', async () => {
    const statuses: string[] = [];
    for await (const p of await ollama.pull({ model: `${fileUrl}/chat.gguf`, stream: true })) statuses.push(p.status);
    expect(statuses.at(-1)).toBe('success');
    const done = await ollama.pull({ model: `${fileUrl}/embed.gguf` });
    expect(done.status).toBe('success');
  });

  it('lists and shows', async () => {
    const { models } = await ollama.list();
    const chat = models.find((m) => m.name === 'chat:latest');
    expect(chat?.digest).toBe(sha);
    expect(chat?.details.family).toBe('llama');
    const show = await ollama.show({ model: 'chat' });
    expect(show.details.format).toBe('gguf');
    expect(show.capabilities).toContain('completion');
  });

  it('generates and chats, streaming', async () => {
    const gen = await ollama.generate({ model: 'chat', prompt: 'Hello', options: { num_predict: 6 } });
    expect(gen.done).toBe(true);
    expect(gen.eval_count).toBeGreaterThan(0);
    let text = '';
    let final: { done: boolean; eval_count: number } | undefined;
    for await (const part of await ollama.chat({
      model: 'chat',
      messages: [{ role: 'user', content: 'Say something' }],
      stream: true,
      options: { num_predict: 6 },
    })) {
      text += part.message.content;
      if (part.done) final = part;
    }
    expect(final?.done).toBe(true);
    expect(final?.eval_count).toBeGreaterThan(0);
    expect(typeof text).toBe('string');
  });

  it('embeds', async () => {
    const res = await ollama.embed({ model: 'embed', input: ['one', 'two'] });
    expect(res.embeddings).toHaveLength(2);
    expect(res.embeddings[0]!.length).toBeGreaterThan(0);
  });

  it('shows running models', async () => {
    const ps = await ollama.ps();
    expect(ps.models.map((m) => m.name)).toEqual(expect.arrayContaining(['chat:latest']));
    expect((ps.models[0] as unknown as { context_length: number }).context_length).toBeGreaterThan(0);
  });

  it('copies and deletes', async () => {
    await ollama.copy({ source: 'chat', destination: 'chat2' });
    expect((await ollama.list()).models.map((m) => m.name)).toContain('chat2:latest');
    await ollama.delete({ model: 'chat2' });
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('chat2:latest');
    // The blob stays: chat:latest still uses it.
    expect(await hearth.ctx.atlas.files.stat(`models/blobs/sha256-${sha}`)).not.toBeNull();
    await expect(ollama.delete({ model: 'chat2' })).rejects.toThrow(/not found/);
  });
});
