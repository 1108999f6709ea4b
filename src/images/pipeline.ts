import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { HearthError } from '../errors.js';
import { type ImageModelLayout, readLayout } from './layout.js';
import { type SamplerName, SeededNoise, sample } from './samplers.js';
import { ModelSampling, type SchedulerName, samplerSigmas } from './schedule.js';
import { ClipTokenizer, parsePromptWeights } from './tokenizer.js';

/** ComfyUI's LATENT: raw VAE latents (not yet multiplied by the scaling factor), NCHW. */
export interface Latent {
  readonly kind: 'latent';
  readonly shape: readonly [number, number, number, number];
  readonly data: Float32Array;
}

/** ComfyUI's CONDITIONING for one prompt: the token embeddings (one 77-token window) and, for SDXL, the pooled embedding. */
export interface Conditioning {
  readonly kind: 'conditioning';
  /** [tokens, width] */
  readonly embeds: Float32Array;
  readonly tokens: number;
  readonly width: number;
  readonly pooled: Float32Array | null;
}

/** Decoded pixels: RGB, row-major, one per batch item. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export interface SampleRequest {
  positive: Conditioning;
  negative: Conditioning;
  latent: Latent;
  seed: bigint | number;
  steps: number;
  cfg: number;
  sampler: SamplerName;
  scheduler: SchedulerName;
  denoise: number;
  /** KSamplerAdvanced: false leaves the noise out (add_noise disable) */
  addNoise?: boolean;
  startStep?: number;
  endStep?: number;
  /** KSamplerAdvanced return_with_leftover_noise: true keeps the last sigma (no full denoise) */
  leftoverNoise?: boolean;
  signal?: AbortSignal;
  /** after each step: (done, total) */
  onStep?: (step: number, total: number) => void;
}

export interface PipelineOptions {
  /** ONNX Runtime execution providers in order of preference, e.g. ['cuda', 'cpu'] */
  executionProviders: string[];
  /** intra-op threads for ONNX Runtime (0 = its default) */
  threads?: number;
}

/** The steps the UNet ran, for /metrics. */
export const imageCounters = { steps: 0, images: 0 };

type Session = ort.InferenceSession;

function tensor(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', data, [...dims]);
}

/** The stable error an ONNX Runtime failure becomes (the workflow executor names the node). */
function ortFailure(part: string, err: unknown): HearthError {
  return new HearthError('IMAGE_RUNTIME_FAILED', [part, (err as Error).message ?? String(err)], {
    cause: err,
  });
}

/** A Stable Diffusion model loaded into ONNX Runtime sessions (SD 1.x/2.x and SDXL, diffusers ONNX layout). */
export class ImagePipeline {
  private readonly sampling: ModelSampling;
  private vaeEncoder: Session | undefined;

  private constructor(
    readonly dir: string,
    readonly layout: ImageModelLayout,
    readonly provider: string,
    private readonly options: ort.InferenceSession.SessionOptions,
    private readonly tokenizers: ClipTokenizer[],
    private readonly textEncoders: Session[],
    private readonly unet: Session,
    private readonly vaeDecoder: Session,
  ) {
    this.sampling = new ModelSampling(layout.betas);
  }

  static async load(dir: string, opts: PipelineOptions): Promise<ImagePipeline> {
    const layout = await readLayout(dir);
    const providers = opts.executionProviders.length ? opts.executionProviders : ['cpu'];
    // Try each provider in turn: a CUDA provider that is not installed fails here, and CPU follows.
    let provider = '';
    let options: ort.InferenceSession.SessionOptions = {};
    let unet: Session | undefined;
    const errors: string[] = [];
    for (const p of providers) {
      options = {
        executionProviders: [p],
        graphOptimizationLevel: 'all',
        ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
      };
      try {
        unet = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'), options);
        provider = p;
        break;
      } catch (err) {
        errors.push(`${p}: ${(err as Error).message}`);
      }
    }
    if (!unet) throw ortFailure('loading unet', new Error(errors.join('; ')));
    const open = async (part: string) => {
      try {
        return await ort.InferenceSession.create(join(dir, part, 'model.onnx'), options);
      } catch (err) {
        throw ortFailure(`loading ${part}`, err);
      }
    };
    const sdxl = layout.family === 'sdxl';
    const tokenizers = [await ClipTokenizer.load(join(dir, 'tokenizer'))];
    const encoders = [await open('text_encoder')];
    if (sdxl) {
      tokenizers.push(await ClipTokenizer.load(join(dir, 'tokenizer_2')));
      encoders.push(await open('text_encoder_2'));
    }
    const vaeDecoder = await open('vae_decoder');
    return new ImagePipeline(dir, layout, provider, options, tokenizers, encoders, unet, vaeDecoder);
  }

  async release(): Promise<void> {
    for (const s of [...this.textEncoders, this.unet, this.vaeDecoder, ...(this.vaeEncoder ? [this.vaeEncoder] : [])])
      await s.release().catch(() => {});
  }

  /** Text → conditioning, with ComfyUI's `(word:1.2)` weighting. */
  async encodePrompt(text: string): Promise<Conditioning> {
    const pieces = parsePromptWeights(text);
    const weighted = pieces.some((p) => p.weight !== 1);
    const parts: Array<{ hidden: Float32Array; width: number; pooled: Float32Array | null }> = [];
    for (let e = 0; e < this.textEncoders.length; e++) {
      const tok = this.tokenizers[e]!;
      const { ids, weights } = tok.window(pieces);
      const out = await this.encodeIds(e, ids);
      if (weighted) {
        // ComfyUI: z = (z - z_empty) * weight + z_empty, per token, against the empty prompt's encoding
        const empty = await this.encodeIds(e, tok.window([]).ids);
        for (let t = 0; t < ids.length; t++) {
          const w = weights[t]!;
          if (w === 1) continue;
          for (let k = 0; k < out.width; k++) {
            const i = t * out.width + k;
            out.hidden[i] = (out.hidden[i]! - empty.hidden[i]!) * w + empty.hidden[i]!;
          }
        }
      }
      parts.push(out);
    }
    const tokens = this.tokenizers[0]!.config.maxLength;
    if (parts.length === 1) {
      const p = parts[0]!;
      return { kind: 'conditioning', embeds: p.hidden, tokens, width: p.width, pooled: null };
    }
    // SDXL: both encoders' penultimate hidden states side by side; the pooled embedding is text_encoder_2's
    const width = parts.reduce((a, p) => a + p.width, 0);
    const embeds = new Float32Array(tokens * width);
    for (let t = 0; t < tokens; t++) {
      let off = 0;
      for (const p of parts) {
        embeds.set(p.hidden.subarray(t * p.width, (t + 1) * p.width), t * width + off);
        off += p.width;
      }
    }
    return { kind: 'conditioning', embeds, tokens, width, pooled: parts[1]!.pooled };
  }

  private async encodeIds(
    e: number,
    ids: number[],
  ): Promise<{ hidden: Float32Array; width: number; pooled: Float32Array | null }> {
    const session = this.textEncoders[e]!;
    const sdxl = this.layout.family === 'sdxl';
    let out: ort.InferenceSession.OnnxValueMapType;
    try {
      out = await session.run({ input_ids: new ort.Tensor('int32', Int32Array.from(ids), [1, ids.length]) });
    } catch (err) {
      throw ortFailure(e === 0 ? 'text_encoder' : 'text_encoder_2', err);
    }
    // SD 1.x/2.x take the last hidden state; SDXL the penultimate layer (hidden_states[-2]) of each encoder
    let hiddenName = 'last_hidden_state';
    if (sdxl) {
      const layers = session.outputNames.filter((n) => n.startsWith('hidden_states.')).length;
      if (layers >= 2) hiddenName = `hidden_states.${layers - 2}`;
    }
    const hidden = out[hiddenName] as ort.Tensor;
    const pooledName = session.outputNames.includes('text_embeds') ? 'text_embeds' : 'pooler_output';
    const pooled = out[pooledName] as ort.Tensor | undefined;
    return {
      hidden: new Float32Array(hidden.data as Float32Array),
      width: hidden.dims[2]!,
      pooled: pooled ? new Float32Array(pooled.data as Float32Array) : null,
    };
  }

  /** The sigmas KSampler / KSamplerAdvanced run, ComfyUI's rules for denoise, start/end steps and leftover noise. */
  sigmasFor(
    req: Pick<SampleRequest, 'scheduler' | 'steps' | 'denoise' | 'startStep' | 'endStep' | 'leftoverNoise'>,
  ): number[] {
    let sigmas = samplerSigmas(this.sampling, req.scheduler, req.steps, req.denoise);
    if (req.endStep !== undefined && req.endStep < sigmas.length - 1) {
      sigmas = sigmas.slice(0, req.endStep + 1);
      if (!req.leftoverNoise) sigmas[sigmas.length - 1] = 0;
    }
    if (req.startStep !== undefined) {
      if (req.startStep >= sigmas.length - 1) return [];
      sigmas = sigmas.slice(req.startStep);
    }
    return sigmas;
  }

  /** KSampler: noise, then the sampler on the sigma grid with classifier-free guidance. */
  async sample(req: SampleRequest): Promise<Latent> {
    const [batch, channels, h, w] = req.latent.shape;
    const sigmas = this.sigmasFor(req);
    if (sigmas.length < 2) return req.latent;
    // Pad the latent to the sizes the UNet takes; the padding is cropped off at the end.
    const m = this.layout.latentMultiple;
    const ph = Math.ceil(h / m) * m;
    const pw = Math.ceil(w / m) * m;
    const plane = ph * pw;
    const size = batch * channels * plane;
    const scale = this.layout.scalingFactor;
    const image = new Float32Array(size);
    for (let b = 0; b < batch; b++)
      for (let c = 0; c < channels; c++)
        for (let y = 0; y < ph; y++)
          for (let x = 0; x < pw; x++) {
            const src = ((b * channels + c) * h + Math.min(y, h - 1)) * w + Math.min(x, w - 1);
            image[(b * channels + c) * plane + y * pw + x] = req.latent.data[src]! * scale;
          }
    const noise = new SeededNoise(req.seed);
    const initial = req.addNoise === false ? new Float32Array(size) : noise.fill(size);
    const s0 = sigmas[0]!;
    const maxDenoise =
      Math.abs(s0 - this.sampling.sigmaMax) <= 1e-5 * this.sampling.sigmaMax || s0 > this.sampling.sigmaMax;
    const k = maxDenoise ? Math.sqrt(1 + s0 * s0) : s0;
    const x = new Float32Array(size);
    for (let i = 0; i < size; i++) x[i] = initial[i]! * k + image[i]!;

    const uncond = req.cfg !== 1;
    const conds = uncond ? [req.positive, req.negative] : [req.positive];
    const rows = conds.length * batch;
    const width = req.positive.width;
    const tokens = req.positive.tokens;
    if (req.negative.width !== width || req.negative.tokens !== tokens)
      throw new HearthError('BAD_REQUEST', 'positive and negative conditioning come from different models');
    const context = new Float32Array(rows * tokens * width);
    conds.forEach((c, ci) => {
      for (let b = 0; b < batch; b++) context.set(c.embeds, (ci * batch + b) * tokens * width);
    });
    const feeds: Record<string, ort.Tensor> = { encoder_hidden_states: tensor(context, [rows, tokens, width]) };
    if (this.layout.family === 'sdxl') {
      const pooledWidth = req.positive.pooled?.length ?? 0;
      const pooled = new Float32Array(rows * pooledWidth);
      const timeIds = new Float32Array(rows * 6);
      conds.forEach((c, ci) => {
        for (let b = 0; b < batch; b++) {
          const r = ci * batch + b;
          if (c.pooled) pooled.set(c.pooled, r * pooledWidth);
          // original size, crop top-left, target size: the latent's size in pixels (ComfyUI's default)
          timeIds.set([h * 8, w * 8, 0, 0, h * 8, w * 8], r * 6);
        }
      });
      feeds['text_embeds'] = tensor(pooled, [rows, pooledWidth]);
      feeds['time_ids'] = tensor(timeIds, [rows, 6]);
    }
    const timestepType = this.unet.inputMetadata.find((i) => i.name === 'timestep');
    const tsType = timestepType && 'type' in timestepType ? timestepType.type : 'float32';
    const v = this.layout.prediction === 'v_prediction';

    const denoise = async (xs: Float32Array, sigma: number): Promise<Float32Array> => {
      if (req.signal?.aborted) throw new HearthError('IMAGE_ABORTED');
      const cIn = 1 / Math.sqrt(sigma * sigma + 1);
      const input = new Float32Array(conds.length * size);
      for (let ci = 0; ci < conds.length; ci++) for (let i = 0; i < size; i++) input[ci * size + i] = xs[i]! * cIn;
      const t = this.sampling.timestep(sigma);
      feeds['sample'] = tensor(input, [rows, channels, ph, pw]);
      feeds['timestep'] =
        tsType === 'int64'
          ? new ort.Tensor('int64', BigInt64Array.from([BigInt(t)]), [1])
          : tsType === 'float16'
            ? new ort.Tensor('float16', Uint16Array.from([toHalf(t)]), [1])
            : new ort.Tensor('float32', Float32Array.from([t]), [1]);
      let out: ort.InferenceSession.OnnxValueMapType;
      try {
        out = await this.unet.run(feeds);
      } catch (err) {
        throw ortFailure('unet', err);
      }
      imageCounters.steps++;
      const pred = (out['out_sample'] as ort.Tensor).data as Float32Array;
      const denoised = new Float32Array(size);
      const s2 = sigma * sigma + 1;
      const at = (ci: number, i: number) => {
        const p = pred[ci * size + i]!;
        return v ? xs[i]! / s2 - (p * sigma) / Math.sqrt(s2) : xs[i]! - p * sigma;
      };
      if (!uncond) for (let i = 0; i < size; i++) denoised[i] = at(0, i);
      else
        for (let i = 0; i < size; i++) {
          const c = at(0, i);
          const u = at(1, i);
          denoised[i] = u + (c - u) * req.cfg;
        }
      return denoised;
    };
    const result = await sample({
      sampler: req.sampler,
      sigmas,
      x,
      denoise,
      noise,
      ...(req.onStep ? { afterStep: req.onStep } : {}),
    });
    const data = new Float32Array(batch * channels * h * w);
    for (let b = 0; b < batch; b++)
      for (let c = 0; c < channels; c++)
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++)
            data[((b * channels + c) * h + y) * w + xx] = result[(b * channels + c) * plane + y * pw + xx]! / scale;
    return { kind: 'latent', shape: req.latent.shape, data };
  }

  /** VAE decode: raw latents → RGB images. */
  async decode(latent: Latent, signal?: AbortSignal): Promise<RgbImage[]> {
    const [batch, channels, h, w] = latent.shape;
    const images: RgbImage[] = [];
    const plane = channels * h * w;
    for (let b = 0; b < batch; b++) {
      if (signal?.aborted) throw new HearthError('IMAGE_ABORTED');
      const slice = latent.data.slice(b * plane, (b + 1) * plane);
      let out: ort.InferenceSession.OnnxValueMapType;
      try {
        out = await this.vaeDecoder.run({ latent_sample: tensor(slice, [1, channels, h, w]) });
      } catch (err) {
        throw ortFailure('vae_decoder', err);
      }
      const sample = out['sample'] as ort.Tensor;
      const [, , H, W] = sample.dims as number[];
      const src = sample.data as Float32Array;
      const data = new Uint8Array(H! * W! * 3);
      const area = H! * W!;
      for (let i = 0; i < area; i++)
        for (let c = 0; c < 3; c++) {
          const v = Math.min(1, Math.max(0, src[c * area + i]! / 2 + 0.5));
          data[i * 3 + c] = Math.round(v * 255);
        }
      images.push({ width: W!, height: H!, data });
      imageCounters.images++;
    }
    return images;
  }

  /** VAE encode (img2img): RGB images of one size → raw latents. */
  async encode(images: RgbImage[]): Promise<Latent> {
    if (!this.layout.hasVaeEncoder)
      throw new HearthError(
        'IMAGE_MODEL_INVALID',
        'this model has no vae_encoder/model.onnx, so it cannot encode images (img2img)',
      );
    this.vaeEncoder ??= await ort.InferenceSession.create(
      join(this.dir, 'vae_encoder', 'model.onnx'),
      this.options,
    ).catch((err: unknown) => {
      throw ortFailure('loading vae_encoder', err);
    });
    const first = images[0]!;
    // the VAE takes multiples of 8 pixels: crop down, as ComfyUI's VAEEncode does
    const W = Math.floor(first.width / 8) * 8;
    const H = Math.floor(first.height / 8) * 8;
    if (W === 0 || H === 0) throw new HearthError('BAD_REQUEST', 'an image to encode must be at least 8x8 pixels');
    const area = W * H;
    const latents: Float32Array[] = [];
    let shape: number[] = [];
    for (const img of images) {
      const px = new Float32Array(3 * area);
      const ox = Math.floor((img.width - W) / 2);
      const oy = Math.floor((img.height - H) / 2);
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          for (let c = 0; c < 3; c++)
            px[c * area + y * W + x] = (img.data[((y + oy) * img.width + x + ox) * 3 + c]! / 255) * 2 - 1;
      let out: ort.InferenceSession.OnnxValueMapType;
      try {
        out = await this.vaeEncoder.run({ sample: tensor(px, [1, 3, H, W]) });
      } catch (err) {
        throw ortFailure('vae_encoder', err);
      }
      const t = out['latent_sample'] as ort.Tensor;
      shape = t.dims as number[];
      latents.push(new Float32Array(t.data as Float32Array));
    }
    const data = new Float32Array(latents.reduce((a, l) => a + l.length, 0));
    let off = 0;
    for (const l of latents) {
      data.set(l, off);
      off += l.length;
    }
    return { kind: 'latent', shape: [images.length, shape[1]!, shape[2]!, shape[3]!], data };
  }
}

/** An empty latent (EmptyLatentImage): zeros, 4 channels, size / 8. */
export function emptyLatent(width: number, height: number, batch: number): Latent {
  const h = Math.floor(height / 8);
  const w = Math.floor(width / 8);
  return { kind: 'latent', shape: [batch, 4, h, w], data: new Float32Array(batch * 4 * h * w) };
}

/** RGB pixels → PNG bytes (sharp). */
export async function toPng(img: RgbImage): Promise<Buffer> {
  const raw = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  return sharp(raw, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toBuffer();
}

/** Encoded image bytes → RGB pixels. */
export async function fromEncoded(bytes: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(bytes)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >> 16) & 0x8000;
  const exp = ((u >> 23) & 0xff) - 127 + 15;
  const mant = (u >> 13) & 0x3ff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | mant;
}
