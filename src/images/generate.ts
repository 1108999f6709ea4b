import { HearthError } from '../errors.js';
import { emptyLatent, fromEncoded, toPng } from './pipeline.js';
import type { ImageRuntime } from './runtime.js';
import { SAMPLERS, type SamplerName } from './samplers.js';
import { SCHEDULERS, type SchedulerName } from './schedule.js';

/** One text-to-image or image-to-image request outside workflows (OpenAI images API, hearth imagine). */
export interface GenerateRequest {
  model: string;
  prompt: string;
  negativePrompt?: string;
  n: number;
  width: number;
  height: number;
  steps: number;
  cfg: number;
  seed: number;
  sampler: SamplerName;
  scheduler: SchedulerName;
  /** img2img: the source image (encoded bytes) and how much of it to redo (0–1) */
  init?: { bytes: Buffer; denoise: number };
  signal?: AbortSignal;
  onStep?: (step: number, total: number) => void;
}

export const GENERATE_DEFAULTS = {
  steps: 20,
  cfg: 7,
  sampler: 'euler' as SamplerName,
  scheduler: 'normal' as SchedulerName,
};

/** Parses `WIDTHxHEIGHT` (multiples of 8, 64–4096); `auto` is the model family's native size. */
export function parseSize(size: string | undefined, family: 'sd' | 'sdxl'): { width: number; height: number } {
  if (!size || size === 'auto') return family === 'sdxl' ? { width: 1024, height: 1024 } : { width: 512, height: 512 };
  const m = /^(\d{2,4})x(\d{2,4})$/.exec(size);
  const w = m ? Number(m[1]) : Number.NaN;
  const h = m ? Number(m[2]) : Number.NaN;
  if (!m || w < 64 || h < 64 || w > 4096 || h > 4096 || w % 8 || h % 8)
    throw new HearthError(
      'BAD_REQUEST',
      `size ${JSON.stringify(size)}: use WIDTHxHEIGHT in multiples of 8 from 64 to 4096, e.g. 512x512, or auto`,
      { details: { param: 'size' } },
    );
  return { width: w, height: h };
}

export function checkSamplerNames(sampler: string, scheduler: string): void {
  if (!(SAMPLERS as readonly string[]).includes(sampler))
    throw new HearthError('BAD_REQUEST', `sampler ${sampler}: use one of ${SAMPLERS.join(', ')}`, {
      details: { param: 'sampler' },
    });
  if (!(SCHEDULERS as readonly string[]).includes(scheduler))
    throw new HearthError('BAD_REQUEST', `scheduler ${scheduler}: use one of ${SCHEDULERS.join(', ')}`, {
      details: { param: 'scheduler' },
    });
}

/** Runs the pipeline: n images in one batch, PNG each. */
export async function generateImages(images: ImageRuntime, req: GenerateRequest): Promise<Buffer[]> {
  const held = await images.acquire(req.model);
  try {
    const p = held.pipeline;
    const positive = await p.encodePrompt(req.prompt);
    const negative = await p.encodePrompt(req.negativePrompt ?? '');
    let latent = emptyLatent(req.width, req.height, req.n);
    let denoise = 1;
    if (req.init) {
      const rgb = await fromEncoded(req.init.bytes);
      const one = await p.encode([rgb]);
      const data = new Float32Array(one.data.length * req.n);
      for (let i = 0; i < req.n; i++) data.set(one.data, i * one.data.length);
      latent = { kind: 'latent', shape: [req.n, one.shape[1], one.shape[2], one.shape[3]], data };
      denoise = req.init.denoise;
    }
    const out = await p.sample({
      positive,
      negative,
      latent,
      seed: BigInt(req.seed),
      steps: req.steps,
      cfg: req.cfg,
      sampler: req.sampler,
      scheduler: req.scheduler,
      denoise,
      ...(req.signal ? { signal: req.signal } : {}),
      ...(req.onStep ? { onStep: req.onStep } : {}),
    });
    const decoded = await p.decode(out, req.signal);
    return Promise.all(decoded.map((img) => toPng(img)));
  } finally {
    held.release();
  }
}
