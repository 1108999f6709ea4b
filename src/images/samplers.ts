import { HearthError } from '../errors.js';

/**
 * The samplers ComfyUI's KSampler offers that hearth runs, as k-diffusion writes them
 * (k_diffusion/sampling.py in ComfyUI): each walks the sigma grid calling a denoiser that returns
 * the model's estimate of the clean latent at that sigma.
 */
export const SAMPLERS = ['euler', 'euler_ancestral', 'dpmpp_2m', 'ddim', 'lcm'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** x, sigma → denoised (x0 estimate), same length as x. */
export type Denoiser = (x: Float32Array, sigma: number, step: number) => Promise<Float32Array>;

/**
 * Seeded standard-normal noise: splitmix64 seeds xoshiro128**, Box–Muller makes normals. The same
 * seed gives the same numbers on every machine (ComfyUI's torch noise cannot be reproduced bit for
 * bit outside torch; hearth's determinism is its own).
 */
export class SeededNoise {
  private readonly s = new Uint32Array(4);
  private spare: number | undefined;

  constructor(seed: bigint | number) {
    let z = BigInt.asUintN(64, BigInt(seed));
    const next = () => {
      z = BigInt.asUintN(64, z + 0x9e3779b97f4a7c15n);
      let r = z;
      r = BigInt.asUintN(64, (r ^ (r >> 30n)) * 0xbf58476d1ce4e5b9n);
      r = BigInt.asUintN(64, (r ^ (r >> 27n)) * 0x94d049bb133111ebn);
      return r ^ (r >> 31n);
    };
    const a = next();
    const b = next();
    this.s[0] = Number(a & 0xffffffffn);
    this.s[1] = Number(a >> 32n);
    this.s[2] = Number(b & 0xffffffffn);
    this.s[3] = Number(b >> 32n);
  }

  private u32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** uniform in (0, 1) */
  uniform(): number {
    return (this.u32() + 0.5) / 4294967296;
  }

  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  fill(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface SampleOptions {
  sampler: SamplerName;
  sigmas: readonly number[];
  /** the starting latent (already noised) */
  x: Float32Array;
  denoise: Denoiser;
  /** noise for ancestral and LCM steps */
  noise: SeededNoise;
  /** noise re-scaling for LCM between steps: `noise * sigma + x0` (ComfyUI's model_sampling.noise_scaling) */
  afterStep?: (step: number, total: number) => void;
}

export async function sample(opts: SampleOptions): Promise<Float32Array> {
  const { sigmas, denoise, noise } = opts;
  let x = opts.x;
  const steps = sigmas.length - 1;
  let old: Float32Array | undefined;
  for (let i = 0; i < steps; i++) {
    const s = sigmas[i]!;
    const sNext = sigmas[i + 1]!;
    const d0 = await denoise(x, s, i);
    switch (opts.sampler) {
      case 'euler':
      case 'ddim': {
        // ComfyUI's "ddim" is ksampler("euler") (comfy/samplers.py sampler_object)
        const dt = sNext - s;
        const nx = new Float32Array(x.length);
        for (let k = 0; k < x.length; k++) nx[k] = x[k]! + ((x[k]! - d0[k]!) / s) * dt;
        x = nx;
        break;
      }
      case 'euler_ancestral': {
        const up = sNext === 0 ? 0 : Math.min(sNext, Math.sqrt((sNext ** 2 * (s ** 2 - sNext ** 2)) / s ** 2));
        const down = Math.sqrt(sNext ** 2 - up ** 2);
        const dt = down - s;
        const nx = new Float32Array(x.length);
        for (let k = 0; k < x.length; k++) nx[k] = x[k]! + ((x[k]! - d0[k]!) / s) * dt;
        if (sNext > 0) for (let k = 0; k < x.length; k++) nx[k] = nx[k]! + noise.normal() * up;
        x = nx;
        break;
      }
      case 'dpmpp_2m': {
        const t = -Math.log(s);
        const tNext = sNext === 0 ? Number.POSITIVE_INFINITY : -Math.log(sNext);
        const h = tNext - t;
        const ratio = sNext / s;
        const coef = -Math.expm1(-h);
        const nx = new Float32Array(x.length);
        if (old === undefined || sNext === 0) {
          for (let k = 0; k < x.length; k++) nx[k] = ratio * x[k]! - coef * d0[k]!;
        } else {
          const hLast = t - -Math.log(sigmas[i - 1]!);
          const r = hLast / h;
          const a = 1 + 1 / (2 * r);
          const b = 1 / (2 * r);
          for (let k = 0; k < x.length; k++) nx[k] = ratio * x[k]! - coef * (a * d0[k]! - b * old[k]!);
        }
        old = d0;
        x = nx;
        break;
      }
      case 'lcm': {
        const nx = new Float32Array(d0);
        if (sNext > 0) for (let k = 0; k < x.length; k++) nx[k] = nx[k]! + noise.normal() * sNext;
        x = nx;
        break;
      }
      default:
        throw new HearthError('BAD_REQUEST', `unknown sampler ${opts.sampler}: use one of ${SAMPLERS.join(', ')}`);
    }
    opts.afterStep?.(i + 1, steps);
  }
  return x;
}
