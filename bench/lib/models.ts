// Benchmark models: realistic shapes with random weights, written by the project's own GGUF
// generator (speed depends on shape and type, not on the weights' values). Cached between runs.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateModel, presets } from '../../test/fixtures/gguf/index.js';

export type BenchShape = 'm125' | 'b1';
export type BenchType = 'F16' | 'Q8_0' | 'F32';

export interface BenchModel {
  shape: BenchShape;
  type: BenchType;
  path: string;
  /** file size in bytes */
  size: number;
  /** weights of the 2-D tensors and norms, all counted */
  parameters: number;
}

/** Parameters of a preset (the generator's count, computed without writing). */
function parametersOf(shape: BenchShape): number {
  const p = presets[shape];
  const vocab = 600; // close enough for the report; the exact count comes from generateModel
  return (
    p.layers * (2 * p.width * p.width + 2 * p.width * (p.width / p.heads) * p.kvHeads + 3 * p.width * p.ffn) +
    2 * vocab * p.width
  );
}

/** The model file, generated into `dir` unless a previous run left it there (generation is deterministic). */
export async function benchModel(
  dir: string,
  shape: BenchShape,
  type: BenchType,
  log = (_: string) => {},
): Promise<BenchModel> {
  const path = join(dir, `${shape}-${type}.gguf`);
  const existing = await stat(path).catch(() => null);
  if (existing?.isFile() && existing.size > 0)
    return { shape, type, path, size: existing.size, parameters: parametersOf(shape) };
  await mkdir(dir, { recursive: true });
  log(`generating the ${shape} ${type} model (once; cached in ${dir})`);
  const started = Date.now();
  const made = await generateModel({
    ...presets[shape],
    type,
    path,
    name: `hearth-bench-${shape}`,
    chatTemplate: 'chatml',
  });
  log(`  ${(made.size / 1e6).toFixed(0)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { shape, type, path, size: made.size, parameters: made.parameters };
}
