// Benchmark models: realistic shapes with random weights, written by the project's own GGUF
// generator (speed depends on shape, vocabulary size and type, not on the weights' values). Cached
// between runs. K-quant types (Q4_K_M, the type most users run) come from the generator's F16
// output through llama.cpp's llama-quantize, built by `hearth engine build` (the tests' build).
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateModel, type KQuantType, presets, quantizeModel } from '../../test/fixtures/gguf/index.js';
import { buildTestEngine } from '../../test/support/engine.js';

export type BenchShape = 'm125' | 'b1';
export type BenchType = 'F16' | 'Q8_0' | 'F32' | KQuantType;

const K_QUANTS: readonly string[] = ['Q4_K_S', 'Q4_K_M', 'Q5_K_S', 'Q5_K_M', 'Q6_K'] satisfies KQuantType[];

export interface BenchModel {
  shape: BenchShape;
  type: BenchType;
  /** vocabulary size; undefined: the generator's learned vocabulary (about 600 tokens) */
  vocab: number | undefined;
  path: string;
  /** file size in bytes */
  size: number;
  /** weights of the 2-D tensors and norms, all counted */
  parameters: number;
}

/** Parameters of a preset (the generator's count, computed without writing). */
function parametersOf(shape: BenchShape, vocab = 600): number {
  const p = presets[shape];
  return (
    p.layers * (2 * p.width * p.width + 2 * p.width * (p.width / p.heads) * p.kvHeads + 3 * p.width * p.ffn) +
    2 * vocab * p.width
  );
}

/** A model's name in file names and hearth model names: `b1-v32k-q4_k_m`. */
export function benchModelName(shape: BenchShape, type: BenchType, vocab?: number): string {
  const v = vocab === undefined ? '' : `-v${vocab % 1000 === 0 ? `${vocab / 1000}k` : vocab}`;
  return `${shape}${v}-${type}`;
}

/**
 * The model file, generated into `dir` unless a previous run left it there (generation is
 * deterministic). `vocab`: a vocabulary of that many tokens (32000, 128256) instead of the
 * generator's small one. A K-quant `type` is made from an F16 file (kept in `dir` too).
 */
export async function benchModel(
  dir: string,
  shape: BenchShape,
  type: BenchType,
  log = (_: string) => {},
  vocab?: number,
): Promise<BenchModel> {
  const path = join(dir, `${benchModelName(shape, type, vocab)}.gguf`);
  const parameters = parametersOf(shape, vocab);
  const existing = await stat(path).catch(() => null);
  if (existing?.isFile() && existing.size > 0) return { shape, type, vocab, path, size: existing.size, parameters };
  await mkdir(dir, { recursive: true });
  if (K_QUANTS.includes(type)) {
    const source = await benchModel(dir, shape, 'F16', log, vocab);
    log(`quantizing ${source.path} to ${type} with llama-quantize (once)`);
    const build = await buildTestEngine();
    const started = Date.now();
    const made = await quantizeModel({
      input: source.path,
      output: path,
      type: type as KQuantType,
      quantize: build.quantize,
      libDir: build.libDir,
    });
    log(`  ${(made.size / 1e6).toFixed(0)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await rm(source.path, { force: true }); // the F16 is only the quantizer's input
    return { shape, type, vocab, path, size: made.size, parameters };
  }
  log(`generating the ${benchModelName(shape, type, vocab)} model (once; cached in ${dir})`);
  const started = Date.now();
  const made = await generateModel({
    ...presets[shape],
    type: type as 'F16' | 'Q8_0' | 'F32',
    path,
    name: `hearth-bench-${shape}`,
    chatTemplate: 'chatml',
    ...(vocab !== undefined ? { vocabSize: vocab } : {}),
  });
  log(`  ${(made.size / 1e6).toFixed(0)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { shape, type, vocab, path, size: made.size, parameters: made.parameters };
}
