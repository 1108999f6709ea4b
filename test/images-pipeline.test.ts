// Stable Diffusion on ONNX Runtime (src/images) on generated diffusers-layout models: the fixture
// graphs themselves, the tokenizer against a hand-built BPE, the sigma tables against published
// numbers, and the pipeline end to end (samplers, schedulers, batch, img2img, cancel, SDXL).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHearthError } from '../src/errors.js';
import { readLayout } from '../src/images/layout.js';
import { emptyLatent, ImagePipeline, toPng } from '../src/images/pipeline.js';
import { SAMPLERS } from '../src/images/samplers.js';
import { calculateSigmas, ModelSampling, SCHEDULERS, samplerSigmas } from '../src/images/schedule.js';
import { ClipTokenizer, parsePromptWeights } from '../src/images/tokenizer.js';
import { generateDiffusersModel } from './fixtures/onnx/diffusers.js';

let root: string;
let sd: string;
let sdxl: string;
let vpred: string;
let pipe: ImagePipeline;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hearth-images-'));
  [sd, sdxl, vpred] = await Promise.all([
    generateDiffusersModel({ dir: join(root, 'sd15'), family: 'sd15' }),
    generateDiffusersModel({ dir: join(root, 'sdxl'), family: 'sdxl' }),
    generateDiffusersModel({ dir: join(root, 'sd2v'), family: 'sd15', prediction: 'v_prediction', seed: 7 }),
  ]);
  pipe = await ImagePipeline.load(sd, { executionProviders: ['cpu'], threads: 1 });
});

afterAll(async () => {
  await pipe?.release();
  await rm(root, { recursive: true, force: true });
});

describe('generated fixtures run in ONNX Runtime with optimum’s names and shapes', () => {
  const run = async (path: string, feeds: Record<string, ort.Tensor>) => {
    const s = await ort.InferenceSession.create(path);
    try {
      const out = await s.run(feeds);
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.dims]));
    } finally {
      await s.release();
    }
  };
  const f32 = (dims: number[]) => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);

  it('SD 1.5: text_encoder, unet (external data), vae_decoder, vae_encoder', async () => {
    const ids = new ort.Tensor('int32', new Int32Array(2 * 77), [2, 77]);
    expect(await run(join(sd, 'text_encoder', 'model.onnx'), { input_ids: ids })).toEqual({
      last_hidden_state: [2, 77, 32],
      pooler_output: [2, 32],
    });
    const unet = await run(join(sd, 'unet', 'model.onnx'), {
      sample: f32([2, 4, 8, 12]),
      timestep: f32([1]),
      encoder_hidden_states: f32([2, 77, 32]),
    });
    expect(unet).toEqual({ out_sample: [2, 4, 8, 12] });
    expect(await run(join(sd, 'vae_decoder', 'model.onnx'), { latent_sample: f32([1, 4, 8, 8]) })).toEqual({
      sample: [1, 3, 64, 64],
    });
    expect(await run(join(sd, 'vae_encoder', 'model.onnx'), { sample: f32([1, 3, 64, 96]) })).toEqual({
      latent_sample: [1, 4, 8, 12],
    });
  });

  it('SDXL: two text encoders with hidden states and text_embeds; the unet takes text_embeds and time_ids', async () => {
    const ids = new ort.Tensor('int32', new Int32Array(77), [1, 77]);
    const te2 = await run(join(sdxl, 'text_encoder_2', 'model.onnx'), { input_ids: ids });
    expect(te2['text_embeds']).toEqual([1, 40]);
    expect(te2['hidden_states.1']).toEqual([1, 77, 40]);
    const unet = await run(join(sdxl, 'unet', 'model.onnx'), {
      sample: f32([2, 4, 8, 8]),
      timestep: f32([1]),
      encoder_hidden_states: f32([2, 77, 64]),
      text_embeds: f32([2, 40]),
      time_ids: f32([2, 6]),
    });
    expect(unet).toEqual({ out_sample: [2, 4, 8, 8] });
  });

  it('the unet refuses an odd latent size, as a real UNet does', async () => {
    await expect(
      run(join(sd, 'unet', 'model.onnx'), {
        sample: f32([1, 4, 9, 8]),
        timestep: f32([1]),
        encoder_hidden_states: f32([1, 77, 32]),
      }),
    ).rejects.toThrow();
  });
});

describe('model layout', () => {
  it('reads family, prediction type, scaling factor and size multiple', async () => {
    expect(await readLayout(sd)).toMatchObject({
      family: 'sd',
      prediction: 'epsilon',
      scalingFactor: 0.18215,
      latentMultiple: 8,
      hasVaeEncoder: true,
    });
    expect(await readLayout(sdxl)).toMatchObject({ family: 'sdxl', scalingFactor: 0.13025, latentMultiple: 4 });
    expect((await readLayout(vpred)).prediction).toBe('v_prediction');
  });

  it('refuses a .safetensors checkpoint naming the optimum-cli command', async () => {
    const file = join(root, 'model.safetensors');
    await writeFile(file, 'x');
    await expect(readLayout(file)).rejects.toThrow(/optimum-cli export onnx --model/);
    const folder = join(root, 'pytorch');
    await mkdir(join(folder, 'unet'), { recursive: true });
    await writeFile(join(folder, 'unet', 'diffusion_pytorch_model.safetensors'), 'x');
    await expect(readLayout(folder)).rejects.toThrow(/optimum-cli export onnx/);
  });

  it('refuses SD3 and Flux pipelines by name', async () => {
    const folder = join(root, 'flux');
    await generateDiffusersModel({ dir: folder, family: 'sd15' });
    await writeFile(join(folder, 'model_index.json'), JSON.stringify({ _class_name: 'FluxPipeline' }));
    const err = await readLayout(folder).catch((e: unknown) => e);
    expect(isHearthError(err, 'IMAGE_MODEL_INVALID')).toBe(true);
    expect(String(err)).toMatch(/FluxPipeline models are not supported/);
  });
});

describe('CLIP tokenizer on a hand-built BPE', () => {
  // ids are hand-computed from this vocabulary and these merges
  const vocab = {
    a: 0,
    b: 1,
    c: 2,
    'a</w>': 3,
    'b</w>': 4,
    'c</w>': 5,
    ab: 6,
    'abc</w>': 7,
    '<|startoftext|>': 8,
    '<|endoftext|>': 9,
    '!': 10,
  };
  const merges = ['a b', 'ab c</w>'];
  const config = { maxLength: 8, bos: '<|startoftext|>', eos: '<|endoftext|>', pad: '<|endoftext|>' };

  it('merges by rank, lowercases, and keeps unmerged pieces', () => {
    const tok = new ClipTokenizer(vocab, merges, config);
    expect(tok.encode('abc')).toEqual([7]);
    expect(tok.encode('ABC')).toEqual([7]);
    expect(tok.encode('ab')).toEqual([0, 4]); // "a b</w>" is not a merge
    expect(tok.encode('cab  abc')).toEqual([2, 0, 4, 7]);
  });

  it('wraps in bos/eos, pads with the configured pad token, truncates to the window', () => {
    const tok = new ClipTokenizer(vocab, merges, config);
    expect(tok.window([{ text: 'cab abc', weight: 1 }]).ids).toEqual([8, 2, 0, 4, 7, 9, 9, 9]);
    const bang = new ClipTokenizer(vocab, merges, { ...config, pad: '!' });
    expect(bang.window([{ text: 'abc', weight: 1 }]).ids).toEqual([8, 7, 9, 10, 10, 10, 10, 10]);
    const short = new ClipTokenizer(vocab, merges, { ...config, maxLength: 5 });
    expect(short.window([{ text: 'cab abc', weight: 1 }]).ids).toEqual([8, 2, 0, 4, 9]);
    expect(
      tok.window([
        { text: 'abc', weight: 1 },
        { text: 'ab', weight: 1.5 },
      ]).weights,
    ).toEqual([1, 1, 1.5, 1.5, 1, 1, 1, 1]);
  });

  it('loads tokenizer_config.json with AddedToken objects', async () => {
    const tok = await ClipTokenizer.load(join(sdxl, 'tokenizer_2'));
    expect(tok.padId).toBe(tok.vocab['!']);
    expect(tok.config.maxLength).toBe(77);
  });
});

describe('ComfyUI prompt weighting', () => {
  it('parses (word:1.2), bare parentheses, nesting and escapes', () => {
    expect(parsePromptWeights('a (cat:1.2) on a mat')).toEqual([
      { text: 'a ', weight: 1 },
      { text: 'cat', weight: 1.2 },
      { text: ' on a mat', weight: 1 },
    ]);
    const nested = parsePromptWeights('((dog))');
    expect(nested[0]!.text).toBe('dog');
    expect(nested[0]!.weight).toBeCloseTo(1.21, 10);
    expect(parsePromptWeights('a \\(literal\\) b')).toEqual([{ text: 'a (literal) b', weight: 1 }]);
    expect(parsePromptWeights('(red:0.5) (blue:x)')[2]).toEqual({ text: 'blue:x', weight: 1.1 });
  });
});

describe('sigma grid (SD 1.5 scheduler config) against published values', () => {
  const s = new ModelSampling();
  it('the training table: sigma_max 14.6146, sigma_min 0.0292, sqrt(alphas_cumprod[999]) 0.068265', () => {
    // k-diffusion / A1111 quote sigma range 0.0292–14.6146 for SD; Lin et al. 2023 give √ᾱ_T = 0.068265
    expect(s.sigmaMax).toBeCloseTo(14.6146, 4);
    expect(s.sigmaMin).toBeCloseTo(0.0292, 4);
    expect(Math.sqrt(s.alphasCumprod[999]!)).toBeCloseTo(0.068265, 6);
    expect(s.timestep(s.sigmaMax)).toBe(999);
    expect(s.timestep(s.sigmaMin)).toBe(0);
  });

  it('normal: diffusers’ linspace timesteps 999, 888, …, 0 then 0', () => {
    const sig = calculateSigmas(s, 'normal', 10);
    expect(sig).toHaveLength(11);
    expect(sig.slice(0, 10).map((x) => s.timestep(x))).toEqual([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    expect(sig[10]).toBe(0);
  });

  it('simple: diffusers’ trailing timesteps 999, 899, …, 99', () => {
    const sig = calculateSigmas(s, 'simple', 10);
    expect(sig.slice(0, 10).map((x) => s.timestep(x))).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
  });

  it('sgm_uniform: steps+1 points with the last dropped', () => {
    const sig = calculateSigmas(s, 'sgm_uniform', 4);
    // linspace(999, 0, 5) without its last point, sigmas interpolated in log space between table entries
    for (const [i, t] of [999, 749.25, 499.5, 249.75].entries()) expect(sig[i]).toBeCloseTo(s.sigma(t), 6);
    expect(sig).toHaveLength(5);
    expect(sig[4]).toBe(0);
  });

  it('karras and exponential: end points and their spacing rules', () => {
    const k = calculateSigmas(s, 'karras', 3);
    expect(k[0]).toBeCloseTo(14.6146, 4);
    expect(k[1]).toBeCloseTo(((14.614642 ** (1 / 7) + 0.0291675 ** (1 / 7)) / 2) ** 7, 4);
    expect(k[2]).toBeCloseTo(0.0292, 4);
    const e = calculateSigmas(s, 'exponential', 3);
    expect(e[1]).toBeCloseTo(Math.sqrt(14.614642 * 0.0291675), 4);
    expect(e[3]).toBe(0);
  });

  it('denoise < 1 keeps the last steps+1 sigmas of steps/denoise', () => {
    const full = calculateSigmas(s, 'normal', 20);
    expect(samplerSigmas(s, 'normal', 10, 0.5)).toEqual(full.slice(-11));
  });
});

describe('pipeline on the generated SD 1.5 model', () => {
  const latent = () => emptyLatent(64, 64, 1);
  const base = { seed: 42, steps: 3, cfg: 7, sampler: 'euler', scheduler: 'normal', denoise: 1 } as const;

  it('text to image: 64×64 PNG, and the same seed gives the same bytes', async () => {
    const positive = await pipe.encodePrompt('a photo of a (cat:1.2)');
    const negative = await pipe.encodePrompt('blurry');
    const steps: number[] = [];
    const run = async (seed: number) => {
      const out = await pipe.sample({
        ...base,
        seed,
        positive,
        negative,
        latent: latent(),
        onStep: (i) => steps.push(i),
      });
      const [img] = await pipe.decode(out);
      return toPng(img!);
    };
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    expect(steps).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3]);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
    const meta = await sharp(a).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 64, 64]);
  });

  it('every sampler and scheduler runs and gives finite latents', async () => {
    const positive = await pipe.encodePrompt('a red house');
    const negative = await pipe.encodePrompt('');
    for (const sampler of SAMPLERS)
      for (const scheduler of SCHEDULERS) {
        const out = await pipe.sample({ ...base, sampler, scheduler, positive, negative, latent: latent() });
        expect(out.data.every(Number.isFinite), `${sampler}/${scheduler}`).toBe(true);
      }
  });

  it('batch 2 gives two different images; a size off the 64-pixel grid is padded and cropped', async () => {
    const positive = await pipe.encodePrompt('a dog');
    const negative = await pipe.encodePrompt('');
    const out = await pipe.sample({ ...base, positive, negative, latent: emptyLatent(72, 64, 2) });
    expect(out.shape).toEqual([2, 4, 8, 9]);
    const imgs = await pipe.decode(out);
    expect(imgs.map((i) => [i.width, i.height])).toEqual([
      [72, 64],
      [72, 64],
    ]);
    expect(Buffer.from(imgs[0]!.data).equals(Buffer.from(imgs[1]!.data))).toBe(false);
  });

  it('img2img: encode, denoise 0.5 runs half the steps, denoise 0 returns the input', async () => {
    const positive = await pipe.encodePrompt('a tree');
    const negative = await pipe.encodePrompt('');
    const px = new Uint8Array(64 * 64 * 3).fill(200);
    const encoded = await pipe.encode([{ width: 64, height: 64, data: px }]);
    expect(encoded.shape).toEqual([1, 4, 8, 8]);
    let count = 0;
    const out = await pipe.sample({
      ...base,
      steps: 4,
      denoise: 0.5,
      positive,
      negative,
      latent: encoded,
      onStep: () => count++,
    });
    expect(count).toBe(4);
    expect(Buffer.from(out.data.buffer).equals(Buffer.from(encoded.data.buffer))).toBe(false);
    const same = await pipe.sample({ ...base, denoise: 0, positive, negative, latent: encoded });
    expect(same.data).toEqual(encoded.data);
  });

  it('an abort stops at the next step', async () => {
    const positive = await pipe.encodePrompt('a cat');
    const controller = new AbortController();
    const seen: number[] = [];
    const err = await pipe
      .sample({
        ...base,
        steps: 10,
        positive,
        negative: positive,
        latent: latent(),
        signal: controller.signal,
        onStep: (i) => {
          seen.push(i);
          if (i === 2) controller.abort();
        },
      })
      .catch((e: unknown) => e);
    expect(isHearthError(err, 'IMAGE_ABORTED')).toBe(true);
    expect(seen).toEqual([1, 2]);
  });
});

describe('other model families', () => {
  it('SDXL: pooled embeds and time ids, 64×64', async () => {
    const xl = await ImagePipeline.load(sdxl, { executionProviders: ['cpu'], threads: 1 });
    try {
      const positive = await xl.encodePrompt('a blue house');
      expect(positive.width).toBe(64);
      expect(positive.pooled).toHaveLength(40);
      const out = await xl.sample({
        seed: 1,
        steps: 2,
        cfg: 5,
        sampler: 'dpmpp_2m',
        scheduler: 'karras',
        denoise: 1,
        positive,
        negative: await xl.encodePrompt(''),
        latent: emptyLatent(64, 64, 1),
      });
      const [img] = await xl.decode(out);
      expect([img!.width, img!.height]).toEqual([64, 64]);
    } finally {
      await xl.release();
    }
  });

  it('v_prediction models sample', async () => {
    const v = await ImagePipeline.load(vpred, { executionProviders: ['cpu'], threads: 1 });
    try {
      const c = await v.encodePrompt('a cat');
      const out = await v.sample({
        ...{ seed: 3, steps: 2, cfg: 1, sampler: 'euler_ancestral', scheduler: 'simple', denoise: 1 },
        positive: c,
        negative: c,
        latent: emptyLatent(64, 64, 1),
      });
      expect(out.data.every(Number.isFinite)).toBe(true);
    } finally {
      await v.release();
    }
  });

  it('an unavailable execution provider falls back to the next one', async () => {
    const p = await ImagePipeline.load(sd, { executionProviders: ['cuda', 'cpu'], threads: 1 });
    expect(p.provider).toBe('cpu');
    await p.release();
  });
});
