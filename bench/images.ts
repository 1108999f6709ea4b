// Image generation (issue 13): seconds per step and per image through hearth's pipeline, against ONNX
// Runtime's own session.run of the same UNet with no hearth around it. The target: hearth adds ≤ 3%
// per step.
//
//   npx tsx bench/images.ts [--sizes 512,1024] [--families sd15,sdxl] [--steps 4] [--runs 3]
//                           [--threads 0] [--unet-channels 640] [--out results.json]
//
// The models are the project's diffusers-layout generator (test/fixtures/onnx) with the real text
// widths (768; SDXL adds 1280 and pooled embeds) and a UNet of `--unet-channels` channels on the real
// latent sizes (64×64 at 512, 128×128 at 1024), random weights, generated once and cached in the temp
// folder. The UNet is far lighter than SD's own (a few convolutions, not 860M/2.6B parameters): a step
// costs less, so hearth's fixed work per step weighs more here than with a real model — the overhead
// measured is an upper bound.
//
// Per step, hearth: KSampler's euler loop with classifier-free guidance (batch 2 through the UNet,
// c_in scaling, the CFG combine, the sampler update), timed between its progress callbacks. Bare: one
// `session.run` of the same UNet file with the same session options and the same batch-2 inputs,
// tensors built once. The two alternate run by run, so drift in the machine's load hits them alike;
// figures are medians.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { emptyLatent, ImagePipeline, toPng } from '../src/images/pipeline.js';
import { median } from '../src/loadgen/stats.js';
import { type Family, generateDiffusersModel } from '../test/fixtures/onnx/diffusers.js';
import { machineInfo } from './lib/machine.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '512,1024' },
    families: { type: 'string', default: 'sd15,sdxl' },
    steps: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '0' },
    'unet-channels': { type: 'string', default: '640' },
    out: { type: 'string' },
  },
});
const sizes = args.sizes.split(',').map(Number);
const families = args.families.split(',') as Family[];
const steps = Number(args.steps);
const runs = Number(args.runs);
const threads = Number(args.threads);
const channels = Number(args['unet-channels']);

async function model(family: Family): Promise<string> {
  const dir = join(tmpdir(), 'hearth-bench-images', `${family}-c${channels}`);
  if (!existsSync(join(dir, 'model_index.json'))) {
    await mkdir(dir, { recursive: true });
    await generateDiffusersModel({ dir, family, widths: { text: 768, text2: 1280, unet: channels } });
  }
  return dir;
}

interface Row {
  family: Family;
  size: number;
  steps: number;
  /** seconds, medians over runs (per step: over every step of every run but each run's first) */
  hearthStep: number;
  bareStep: number;
  overhead: number;
  /** one whole image through hearth: text encoding, sampling, VAE decode, PNG */
  hearthImage: number;
  /** the bare UNet steps alone, for the same number of steps */
  bareImage: number;
  loadAverage: [number, number];
}

async function measure(family: Family, size: number): Promise<Row> {
  const dir = await model(family);
  const pipeline = await ImagePipeline.load(dir, { executionProviders: ['cpu'], threads });
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    ...(threads ? { intraOpNumThreads: threads } : {}),
  };
  const bare = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'), sessionOptions);
  const latent = size / 8;
  const feeds: Record<string, ort.Tensor> = {
    sample: new ort.Tensor('float32', new Float32Array(2 * 4 * latent * latent).fill(0.1), [2, 4, latent, latent]),
    timestep: new ort.Tensor('float32', Float32Array.from([999]), [1]),
    encoder_hidden_states: new ort.Tensor(
      'float32',
      new Float32Array(2 * 77 * (family === 'sdxl' ? 2048 : 768)).fill(0.01),
      [2, 77, family === 'sdxl' ? 2048 : 768],
    ),
  };
  if (family === 'sdxl') {
    feeds['text_embeds'] = new ort.Tensor('float32', new Float32Array(2 * 1280).fill(0.01), [2, 1280]);
    feeds['time_ids'] = new ort.Tensor(
      'float32',
      Float32Array.from([size, size, 0, 0, size, size, size, size, 0, 0, size, size]),
      [2, 6],
    );
  }
  // Warm both (first runs allocate arenas).
  await bare.run(feeds);
  const positive = await pipeline.encodePrompt('a photo of a red house');
  const negative = await pipeline.encodePrompt('blurry');
  const req = (onStep?: (s: number, n: number) => void) => ({
    positive,
    negative,
    latent: emptyLatent(size, size, 1),
    seed: 1,
    steps,
    cfg: 7,
    sampler: 'euler' as const,
    scheduler: 'normal' as const,
    denoise: 1,
    ...(onStep ? { onStep } : {}),
  });
  await pipeline.sample(req());

  const hearthSteps: number[] = [];
  const bareSteps: number[] = [];
  const hearthImages: number[] = [];
  const bareImages: number[] = [];
  const load0 = loadavg()[0]!;
  for (let r = 0; r < runs; r++) {
    // hearth: a whole image, steps timed between progress callbacks
    const t0 = performance.now();
    const cond = [await pipeline.encodePrompt('a photo of a red house'), await pipeline.encodePrompt('blurry')];
    let last = performance.now();
    const marks: number[] = [];
    const lat = await pipeline.sample({
      ...req((s) => {
        const now = performance.now();
        marks.push(now - last);
        last = now;
        void s;
      }),
      positive: cond[0]!,
      negative: cond[1]!,
    });
    const [img] = await pipeline.decode(lat);
    await toPng(img!);
    hearthImages.push((performance.now() - t0) / 1000);
    hearthSteps.push(...marks.slice(1).map((m) => m / 1000));
    // bare: the same number of UNet runs
    const b0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const s0 = performance.now();
      await bare.run(feeds);
      if (s > 0) bareSteps.push((performance.now() - s0) / 1000);
    }
    bareImages.push((performance.now() - b0) / 1000);
  }
  await pipeline.release();
  await bare.release();
  const hearthStep = median(hearthSteps);
  const bareStep = median(bareSteps);
  return {
    family,
    size,
    steps,
    hearthStep,
    bareStep,
    overhead: hearthStep / bareStep - 1,
    hearthImage: median(hearthImages),
    bareImage: median(bareImages),
    loadAverage: [load0, loadavg()[0]!],
  };
}

const machine = await machineInfo();
console.log(
  `machine: ${machine.cpu}, ${machine.logicalCpus} CPUs, load ${machine.loadAverage1m.toFixed(1)}; UNet ${channels} channels, ${steps} steps, ${runs} runs`,
);
const rows: Row[] = [];
for (const family of families)
  for (const size of sizes) {
    const row = await measure(family, size);
    rows.push(row);
    console.log(
      `${family} ${size}×${size}: step hearth ${row.hearthStep.toFixed(3)} s, bare ${row.bareStep.toFixed(3)} s ` +
        `(overhead ${(row.overhead * 100).toFixed(1)}%); image hearth ${row.hearthImage.toFixed(2)} s, ` +
        `bare UNet steps ${row.bareImage.toFixed(2)} s; load ${row.loadAverage.map((l) => l.toFixed(1)).join('→')}`,
    );
  }
if (args.out) await writeFile(args.out, JSON.stringify({ machine, channels, steps, runs, threads, rows }, null, 2));
