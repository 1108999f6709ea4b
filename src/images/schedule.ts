import { HearthError } from '../errors.js';

/**
 * The k-diffusion sigma grid as ComfyUI builds it (comfy/model_sampling.py ModelSamplingDiscrete,
 * comfy/samplers.py calculate_sigmas): the model's 1000 training sigmas from its beta schedule, then
 * a scheduler picks `steps` of them (plus a final 0).
 */

export const SCHEDULERS = ['normal', 'karras', 'exponential', 'sgm_uniform', 'simple'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

export interface BetaSchedule {
  betaStart: number;
  betaEnd: number;
  /** `scaled_linear` (every SD model) or `linear` */
  schedule: 'scaled_linear' | 'linear';
  trainSteps: number;
}

export const SD_BETAS: BetaSchedule = {
  betaStart: 0.00085,
  betaEnd: 0.012,
  schedule: 'scaled_linear',
  trainSteps: 1000,
};

/** A model's discrete sigma table (float32 like ComfyUI's buffers) and the lookups on it. */
export class ModelSampling {
  /** sigmas[t] for t = 0..trainSteps-1, ascending */
  readonly sigmas: Float32Array;
  readonly logSigmas: Float32Array;
  /** cumulative alphas per training timestep (diffusers' alphas_cumprod) */
  readonly alphasCumprod: Float64Array;

  constructor(betas: BetaSchedule = SD_BETAS) {
    const n = betas.trainSteps;
    this.alphasCumprod = new Float64Array(n);
    this.sigmas = new Float32Array(n);
    this.logSigmas = new Float32Array(n);
    let acc = 1;
    for (let i = 0; i < n; i++) {
      const beta =
        betas.schedule === 'scaled_linear'
          ? (Math.sqrt(betas.betaStart) + ((Math.sqrt(betas.betaEnd) - Math.sqrt(betas.betaStart)) * i) / (n - 1)) ** 2
          : betas.betaStart + ((betas.betaEnd - betas.betaStart) * i) / (n - 1);
      acc *= 1 - beta;
      this.alphasCumprod[i] = acc;
      this.sigmas[i] = Math.sqrt((1 - acc) / acc);
      this.logSigmas[i] = Math.log(this.sigmas[i]!);
    }
  }

  get sigmaMin(): number {
    return this.sigmas[0]!;
  }

  get sigmaMax(): number {
    return this.sigmas[this.sigmas.length - 1]!;
  }

  /** The training timestep nearest to a sigma (in log space), as ComfyUI feeds the UNet. */
  timestep(sigma: number): number {
    const ls = Math.fround(Math.log(sigma));
    let best = 0;
    let bestDist = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.logSigmas.length; i++) {
      const d = Math.abs(ls - this.logSigmas[i]!);
      if (d < bestDist) {
        bestDist = d;
        best = i;
      }
    }
    return best;
  }

  /** The sigma at a (fractional) timestep: log-linear interpolation between table entries. */
  sigma(t: number): number {
    const tt = Math.min(Math.max(t, 0), this.logSigmas.length - 1);
    const lo = Math.floor(tt);
    const hi = Math.ceil(tt);
    const w = tt - lo;
    return Math.exp((1 - w) * this.logSigmas[lo]! + w * this.logSigmas[hi]!);
  }
}

function linspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  return Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
}

function normal(s: ModelSampling, steps: number, sgm: boolean): number[] {
  const start = s.timestep(s.sigmaMax);
  const end = s.timestep(s.sigmaMin);
  let appendZero = true;
  let ts: number[];
  if (sgm) ts = linspace(start, end, steps + 1).slice(0, -1);
  else {
    let n = steps;
    if (Math.abs(s.sigma(end)) < 1e-5) {
      n += 1;
      appendZero = false;
    }
    ts = linspace(start, end, n);
  }
  const sigs = ts.map((t) => s.sigma(t));
  if (appendZero) sigs.push(0);
  return sigs;
}

/** k-diffusion get_sigmas_karras (rho 7). */
export function karrasSigmas(steps: number, sigmaMin: number, sigmaMax: number, rho = 7): number[] {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return [...linspace(0, 1, steps).map((r) => (maxInv + r * (minInv - maxInv)) ** rho), 0];
}

/** k-diffusion get_sigmas_exponential. */
export function exponentialSigmas(steps: number, sigmaMin: number, sigmaMax: number): number[] {
  return [...linspace(Math.log(sigmaMax), Math.log(sigmaMin), steps).map(Math.exp), 0];
}

function simple(s: ModelSampling, steps: number): number[] {
  const sigs: number[] = [];
  const ss = s.sigmas.length / steps;
  for (let x = 0; x < steps; x++) sigs.push(s.sigmas[s.sigmas.length - 1 - Math.floor(x * ss)]!);
  sigs.push(0);
  return sigs;
}

/** `steps + 1` sigmas, descending, ending in 0 (ComfyUI's calculate_sigmas). */
export function calculateSigmas(s: ModelSampling, scheduler: SchedulerName, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > 10_000)
    throw new HearthError('BAD_REQUEST', `steps ${steps}: use a whole number from 1 to 10000`);
  switch (scheduler) {
    case 'normal':
      return normal(s, steps, false);
    case 'sgm_uniform':
      return normal(s, steps, true);
    case 'karras':
      return karrasSigmas(steps, s.sigmaMin, s.sigmaMax);
    case 'exponential':
      return exponentialSigmas(steps, s.sigmaMin, s.sigmaMax);
    case 'simple':
      return simple(s, steps);
    default:
      throw new HearthError('BAD_REQUEST', `unknown scheduler ${scheduler}: use one of ${SCHEDULERS.join(', ')}`);
  }
}

/**
 * KSampler's sigmas for a denoise strength: below 1 it computes `floor(steps / denoise)` steps and
 * keeps the last `steps + 1` sigmas, as ComfyUI's KSampler.set_steps does.
 */
export function samplerSigmas(s: ModelSampling, scheduler: SchedulerName, steps: number, denoise: number): number[] {
  if (denoise <= 0) return [];
  if (denoise >= 1) return calculateSigmas(s, scheduler, steps);
  const all = calculateSigmas(s, scheduler, Math.floor(steps / denoise));
  return all.slice(-(steps + 1));
}
