// The ComfyUI-compatible API over real HTTP and a plain WebSocket client, the way ComfyUI's
// websockets_api_example.py drives it: submit, wait for `executing` with node null, read /history, fetch /view.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAtlasDb } from '../src/atlas/db/index.js';
import { silentLogger } from '../src/log.js';
import { readPngText, WorkflowService } from '../src/workflows/index.js';
import { connectComfy, doneFrame } from './support/comfy.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { call as callHearth } from './support/http.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;

const call = (path: string, body?: unknown) => callHearth(hearth.url, path, body);

const connect = (clientId: string) => connectComfy(hearth.url, clientId);

const done = doneFrame;

async function historyOf(id: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await call(`/history/${id}`);
    if (h.json[id]) return h.json[id];
    if (Date.now() > deadline) throw new Error(`prompt ${id} did not finish`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-wf-api-');
  hearth = await startHearthInProcess(dirs, { workflows: { pollInterval: '100ms' } });
});
afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('ComfyUI API', () => {
  it('serves /object_info at the root and under /api/', async () => {
    const root = await call('/object_info');
    const api = await call('/api/object_info/SaveImage');
    expect(root.status).toBe(200);
    expect(root.json['SaveImage']).toEqual(api.json['SaveImage']);
    expect((await call('/object_info/Nope')).status).toBe(404);
  });

  it('refuses an invalid prompt with 400 and node_errors, and queues nothing', async () => {
    const r = await call('/prompt', {
      prompt: {
        '1': { class_type: 'NumberToText', inputs: { number: 'x' } },
        '2': { class_type: 'PreviewText', inputs: { text: ['1', 0] } },
      },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.type).toBe('prompt_outputs_failed_validation');
    expect(r.json.node_errors['1'].errors[0].type).toBe('invalid_input_type');
    expect((await call('/queue')).json).toEqual({ queue_running: [], queue_pending: [] });
  });

  it('runs an image pipeline: WebSocket frames in order, a PNG with its prompt on Atlas, then all cached', async () => {
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    const form = new FormData();
    form.append('image', new Blob([png], { type: 'image/png' }), 'cat.png');
    const up = await fetch(`${hearth.url}/upload/image`, { method: 'POST', body: form });
    expect(await up.json()).toEqual({ name: 'cat.png', subfolder: '', type: 'input' });
    // The same name with other bytes gets a new name, as in ComfyUI.
    const otherPng = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000000' } })
      .png()
      .toBuffer();
    const other = new FormData();
    other.append('image', new Blob([otherPng], { type: 'image/png' }), 'cat.png');
    const renamed = (await (
      await fetch(`${hearth.url}/api/upload/image`, { method: 'POST', body: other })
    ).json()) as any;
    expect(renamed.name).toBe('cat (1).png');
    // Bytes that are not an image are refused, whatever the name says, and nothing is stored.
    const fake = new FormData();
    fake.append('image', new Blob([Buffer.from('<script>alert(1)</script>')], { type: 'image/png' }), 'x.png');
    const refused = await fetch(`${hearth.url}/upload/image`, { method: 'POST', body: fake });
    expect(refused.status).toBe(415);
    expect(((await refused.json()) as any).error).toMatch(/not an image/);
    expect((await fetch(`${hearth.url}/view?filename=x.png&type=input`)).status).toBe(404);
    // /view names the type and forbids sniffing.
    const input = await fetch(`${hearth.url}/view?filename=cat.png&type=input`);
    expect(input.status).toBe(200);
    expect(input.headers.get('content-type')).toBe('image/png');
    expect(input.headers.get('x-content-type-options')).toBe('nosniff');
    expect(input.headers.get('content-disposition')).toBe("inline; filename*=UTF-8''cat.png");
    expect(Buffer.from(await input.arrayBuffer()).equals(png)).toBe(true);

    const ws = await connect('client-a');
    const prompt = {
      '1': { class_type: 'LoadImage', inputs: { image: 'cat.png' } },
      '2': { class_type: 'ImageResize', inputs: { image: ['1', 0], width: 32, height: 0 } },
      '3': { class_type: 'ImageText', inputs: { image: ['2', 0], text: 'hi', size: 10 } },
      '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'tests/cat' } },
    };
    const sent = await call('/prompt', {
      prompt,
      client_id: 'client-a',
      extra_data: { extra_pnginfo: { workflow: { nodes: [] } } },
    });
    expect(sent.status).toBe(200);
    expect(sent.json).toMatchObject({ node_errors: {} });
    const id = sent.json.prompt_id;
    await ws.until(done(id));
    const mine = ws.frames
      .filter((f) => f.data.prompt_id === id)
      .map((f) => (f.type === 'executing' ? `executing:${f.data.node}` : f.type));
    expect(mine).toEqual([
      'execution_start',
      'execution_cached',
      'executing:1',
      'executing:2',
      'executing:3',
      'executing:4',
      'progress',
      'executed',
      'execution_success',
      'executing:null',
    ]);
    expect(ws.frames[0]).toMatchObject({ type: 'status', data: { sid: 'client-a' } });

    const entry = await historyOf(id);
    expect(entry.status).toMatchObject({ status_str: 'success', completed: true });
    const image = entry.outputs['4'].images[0];
    expect(image).toEqual({ filename: 'cat_00001_.png', subfolder: 'tests', type: 'output' });
    const view = await fetch(`${hearth.url}/view?filename=${image.filename}&subfolder=tests&type=output`);
    expect(view.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await view.arrayBuffer());
    expect(await sharp(bytes).metadata()).toMatchObject({ width: 32, height: 24, format: 'png' });
    const meta = readPngText(bytes);
    expect(JSON.parse(meta['prompt']!)).toEqual(prompt);
    expect(JSON.parse(meta['workflow']!)).toEqual({ nodes: [] });
    // It is on Atlas, not on the node.
    expect(await readFile(join(dirs.atlas, 'outputs', 'tests', 'cat_00001_.png'))).toEqual(bytes);

    const again = await call('/prompt', { prompt, client_id: 'client-a' });
    await ws.until(done(again.json.prompt_id));
    const second = ws.frames.filter((f) => f.data.prompt_id === again.json.prompt_id);
    expect(second.find((f) => f.type === 'execution_cached').data.nodes).toEqual(['1', '2', '3', '4']);
    expect(second.filter((f) => f.type === 'executing' && f.data.node !== null)).toEqual([]);
    expect((await historyOf(again.json.prompt_id)).outputs['4'].images[0].filename).toBe('cat_00001_.png');
    ws.close();
  });

  it.each([
    ['filename=../../etc/passwd&type=output'],
    ['filename=/etc/passwd&type=output'],
    ['filename=x.png&subfolder=../..&type=output'],
    ['filename=x.png&subfolder=/tmp&type=input'],
    ['filename=..%2F..%2Fsecret&type=temp'],
  ])('/view refuses %s with 400', async (query) => {
    const r = await fetch(`${hearth.url}/view?${query}`);
    expect(r.status).toBe(400);
  });

  it('runs an LLM node with a generated model, and interrupts a long generation', async () => {
    await mkdir(join(dirs.root, 'models'), { recursive: true });
    const models = await makeTestModels(join(dirs.root, 'models'));
    const bytes = await readFile(models.chat);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
    expect((await call('/api/create', { model: 'tiny', files: { 'chat.gguf': digest }, stream: false })).status).toBe(
      200,
    );

    const ws = await connect('client-llm');
    const short = await call('/prompt', {
      client_id: 'client-llm',
      prompt: {
        '1': { class_type: 'LLMGenerate', inputs: { model: 'tiny', prompt: 'Say hi', max_tokens: 6, seed: 7 } },
        '2': { class_type: 'SaveText', inputs: { text: ['1', 0], filename_prefix: 'llm' } },
      },
    });
    expect(short.status).toBe(200);
    const entry = await historyOf(short.json.prompt_id, 60_000);
    expect(entry.status.status_str).toBe('success');
    expect(typeof entry.outputs['2'].text[0]).toBe('string');
    expect(entry.outputs['2'].text[0].length).toBeGreaterThan(0);
    expect(ws.frames.some((f) => f.type === 'progress' && f.data.node === '1')).toBe(true);

    // A chain of long generations (different seeds, so nothing comes from the cache): llama-server
    // writes the tiny model's tokens fast, so one generation could end before the interrupt arrives;
    // a chain of them is still running, and stops at its next progress point.
    const parts = 12;
    const chain: Record<string, unknown> = {};
    let text: [string, number] | undefined;
    for (let i = 0; i < parts; i++) {
      chain[`gen${i}`] = {
        class_type: 'LLMGenerate',
        inputs: { model: 'tiny', prompt: `Tell a long story ${i}`, max_tokens: 1500, seed: 800 + i },
      };
      if (text) chain[`join${i}`] = { class_type: 'TextConcat', inputs: { a: text, b: [`gen${i}`, 0] } };
      text = [text ? `join${i}` : `gen${i}`, 0];
    }
    chain['out'] = { class_type: 'PreviewText', inputs: { text } };
    const long = await call('/prompt', { client_id: 'client-llm', prompt: chain });
    const id = long.json.prompt_id;
    await ws.until((f) => f.type === 'progress' && f.data.prompt_id === id, 60_000);
    expect((await call('/interrupt', { prompt_id: id })).status).toBe(200);
    await ws.until(done(id));
    const stopped = ws.frames.find((f) => f.type === 'execution_interrupted' && f.data.prompt_id === id);
    expect(stopped.data).toMatchObject({ node_type: 'LLMGenerate', node_id: expect.stringMatching(/^gen\d+$/) });
    // Stopped partway: the rest of the chain never ran, and nothing reached the output node.
    expect(stopped.data.executed).not.toContain('out');
    expect(ws.frames.some((f) => f.type === 'executed' && f.data.prompt_id === id)).toBe(false);
    expect((await historyOf(id)).status).toMatchObject({ status_str: 'error', completed: false });
    ws.close();
  });

  it('keeps queued prompts across a restart and runs them after it', async () => {
    await hearth.close();
    // While hearth is down, a prompt is queued on Atlas through the same service code, running nothing.
    const db = await openAtlasDb({
      database: 'embedded',
      embeddedDir: join(dirs.atlas, '.hearth', 'db'),
      log: silentLogger(),
    });
    const offline = await WorkflowService.open({
      db,
      database: 'embedded',
      files: undefined as never,
      engine: undefined as never,
      inference: undefined as never,
      images: undefined as never,
      cacheDir: join(dirs.root, 'offline-cache'),
      nodeId: 'offline',
      log: silentLogger(),
      settings: {
        cacheMaxBytes: 1 << 20,
        memoryCacheMaxBytes: 1 << 20,
        pollIntervalMs: 1000,
        leaseMs: 60_000,
        maxAttempts: 3,
      },
      runPrompts: false,
    });
    const { prompt_id } = await offline.submit({
      prompt: {
        '1': { class_type: 'Text', inputs: { text: 'after the restart' } },
        '2': { class_type: 'SaveText', inputs: { text: ['1', 0], filename_prefix: 'restart' } },
      },
    });
    expect((await offline.queue()).queue_pending.map((q) => q[1])).toEqual([prompt_id]);
    await offline.close();
    await db.close();

    hearth = await startHearthInProcess(dirs, { workflows: { pollInterval: '100ms' } });
    const entry = await historyOf(prompt_id);
    expect(entry.outputs['2'].text).toEqual(['after the restart']);
    expect(await readFile(join(dirs.atlas, 'outputs', 'restart_00001_.txt'), 'utf8')).toBe('after the restart');
    // History from before the restart is still there too.
    expect(Object.keys((await call('/history')).json).length).toBeGreaterThanOrEqual(4);
  });
});
