import sharp from 'sharp';
import { HearthError } from '../../errors.js';
import { type Conditioning, fromEncoded, type Latent, toPng } from '../../images/pipeline.js';
import { SAMPLERS, type SamplerName } from '../../images/samplers.js';
import { SCHEDULERS, type SchedulerName } from '../../images/schedule.js';
import type { ImageValue, InputSpec, NodeDefinition, NodeRunContext } from '../types.js';
import { isImage } from '../types.js';

/**
 * ComfyUI's core Stable Diffusion nodes, with ComfyUI's class names, input names, types, defaults,
 * ranges and output types (comfy nodes.py), on hearth's ONNX Runtime pipeline (src/images).
 */

/** What MODEL, CLIP and VAE carry between nodes: the library model they come from (serialisable, cacheable). */
interface ModelRef {
  readonly kind: 'sd-model';
  readonly name: string;
}

const MAX_RESOLUTION = 16384;
const UPSCALE_METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'bislerp'] as const;
const IMAGE_UPSCALE_METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos'] as const;

const SEED: InputSpec = {
  type: 'INT',
  default: 0,
  min: 0,
  max: Number('18446744073709551615'),
  tooltip: 'The random seed used for creating the noise.',
  extra: { control_after_generate: true },
};
const STEPS: InputSpec = {
  type: 'INT',
  default: 20,
  min: 1,
  max: 10000,
  tooltip: 'The number of steps used in the denoising process.',
};
const CFG: InputSpec = {
  type: 'FLOAT',
  default: 8,
  min: 0,
  max: 100,
  step: 0.1,
  tooltip: 'The Classifier-Free Guidance scale: how closely the image follows the prompt.',
  extra: { round: 0.01 },
};
const SAMPLER: InputSpec = { type: SAMPLERS, tooltip: 'The algorithm used when sampling.' };
const SCHEDULER: InputSpec = { type: SCHEDULERS, tooltip: 'How the noise levels are spread over the steps.' };
const MODEL: InputSpec = { type: 'MODEL', tooltip: 'The model used for denoising the input latent.' };
const POSITIVE: InputSpec = { type: 'CONDITIONING', tooltip: 'What the image should contain.' };
const NEGATIVE: InputSpec = { type: 'CONDITIONING', tooltip: 'What the image should not contain.' };
const LATENT_IN: InputSpec = { type: 'LATENT', tooltip: 'The latent image to denoise.' };
const SIZE = (tooltip: string): InputSpec => ({
  type: 'INT',
  default: 512,
  min: 16,
  max: MAX_RESOLUTION,
  step: 8,
  tooltip,
});

/** An IMAGE value as a list of images (a batch travels as an array). */
export function imageBatch(value: unknown): ImageValue[] {
  return (Array.isArray(value) ? value.flat(2) : [value]).filter(isImage);
}

function batchValue(images: ImageValue[]): ImageValue | ImageValue[] {
  return images.length === 1 ? images[0]! : images;
}

async function withPipeline<T>(
  ctx: NodeRunContext,
  ref: unknown,
  fn: (p: Awaited<ReturnType<NodeRunContext['images']['acquire']>>['pipeline']) => Promise<T>,
): Promise<T> {
  const name = (ref as ModelRef | undefined)?.name;
  if (!name) throw new HearthError('WORKFLOW_INVALID', 'link a CheckpointLoaderSimple output here');
  const held = await ctx.images.acquire(name);
  try {
    return await fn(held.pipeline);
  } finally {
    held.release();
  }
}

async function runSampler(
  inputs: Record<string, unknown>,
  ctx: NodeRunContext,
  opts: { seed: number; denoise: number; addNoise: boolean; start?: number; end?: number; leftover?: boolean },
): Promise<Latent> {
  const latent = inputs['latent_image'] as Latent;
  return withPipeline(ctx, inputs['model'], (p) =>
    p.sample({
      positive: inputs['positive'] as Conditioning,
      negative: inputs['negative'] as Conditioning,
      latent,
      seed: BigInt(Math.trunc(opts.seed)),
      steps: inputs['steps'] as number,
      cfg: inputs['cfg'] as number,
      sampler: inputs['sampler_name'] as SamplerName,
      scheduler: inputs['scheduler'] as SchedulerName,
      denoise: opts.denoise,
      addNoise: opts.addNoise,
      ...(opts.start !== undefined ? { startStep: opts.start } : {}),
      ...(opts.end !== undefined ? { endStep: opts.end } : {}),
      ...(opts.leftover !== undefined ? { leftoverNoise: opts.leftover } : {}),
      signal: ctx.signal,
      onStep: (step, total) => ctx.progress(step, total),
    }),
  );
}

/** Resizes a latent (nearest or bilinear on each channel plane), optionally centre-cropping to the new aspect first. */
function scaleLatent(latent: Latent, width: number, height: number, method: string, crop: boolean): Latent {
  const [b, c, h, w] = latent.shape;
  const nh = Math.max(1, Math.round(height / 8));
  const nw = Math.max(1, Math.round(width / 8));
  let x0 = 0;
  let y0 = 0;
  let cw = w;
  let ch = h;
  if (crop) {
    const old = w / h;
    const want = nw / nh;
    if (old > want) {
      cw = Math.round(h * want);
      x0 = Math.floor((w - cw) / 2);
    } else if (old < want) {
      ch = Math.round(w / want);
      y0 = Math.floor((h - ch) / 2);
    }
  }
  const out = new Float32Array(b * c * nh * nw);
  const bilinear = method !== 'nearest-exact';
  for (let p = 0; p < b * c; p++)
    for (let y = 0; y < nh; y++)
      for (let x = 0; x < nw; x++) {
        const sy = y0 + ((y + 0.5) * ch) / nh - 0.5;
        const sx = x0 + ((x + 0.5) * cw) / nw - 0.5;
        let v: number;
        if (!bilinear) {
          v =
            latent.data[
              p * h * w +
                Math.min(h - 1, Math.max(0, Math.round(sy))) * w +
                Math.min(w - 1, Math.max(0, Math.round(sx)))
            ]!;
        } else {
          const yA = Math.min(h - 1, Math.max(0, Math.floor(sy)));
          const xA = Math.min(w - 1, Math.max(0, Math.floor(sx)));
          const yB = Math.min(h - 1, yA + 1);
          const xB = Math.min(w - 1, xA + 1);
          const fy = Math.min(1, Math.max(0, sy - yA));
          const fx = Math.min(1, Math.max(0, sx - xA));
          const at = (yy: number, xx: number) => latent.data[p * h * w + yy * w + xx]!;
          v = (at(yA, xA) * (1 - fx) + at(yA, xB) * fx) * (1 - fy) + (at(yB, xA) * (1 - fx) + at(yB, xB) * fx) * fy;
        }
        out[p * nh * nw + y * nw + x] = v;
      }
  return { kind: 'latent', shape: [b, c, nh, nw], data: out };
}

/** ImageScale's and LatentUpscale's inputs (they differ in methods and width step). */
function scaleInputs(input: Record<string, InputSpec>, methods: readonly string[], step: number) {
  return {
    required: {
      ...input,
      upscale_method: { type: methods },
      width: { type: 'INT', default: 512, min: 0, max: MAX_RESOLUTION, step },
      height: { type: 'INT', default: 512, min: 0, max: MAX_RESOLUTION, step },
      crop: { type: ['disabled', 'center'] },
    },
  } as const;
}

const KERNEL: Record<string, keyof sharp.KernelEnum> = {
  'nearest-exact': 'nearest',
  bilinear: 'linear',
  area: 'mitchell',
  bicubic: 'cubic',
  lanczos: 'lanczos3',
};

export const diffusionNodes: NodeDefinition[] = [
  {
    name: 'CheckpointLoaderSimple',
    displayName: 'Load Checkpoint',
    description: 'Loads a diffusion model checkpoint (an image model in the library, diffusers ONNX layout).',
    category: 'loaders',
    inputs: {
      required: {
        ckpt_name: { type: [], choicesFrom: 'checkpoints', tooltip: 'The name of the checkpoint (model) to load.' },
      },
    },
    outputs: [
      { type: 'MODEL', name: 'MODEL' },
      { type: 'CLIP', name: 'CLIP' },
      { type: 'VAE', name: 'VAE' },
    ],
    run: async ({ ckpt_name }, ctx) => {
      const held = await ctx.images.acquire(ckpt_name as string); // loads now, so a bad model fails at this node
      held.release();
      const ref: ModelRef = { kind: 'sd-model', name: held.entry.name };
      return { outputs: [ref, ref, ref] };
    },
  },
  {
    name: 'CLIPTextEncode',
    displayName: 'CLIP Text Encode (Prompt)',
    description: 'Encodes a text prompt with a CLIP model into an embedding that guides the diffusion model.',
    category: 'conditioning',
    inputs: {
      required: {
        text: {
          type: 'STRING',
          multiline: true,
          tooltip: 'The text to be encoded.',
          extra: { dynamicPrompts: true },
        },
        clip: { type: 'CLIP', tooltip: 'The CLIP model used for encoding the text.' },
      },
    },
    outputs: [{ type: 'CONDITIONING', name: 'CONDITIONING' }],
    run: async ({ text, clip }, ctx) => ({
      outputs: [await withPipeline(ctx, clip, (p) => p.encodePrompt(text as string))],
    }),
  },
  {
    name: 'EmptyLatentImage',
    displayName: 'Empty Latent Image',
    description: 'Creates a new batch of empty latent images to be denoised via sampling.',
    category: 'latent',
    inputs: {
      required: {
        width: SIZE('The width of the latent images in pixels.'),
        height: SIZE('The height of the latent images in pixels.'),
        batch_size: {
          type: 'INT',
          default: 1,
          min: 1,
          max: 4096,
          tooltip: 'The number of latent images in the batch.',
        },
      },
    },
    outputs: [{ type: 'LATENT', name: 'LATENT' }],
    run: async ({ width, height, batch_size }) => {
      const h = Math.floor((height as number) / 8);
      const w = Math.floor((width as number) / 8);
      const b = batch_size as number;
      const latent: Latent = { kind: 'latent', shape: [b, 4, h, w], data: new Float32Array(b * 4 * h * w) };
      return { outputs: [latent] };
    },
  },
  {
    name: 'KSampler',
    displayName: 'KSampler',
    description: 'Uses the provided model, positive and negative conditioning to denoise the latent image.',
    category: 'sampling',
    inputs: {
      required: {
        model: MODEL,
        seed: SEED,
        steps: STEPS,
        cfg: CFG,
        sampler_name: SAMPLER,
        scheduler: SCHEDULER,
        positive: POSITIVE,
        negative: NEGATIVE,
        latent_image: LATENT_IN,
        denoise: {
          type: 'FLOAT',
          default: 1,
          min: 0,
          max: 1,
          step: 0.01,
          tooltip: 'The amount of denoising applied; lower values keep more of the input latent (img2img).',
        },
      },
    },
    outputs: [{ type: 'LATENT', name: 'LATENT' }],
    run: async (inputs, ctx) => ({
      outputs: [
        await runSampler(inputs, ctx, {
          seed: inputs['seed'] as number,
          denoise: inputs['denoise'] as number,
          addNoise: true,
        }),
      ],
    }),
  },
  {
    name: 'KSamplerAdvanced',
    displayName: 'KSampler (Advanced)',
    description: 'KSampler with control over the noise and the range of steps run.',
    category: 'sampling',
    inputs: {
      required: {
        model: MODEL,
        add_noise: { type: ['enable', 'disable'] },
        noise_seed: SEED,
        steps: STEPS,
        cfg: CFG,
        sampler_name: SAMPLER,
        scheduler: SCHEDULER,
        positive: POSITIVE,
        negative: NEGATIVE,
        latent_image: LATENT_IN,
        start_at_step: { type: 'INT', default: 0, min: 0, max: 10000 },
        end_at_step: { type: 'INT', default: 10000, min: 0, max: 10000 },
        return_with_leftover_noise: { type: ['disable', 'enable'] },
      },
    },
    outputs: [{ type: 'LATENT', name: 'LATENT' }],
    run: async (inputs, ctx) => ({
      outputs: [
        await runSampler(inputs, ctx, {
          seed: inputs['noise_seed'] as number,
          denoise: 1,
          addNoise: inputs['add_noise'] !== 'disable',
          start: inputs['start_at_step'] as number,
          end: inputs['end_at_step'] as number,
          leftover: inputs['return_with_leftover_noise'] === 'enable',
        }),
      ],
    }),
  },
  {
    name: 'VAEDecode',
    displayName: 'VAE Decode',
    description: 'Decodes latent images back into pixel space images.',
    category: 'latent',
    inputs: {
      required: {
        samples: { type: 'LATENT', tooltip: 'The latent to be decoded.' },
        vae: { type: 'VAE', tooltip: 'The VAE model used for decoding the latent.' },
      },
    },
    outputs: [{ type: 'IMAGE', name: 'IMAGE' }],
    run: async ({ samples, vae }, ctx) => {
      const rgb = await withPipeline(ctx, vae, (p) => p.decode(samples as Latent, ctx.signal));
      const images: ImageValue[] = [];
      for (const img of rgb)
        images.push({ kind: 'image', format: 'png', width: img.width, height: img.height, bytes: await toPng(img) });
      return { outputs: [batchValue(images)] };
    },
  },
  {
    name: 'VAEEncode',
    displayName: 'VAE Encode',
    description: 'Encodes pixel space images into latent images (img2img).',
    category: 'latent',
    inputs: { required: { pixels: { type: 'IMAGE' }, vae: { type: 'VAE' } } },
    outputs: [{ type: 'LATENT', name: 'LATENT' }],
    run: async ({ pixels, vae }, ctx) => {
      const batch = imageBatch(pixels);
      if (batch.length === 0) throw new HearthError('WORKFLOW_INVALID', 'pixels: no image arrived');
      const rgb = await Promise.all(batch.map((i) => fromEncoded(i.bytes)));
      return { outputs: [await withPipeline(ctx, vae, (p) => p.encode(rgb))] };
    },
  },
  {
    name: 'ImageScale',
    displayName: 'Upscale Image',
    description: 'Scales images to a width and height (0 keeps the aspect ratio from the other).',
    category: 'image/upscaling',
    inputs: scaleInputs({ image: { type: 'IMAGE' } }, IMAGE_UPSCALE_METHODS, 1),
    outputs: [{ type: 'IMAGE', name: 'IMAGE' }],
    run: async ({ image, upscale_method, width, height, crop }) => {
      const out: ImageValue[] = [];
      for (const img of imageBatch(image)) {
        let w = width as number;
        let h = height as number;
        if (w === 0 && h === 0) {
          out.push(img);
          continue;
        }
        if (w === 0) w = Math.max(1, Math.round((img.width * h) / img.height));
        if (h === 0) h = Math.max(1, Math.round((img.height * w) / img.width));
        const { data, info } = await sharp(img.bytes)
          .resize(w, h, {
            fit: crop === 'center' ? 'cover' : 'fill',
            kernel: KERNEL[upscale_method as string] ?? 'linear',
          })
          .png()
          .toBuffer({ resolveWithObject: true });
        out.push({ kind: 'image', format: 'png', width: info.width, height: info.height, bytes: data });
      }
      return { outputs: [batchValue(out)] };
    },
  },
  {
    name: 'LatentUpscale',
    displayName: 'Upscale Latent',
    description: 'Scales latent images to a size in pixels (0 keeps the aspect ratio from the other).',
    category: 'latent',
    inputs: scaleInputs({ samples: { type: 'LATENT' } }, UPSCALE_METHODS, 8),
    outputs: [{ type: 'LATENT', name: 'LATENT' }],
    run: async ({ samples, upscale_method, width, height, crop }) => {
      const latent = samples as Latent;
      let w = width as number;
      let h = height as number;
      const [, , lh, lw] = latent.shape;
      if (w === 0 && h === 0) return { outputs: [latent] };
      if (w === 0) w = Math.round((lw * h) / lh);
      if (h === 0) h = Math.round((lh * w) / lw);
      return { outputs: [scaleLatent(latent, w, h, upscale_method as string, crop === 'center')] };
    },
  },
];
