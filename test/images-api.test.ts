// Image generation through hearth's APIs on a generated diffusers-layout model registered in the
// model library: ComfyUI's default workflow over /prompt and the WebSocket, the PNG on Atlas with its
// metadata, ComfyUI-shaped refusals, interrupts, and the ComfyUI routes clients probe.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI, { BadRequestError, NotFoundError, toFile } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPngText } from '../src/workflows/index.js';
import { generateDiffusersModel } from './fixtures/onnx/diffusers.js';
import { connectComfy, doneFrame } from './support/comfy.js';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  REPO_ROOT,
  startHearthInProcess,
} from './support/hearth.js';
import { call as callHearth } from './support/http.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;

const call = (path: string, body?: unknown, method?: string) => callHearth(hearth.url, path, body, method);

const connect = (clientId: string) => connectComfy(hearth.url, clientId);
const done = doneFrame;

/** ComfyUI's default workflow in API format, with only the checkpoint name changed. */
function defaultWorkflow(ckpt: string, overrides: { steps?: number; seed?: number } = {}) {
  return {
    '3': {
      class_type: 'KSampler',
      inputs: {
        cfg: 8,
        denoise: 1,
        latent_image: ['5', 0],
        model: ['4', 0],
        negative: ['7', 0],
        positive: ['6', 0],
        sampler_name: 'euler',
        scheduler: 'normal',
        seed: overrides.seed ?? 8566257,
        steps: overrides.steps ?? 20,
      },
    },
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ckpt } },
    '5': { class_type: 'EmptyLatentImage', inputs: { batch_size: 1, height: 512, width: 512 } },
    '6': {
      class_type: 'CLIPTextEncode',
      inputs: { clip: ['4', 1], text: 'beautiful scenery nature glass bottle landscape, , purple galaxy bottle,' },
    },
    '7': { class_type: 'CLIPTextEncode', inputs: { clip: ['4', 1], text: 'text, watermark' } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] } },
  };
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-images-api-');
  await generateDiffusersModel({ dir: join(dirs.atlas, 'models', 'sd', 'tiny'), family: 'sd15' });
  hearth = await startHearthInProcess(dirs, {
    workflows: { pollInterval: '100ms' },
    images: { executionProvider: 'cpu' },
  });
  const created = await fetch(`${hearth.url}/api/create`, {
    method: 'POST',
    body: JSON.stringify({ model: 'tiny-sd', from: 'atlas:models/sd/tiny', stream: false }),
    headers: { 'content-type': 'application/json' },
  });
  expect(created.status, await created.clone().text()).toBe(200);
});
afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('image models in the library', () => {
  it('/api/tags lists the registered layout as an ONNX image model', async () => {
    const tags = await call('/api/tags');
    const m = tags.json.models.find((x: any) => x.name === 'tiny-sd:latest');
    expect(m.details).toMatchObject({ format: 'onnx', family: 'stable-diffusion' });
    expect(m.size).toBeGreaterThan(1000);
  });

  it('an LLM route refuses it, naming what to use instead', async () => {
    const r = await call('/api/generate', { model: 'tiny-sd', prompt: 'hi', stream: false });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/is an image model/);
  });

  it('/object_info lists it in CheckpointLoaderSimple and the samplers and schedulers in KSampler', async () => {
    const info = (await call('/object_info')).json;
    expect(info.CheckpointLoaderSimple.input.required.ckpt_name[0]).toEqual(['tiny-sd:latest']);
    expect(info.CheckpointLoaderSimple.output).toEqual(['MODEL', 'CLIP', 'VAE']);
    const ks = info.KSampler;
    expect(ks.input_order.required).toEqual([
      'model',
      'seed',
      'steps',
      'cfg',
      'sampler_name',
      'scheduler',
      'positive',
      'negative',
      'latent_image',
      'denoise',
    ]);
    expect(ks.input.required.sampler_name[0]).toEqual(['euler', 'euler_ancestral', 'dpmpp_2m', 'ddim', 'lcm']);
    expect(ks.input.required.scheduler[0]).toEqual(['normal', 'karras', 'exponential', 'sgm_uniform', 'simple']);
    expect(ks.input.required.steps[1]).toMatchObject({ default: 20, min: 1, max: 10000 });
    expect(info.EmptyLatentImage.input.required.width[1]).toMatchObject({ default: 512, min: 16, step: 8 });
    expect(info.LoadImage.output).toEqual(['IMAGE', 'MASK']);
    expect(info.LoadImage.input.required.image[1]).toMatchObject({ image_upload: true });
  });
});

describe("ComfyUI's default workflow", () => {
  it('runs unchanged through /prompt and the WebSocket; the PNG lands on Atlas with prompt and workflow', async () => {
    const ws = await connect('images-a');
    const prompt = defaultWorkflow('tiny-sd:latest');
    const sent = await call('/prompt', {
      prompt,
      client_id: 'images-a',
      extra_data: { extra_pnginfo: { workflow: { nodes: [{ id: 3, type: 'KSampler' }] } } },
    });
    expect(sent.status).toBe(200);
    const id = sent.json.prompt_id;
    await ws.until(done(id));
    const mine = ws.frames.filter((f) => f.data.prompt_id === id);
    const kinds = mine
      .filter((f) => f.type !== 'progress' || f.data.node === '3')
      .map((f) => (f.type === 'executing' ? `executing:${f.data.node}` : f.type));
    const firstProgress = kinds.indexOf('progress');
    expect(kinds.slice(0, 2)).toEqual(['execution_start', 'execution_cached']);
    expect(kinds.filter((k) => k === 'progress')).toHaveLength(20);
    expect(mine.filter((f) => f.type === 'progress' && f.data.node === '3').map((f) => f.data.value)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(kinds[firstProgress - 1]).toBe('executing:3');
    expect(kinds.slice(-4)).toEqual(['executing:9', 'executed', 'execution_success', 'executing:null']);
    const executed = mine.find((f) => f.type === 'executed');
    const [file] = executed.data.output.images;
    expect(file).toEqual({ filename: 'ComfyUI_00001_.png', subfolder: '', type: 'output' });
    const png = await readFile(join(dirs.atlas, 'outputs', 'ComfyUI_00001_.png'));
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 512, 512]);
    const text = readPngText(png);
    expect(JSON.parse(text['prompt']!)).toEqual(prompt);
    expect(JSON.parse(text['workflow']!)).toEqual({ nodes: [{ id: 3, type: 'KSampler' }] });
    const view = await fetch(`${hearth.url}/view?filename=ComfyUI_00001_.png&type=output`);
    expect(Buffer.from(await view.arrayBuffer()).equals(png)).toBe(true);
    // the history was on Atlas before execution_success reached the client
    expect((await call(`/history/${id}`)).json[id].status.status_str).toBe('success');
    ws.close();
  });

  it('the same seed gives the same bytes; another seed another image', async () => {
    const run = async (seed: number, prefix: string) => {
      const p = defaultWorkflow('tiny-sd:latest', { steps: 3, seed });
      (p['9'].inputs as any).filename_prefix = prefix;
      (p['5'].inputs as any).width = 64;
      (p['5'].inputs as any).height = 64;
      const sent = await call('/prompt', { prompt: p });
      expect(sent.status, JSON.stringify(sent.json)).toBe(200);
      for (let i = 0; i < 600; i++) {
        const h = (await call(`/history/${sent.json.prompt_id}`)).json[sent.json.prompt_id];
        if (h) {
          const img = h.outputs['9'].images[0];
          return readFile(join(dirs.atlas, 'outputs', img.subfolder, img.filename));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('no history');
    };
    const a = await run(1, 'seed/a');
    const b = await run(1, 'seed/b');
    const c = await run(2, 'seed/c');
    // the PNGs embed the prompt (which names the prefix), so compare the pixels
    const pixels = (buf: Buffer) => sharp(buf).raw().toBuffer();
    expect((await pixels(a)).equals(await pixels(b))).toBe(true);
    expect((await pixels(a)).equals(await pixels(c))).toBe(false);
  });

  it('/interrupt stops the sampler at the next step', async () => {
    const ws = await connect('images-b');
    const sent = await call('/prompt', {
      prompt: defaultWorkflow('tiny-sd:latest', { steps: 10000, seed: 5 }),
      client_id: 'images-b',
    });
    expect(sent.status, JSON.stringify(sent.json)).toBe(200);
    const id = sent.json.prompt_id;
    await ws.until((f) => f.type === 'progress' && f.data.prompt_id === id && f.data.value >= 2);
    const r = await fetch(`${hearth.url}/interrupt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(200);
    await ws.until(done(id));
    const stopped = ws.frames.find((f) => f.type === 'execution_interrupted' && f.data.prompt_id === id);
    expect(stopped.data).toMatchObject({ node_id: '3', node_type: 'KSampler' });
    expect(ws.frames.filter((f) => f.type === 'progress' && f.data.prompt_id === id).length).toBeLessThan(10000);
    ws.close();
  });
});

describe('failures while running', () => {
  it('an ONNX Runtime error fails the prompt with execution_error naming the node; the server stays up', async () => {
    await generateDiffusersModel({ dir: join(dirs.atlas, 'models', 'sd', 'broken'), family: 'sd15' });
    await writeFile(join(dirs.atlas, 'models', 'sd', 'broken', 'unet', 'model.onnx'), 'not a protobuf');
    const created = await call('/api/create', { model: 'broken-sd', from: 'atlas:models/sd/broken', stream: false });
    expect(created.status).toBe(200);
    const ws = await connect('images-c');
    const p = defaultWorkflow('broken-sd:latest', { steps: 2 });
    const sent = await call('/prompt', { prompt: p, client_id: 'images-c' });
    const id = sent.json.prompt_id;
    await ws.until(done(id));
    const err = ws.frames.find((f) => f.type === 'execution_error' && f.data.prompt_id === id);
    expect(err.data).toMatchObject({
      node_id: '4',
      node_type: 'CheckpointLoaderSimple',
      exception_type: 'IMAGE_RUNTIME_FAILED',
    });
    expect(err.data.exception_message).toMatch(/ONNX Runtime failed in loading unet/);
    expect((await call(`/history/${id}`)).json[id].status.status_str).toBe('error');
    expect((await call('/object_info/KSampler')).status).toBe(200);
    ws.close();
  });

  it('/metrics counts image steps and images and names the execution provider', async () => {
    const gen = { model: 'tiny-sd', prompt: 'a cat', size: '64x64', steps: 1 };
    expect((await call('/v1/images/generations', gen)).status).toBe(200);
    const text = await (await fetch(`${hearth.url}/metrics`)).text();
    expect(Number(/^hearth_image_steps_total (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^hearth_images_total (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^hearth_image_execution_provider\{provider="cpu"\} 1/m);
  });
});

describe('refusals at queue time, in ComfyUI’s shapes', () => {
  const expectNodeError = async (prompt: unknown, node: string, type: string) => {
    const r = await call('/prompt', { prompt });
    expect(r.status).toBe(400);
    expect(r.json.node_errors[node].errors.map((e: any) => e.type)).toContain(type);
    return r.json;
  };

  it('an unknown checkpoint, an unknown sampler, a missing input, a wrong link, a size out of range', async () => {
    await expectNodeError(defaultWorkflow('nope.safetensors'), '4', 'value_not_in_list');
    const badSampler = defaultWorkflow('tiny-sd:latest');
    badSampler['3'].inputs.sampler_name = 'dpmpp_sde_gpu';
    await expectNodeError(badSampler, '3', 'value_not_in_list');
    const missing = defaultWorkflow('tiny-sd:latest') as any;
    delete missing['3'].inputs.positive;
    await expectNodeError(missing, '3', 'required_input_missing');
    const wrongLink = defaultWorkflow('tiny-sd:latest') as any;
    wrongLink['3'].inputs.positive = ['5', 0];
    await expectNodeError(wrongLink, '3', 'return_type_mismatch');
    const tooSmall = defaultWorkflow('tiny-sd:latest') as any;
    tooSmall['5'].inputs.width = 8;
    await expectNodeError(tooSmall, '5', 'value_smaller_than_min');
    expect((await call('/queue')).json).toEqual({ queue_running: [], queue_pending: [] });
  });

  it('a class hearth does not run yet (LoraLoader) is named in node_errors', async () => {
    const p = defaultWorkflow('tiny-sd:latest') as any;
    p['10'] = { class_type: 'LoraLoader', inputs: { model: ['4', 0], clip: ['4', 1], lora_name: 'x.safetensors' } };
    const r = await call('/prompt', { prompt: p });
    expect(r.status).toBe(400);
    expect(r.json.error.type).toBe('invalid_prompt');
    expect(r.json.node_errors['10']).toMatchObject({ class_type: 'LoraLoader' });
    expect(r.json.node_errors['10'].errors[0].details).toMatch(/LoRA/);
  });
});

describe('the ComfyUI routes clients probe', () => {
  it('/models, /models/checkpoints, /features, /users, /internal/logs, /free', async () => {
    expect((await call('/models')).json).toContain('checkpoints');
    expect((await call('/api/models/checkpoints')).json).toContain('tiny-sd:latest');
    expect((await call('/models/loras')).json).toEqual([]);
    expect((await call('/models/nope')).status).toBe(404);
    expect((await call('/features')).json).toMatchObject({ max_upload_size: expect.any(Number) });
    expect((await call('/users')).json).toEqual({ storage: 'server', migrated: true });
    expect((await call('/internal/logs')).status).toBe(200);
    expect((await call('/free', { unload_models: true, free_memory: true })).status).toBe(200);
  });

  it('/settings are kept on Atlas', async () => {
    expect((await call('/settings', { 'Comfy.LinkRenderMode': 2 })).status).toBe(200);
    expect((await call('/settings/Comfy.Theme', JSON.stringify('dark'))).status).toBe(200);
    expect((await call('/settings')).json).toEqual({ 'Comfy.LinkRenderMode': 2, 'Comfy.Theme': 'dark' });
    expect((await call('/settings/Comfy.Theme')).json).toBe('dark');
    expect(JSON.parse(await readFile(join(dirs.atlas, 'comfy', 'user', 'comfy.settings.json'), 'utf8'))).toMatchObject({
      'Comfy.Theme': 'dark',
    });
  });

  it('/userdata workflows are hearth’s saved workflows; other files live on Atlas', async () => {
    const wf = { nodes: [{ id: 1 }], links: [] };
    const put = await fetch(`${hearth.url}/userdata/workflows%2Fmine.json?overwrite=true`, {
      method: 'POST',
      body: JSON.stringify(wf),
      headers: { 'content-type': 'application/json' },
    });
    expect(put.status).toBe(200);
    expect((await call('/api/workflows/mine')).json.workflow).toEqual(wf);
    expect((await call('/userdata?dir=workflows')).json).toContain('mine.json');
    expect((await call('/userdata/workflows%2Fmine.json')).json).toEqual(wf);
    const css = await fetch(`${hearth.url}/userdata/user.css`, { method: 'POST', body: 'body{}' });
    expect(css.status).toBe(200);
    expect(await (await fetch(`${hearth.url}/userdata/user.css`)).text()).toBe('body{}');
    expect((await call('/userdata/workflows%2Fmine.json', undefined, 'DELETE')).status).toBe(204);
    expect((await call('/userdata/workflows%2Fmine.json')).status).toBe(404);
    expect((await call('/userdata/..%2F..%2Fetc%2Fpasswd')).status).toBe(400);
  });

  it('/view of a missing file is a 404 that does not show where Atlas is', async () => {
    const r = await call('/view?filename=missing.png&type=output');
    expect(r.status).toBe(404);
    expect(JSON.stringify(r.json)).not.toContain(dirs.atlas);
  });
});

describe('OpenAI images API through the official SDK', () => {
  const client = () => new OpenAI({ baseURL: `${hearth.url}/v1`, apiKey: 'unused', maxRetries: 0 });

  it('images.generate: n, size, seed; b64_json PNGs, the same seed the same image', async () => {
    const a = await client().images.generate({
      model: 'tiny-sd',
      prompt: 'a red house',
      n: 2,
      size: '64x64' as never,
      response_format: 'b64_json',
      // hearth's extensions ride along in the body
      ...({ seed: 7, steps: 3 } as object),
    });
    expect(a.data).toHaveLength(2);
    const png = Buffer.from(a.data![0]!.b64_json!, 'base64');
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 64, height: 64 });
    const b = await client().images.generate({
      model: 'tiny-sd',
      prompt: 'a red house',
      n: 1,
      size: '64x64' as never,
      ...({ seed: 7, steps: 3 } as object),
    });
    expect(b.data![0]!.b64_json).toBe(a.data![0]!.b64_json);
  });

  it('response_format url: the PNG is on Atlas and the URL serves it', async () => {
    const r = await client().images.generate({
      model: 'tiny-sd',
      prompt: 'a tree',
      size: '64x64' as never,
      response_format: 'url',
      ...({ steps: 2 } as object),
    });
    const url = r.data![0]!.url!;
    const got = Buffer.from(await (await fetch(url)).arrayBuffer());
    const name = new URL(url).searchParams.get('filename')!;
    expect(got.equals(await readFile(join(dirs.atlas, 'outputs', 'openai', name)))).toBe(true);
  });

  it('images.edit: img2img from an uploaded image', async () => {
    const src = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#3060c0' } })
      .png()
      .toBuffer();
    const r = await client().images.edit({
      model: 'tiny-sd',
      prompt: 'a blue house',
      image: await toFile(src, 'in.png', { type: 'image/png' }),
      ...({ steps: 4, strength: 0.5, seed: 1 } as object),
    });
    const out = Buffer.from(r.data![0]!.b64_json!, 'base64');
    expect(await sharp(out).metadata()).toMatchObject({ width: 64, height: 64 });
  });

  it('bad input: unknown model 404, bad size and language model 400, in OpenAI’s error shape', async () => {
    await expect(client().images.generate({ model: 'nope', prompt: 'x' })).rejects.toBeInstanceOf(NotFoundError);
    const err = await client()
      .images.generate({ model: 'tiny-sd', prompt: 'x', size: '100x7' as never })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).message).toMatch(/multiples of 8/);
  });
});

describe('CLI', () => {
  // the CLI from source (tsx), against this in-process hearth
  const cli = (args: string[]) =>
    promisify(execFile)(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args],
      {
        cwd: dirs.root,
        env: {
          PATH: process.env['PATH'] ?? '',
          HOME: dirs.home,
          HEARTH_HOST: hearth.url,
          NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true',
        },
        timeout: 90_000,
      },
    );

  it('hearth create FROM ./folder uploads the layout; hearth imagine writes a PNG with a progress bar', async () => {
    await generateDiffusersModel({ dir: join(dirs.root, 'local-sd'), family: 'sd15', seed: 3 });
    await writeFile(join(dirs.root, 'Modelfile'), 'FROM ./local-sd\n');
    const created = await cli(['create', 'uploaded-sd', '-f', join(dirs.root, 'Modelfile')]);
    expect(created.stdout).toMatch(/success/);
    const tags = (await call('/api/tags')).json.models.map((m: any) => m.name);
    expect(tags).toContain('uploaded-sd:latest');
    const out = join(dirs.root, 'cat.png');
    const run = await cli([
      'imagine',
      'uploaded-sd',
      'a cat',
      '-o',
      out,
      '--steps',
      '3',
      '--seed',
      '1',
      '--size',
      '64x64',
    ]);
    expect(run.stderr).toMatch(/sampling .* 3\/3 steps/);
    expect(await sharp(await readFile(out)).metadata()).toMatchObject({ format: 'png', width: 64, height: 64 });
  });
});
