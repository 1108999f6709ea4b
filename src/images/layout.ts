import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HearthError } from '../errors.js';
import type { BetaSchedule } from './schedule.js';

/** The one command that turns a diffusers checkpoint (hub id or folder) into the layout hearth reads. */
export const OPTIMUM_COMMAND =
  'optimum-cli export onnx --model <hub id or diffusers folder> --task text-to-image <output folder>';

export type ImageFamily = 'sd' | 'sdxl';

/** What hearth needs to know about a diffusers ONNX layout (what `optimum-cli export onnx` writes). */
export interface ImageModelLayout {
  family: ImageFamily;
  /** model_index.json's `_class_name` */
  pipelineClass: string;
  prediction: 'epsilon' | 'v_prediction';
  /** the VAE's latent scaling factor (0.18215 for SD 1.x/2.x, 0.13025 for SDXL) */
  scalingFactor: number;
  betas: BetaSchedule;
  /**
   * Latent sizes the UNet takes are multiples of this (its down/up path halves the latent three
   * times for SD 1.x/2.x: 64 px; twice for SDXL: 32 px). Other sizes are padded and cropped.
   */
  latentMultiple: number;
  /** img2img needs vae_encoder/ */
  hasVaeEncoder: boolean;
  /** relative paths of every file of the layout, for the library manifest */
  files: string[];
}

const REQUIRED = [
  'text_encoder/model.onnx',
  'unet/model.onnx',
  'vae_decoder/model.onnx',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
];
const UNSUPPORTED_FAMILIES = [/StableDiffusion3/i, /Flux/i, /Cascade/i, /Kandinsky/i, /PixArt/i, /Sana/i, /Wan/i];

function refuse(message: string): never {
  throw new HearthError('IMAGE_MODEL_INVALID', message);
}

async function readJson(dir: string, rel: string, required: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(join(dir, rel), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) return null;
    return refuse(`${rel} cannot be read: ${(err as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) refuse(`${rel} is not a JSON object`);
    return v as Record<string, unknown>;
  } catch (err) {
    if (err instanceof HearthError) throw err;
    return refuse(`${rel} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Every file below `dir`, relative, sorted (the layout's manifest). */
export async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (e.isFile() || (e.isSymbolicLink() && (await stat(join(dir, rel)).catch(() => null))?.isFile()))
      out.push(rel);
  }
  return out.sort();
}

/**
 * Reads and checks a diffusers ONNX layout. A PyTorch checkpoint (`.safetensors`, `.ckpt`, or a
 * diffusers folder without ONNX files) is refused with the optimum command that converts it.
 */
export async function readLayout(dir: string): Promise<ImageModelLayout> {
  const s = await stat(dir).catch(() => null);
  if (!s) refuse(`${dir} does not exist`);
  if (!s.isDirectory()) {
    if (/\.(safetensors|ckpt|pt|bin)$/i.test(dir))
      refuse(
        `${dir.split(/[\\/]/).pop()} is a PyTorch checkpoint; hearth runs Stable Diffusion from ONNX. Convert it with \`${OPTIMUM_COMMAND}\` and create the model from the output folder`,
      );
    refuse(
      `${dir.split(/[\\/]/).pop()} is a file; an image model is a folder in the diffusers ONNX layout (model_index.json, unet/model.onnx, ...)`,
    );
  }
  const files = await listFiles(dir);
  const index = await readJson(dir, 'model_index.json', false);
  const hasOnnx = files.some((f) => f.endsWith('.onnx'));
  if (!index || !hasOnnx) {
    if (files.some((f) => /\.(safetensors|ckpt)$/i.test(f)))
      refuse(
        `this folder holds a PyTorch checkpoint, not ONNX models. Convert it with \`${OPTIMUM_COMMAND}\` and create the model from the output folder`,
      );
    refuse(
      'not a diffusers ONNX layout: model_index.json and unet/model.onnx are missing (`optimum-cli export onnx` writes them)',
    );
  }
  const pipelineClass = typeof index['_class_name'] === 'string' ? index['_class_name'] : '';
  if (UNSUPPORTED_FAMILIES.some((r) => r.test(pipelineClass)))
    refuse(
      `${pipelineClass} models are not supported yet: hearth runs Stable Diffusion 1.x, 2.x and XL (and their Turbo/LCM variants)`,
    );
  const missing = REQUIRED.filter((f) => !files.includes(f));
  if (missing.length) refuse(`the layout is missing ${missing.join(', ')}`);
  const sdxl = files.includes('text_encoder_2/model.onnx') || /XL/.test(pipelineClass);
  if (sdxl && !files.includes('text_encoder_2/model.onnx')) refuse('an SDXL layout needs text_encoder_2/model.onnx');
  if (sdxl && !files.includes('tokenizer_2/vocab.json')) refuse('an SDXL layout needs tokenizer_2/');

  const sched = (await readJson(dir, 'scheduler/scheduler_config.json', false)) ?? {};
  const vae =
    (await readJson(dir, 'vae_decoder/config.json', false)) ?? (await readJson(dir, 'vae/config.json', false)) ?? {};
  const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  const prediction = sched['prediction_type'] ?? 'epsilon';
  if (prediction !== 'epsilon' && prediction !== 'v_prediction')
    refuse(`scheduler prediction_type ${JSON.stringify(prediction)} is not supported: epsilon or v_prediction`);
  const schedule = sched['beta_schedule'] ?? 'scaled_linear';
  if (schedule !== 'scaled_linear' && schedule !== 'linear')
    refuse(`scheduler beta_schedule ${JSON.stringify(schedule)} is not supported: scaled_linear or linear`);
  return {
    family: sdxl ? 'sdxl' : 'sd',
    pipelineClass,
    prediction,
    scalingFactor: num(vae['scaling_factor'], sdxl ? 0.13025 : 0.18215),
    betas: {
      betaStart: num(sched['beta_start'], 0.00085),
      betaEnd: num(sched['beta_end'], 0.012),
      schedule,
      trainSteps: num(sched['num_train_timesteps'], 1000),
    },
    latentMultiple: sdxl ? 4 : 8,
    hasVaeEncoder: files.includes('vae_encoder/model.onnx'),
    files,
  };
}
