// One memory budget for language and image models (inference.memoryBudget): with room for only one
// of the two, loading the image model evicts the idle language model and the other way round, a load
// waits while the other model is busy, and the log says which model made way for which.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageMemoryEstimate } from '../src/images/runtime.js';
import { generateDiffusersModel } from './fixtures/onnx/diffusers.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { call } from './support/jobs.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth | undefined;
const lines: string[] = [];
const logged = () => lines.map((l) => JSON.parse(l) as { msg: string; component?: string });

const CONFIG = { images: { executionProvider: 'cpu' }, inference: {} };

async function generateText(base: string, numPredict: number) {
  const r = await call(base, '/api/generate', {
    model: 'tiny',
    prompt: 'Tell a story',
    stream: false,
    options: { num_predict: numPredict, seed: 1 },
  });
  expect(r.status, r.text).toBe(200);
}

async function generateImage(base: string) {
  const r = await call(base, '/v1/images/generations', {
    model: 'tiny-sd',
    prompt: 'a red boat',
    size: '64x64',
    steps: 2,
    seed: 1,
    response_format: 'b64_json',
  });
  expect(r.status, r.text).toBe(200);
}

const loadedNames = async (base: string) =>
  ((await call(base, '/api/ps')).json.models as Array<{ name: string }>).map((m) => m.name);

beforeAll(async () => {
  dirs = await hearthDirs('hearth-images-memory-');
  await generateDiffusersModel({ dir: join(dirs.atlas, 'models', 'sd', 'tiny'), family: 'sd15' });
  await mkdir(join(dirs.root, 'models'));
  const models = await makeTestModels(join(dirs.root, 'models'));

  // First with the default budget, to learn what each model is estimated to hold.
  const first = await startHearthInProcess(dirs, CONFIG);
  try {
    const bytes = await readFile(models.chat);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await fetch(`${first.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
    expect(
      (await call(first.url, '/api/create', { model: 'tiny', files: { 'c.gguf': digest }, stream: false })).status,
    ).toBe(200);
    const created = await call(first.url, '/api/create', {
      model: 'tiny-sd',
      from: 'atlas:models/sd/tiny',
      stream: false,
    });
    expect(created.status, created.text).toBe(200);
    await generateText(first.url, 2);
    const ps = (await call(first.url, '/api/ps')).json.models as Array<{ name: string; size: number }>;
    const llm = ps.find((m) => m.name === 'tiny:latest')!.size;
    const sd = await first.ctx.models.find('tiny-sd');
    const image = imageMemoryEstimate(first.ctx.models.imageFiles(sd!)!);
    expect(llm).toBeGreaterThan(0);
    expect(image).toBeGreaterThan(0);
    // Room for the larger of the two plus half the smaller: never for both at once.
    CONFIG.inference = {
      ...CONFIG.inference,
      memoryBudget: Math.max(llm, image) + Math.floor(Math.min(llm, image) / 2),
    } as never;
  } finally {
    await first.close();
  }
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  hearth = await startHearthInProcess(dirs, CONFIG, {}, pino({ level: 'info' }, sink));
}, 240_000);

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('one memory budget for language and image models', () => {
  it('loading the image model evicts the idle language model, and the other way round; the log names both', async () => {
    const base = hearth!.url;
    await generateText(base, 2);
    expect(await loadedNames(base)).toContain('tiny:latest');

    await generateImage(base);
    expect(await loadedNames(base)).not.toContain('tiny:latest');
    expect(logged().map((l) => l.msg)).toContain(
      'memory: evicting idle language model "tiny:latest" to load image model "tiny-sd:latest"',
    );

    await generateText(base, 2);
    expect(await loadedNames(base)).toContain('tiny:latest');
    expect(logged().map((l) => l.msg)).toContain(
      'memory: evicting idle image model "tiny-sd:latest" to load language model "tiny:latest"',
    );
  }, 240_000);

  it('an image model waits while the language model is busy, then takes its place', async () => {
    const base = hearth!.url;
    const before = lines.length;
    // A long streamed generation keeps the language model busy: the image request goes out once the
    // first tokens arrived, and the stream is read to its end only after the image is asked for.
    const res = await fetch(`${base}/api/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'Tell a long story', options: { num_predict: 3000, seed: 2 } }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    const image = generateImage(base);
    for (;;) if ((await reader.read()).done) break;
    await image;
    const msgs = logged()
      .slice(before)
      .map((l) => l.msg);
    const waited = msgs.findIndex((m) => m.startsWith('memory: image model "tiny-sd:latest" waits for busy models'));
    const evicted = msgs.indexOf(
      'memory: evicting idle language model "tiny:latest" to load image model "tiny-sd:latest"',
    );
    expect(waited, msgs.join('\n')).toBeGreaterThanOrEqual(0);
    expect(evicted).toBeGreaterThan(waited);
  }, 240_000);
});
