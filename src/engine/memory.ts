import { GgmlType, type GgufInsights, type Llama } from 'node-llama-cpp';
import { formatBytes } from '../units.js';
import {
  type AttentionSettings,
  DEFAULT_ATTENTION,
  estimatesFlashAttention,
  KV_BYTES_PER_ELEMENT,
} from './attention.js';
import type { Backend } from './llama.js';

/** Bytes a loaded thing holds, as node-llama-cpp's GGUF insights estimate them. */
export interface MemoryNeed {
  ram: number;
  vram: number;
}

export const NO_MEMORY: MemoryNeed = { ram: 0, vram: 0 };

export function addMemory(a: MemoryNeed, b: MemoryNeed): MemoryNeed {
  return { ram: a.ram + b.ram, vram: a.vram + b.vram };
}

/** The weights of a model with `gpuLayers` offloaded. */
export function estimateWeights(insights: GgufInsights, gpuLayers: number, useMmap: boolean): MemoryNeed {
  const need = insights.estimateModelResourceRequirements({ gpuLayers, useMmap });
  return { ram: need.cpuRam, vram: need.gpuVram };
}

/**
 * A context (KV cache + compute buffers) of `sequences` × `contextSize` tokens, its KV cache of the
 * element type `attention` sets (f16 2 bytes, q8_0 34/32, q4_0 18/32 bytes an element).
 *
 * node-llama-cpp 3.22's estimate takes a KV type but counts a quantized one at its block's bytes per
 * element (34 for q8_0: 32 times too much), so the KV cache is counted here: the estimate at F16 and
 * at F32 (block size 1 both) differ by 2 bytes an element, which gives the element count.
 */
export function estimateContext(
  insights: GgufInsights,
  opts: {
    contextSize: number;
    sequences: number;
    batchSize: number;
    gpuLayers: number;
    embedding: boolean;
    attention?: AttentionSettings;
  },
): MemoryNeed {
  const attention = opts.attention ?? DEFAULT_ATTENTION;
  const at = (type: GgmlType) =>
    insights.estimateContextResourceRequirements({
      contextSize: opts.contextSize,
      sequences: opts.sequences,
      batchSize: opts.batchSize,
      modelGpuLayers: opts.gpuLayers,
      isEmbeddingContext: opts.embedding,
      flashAttention: estimatesFlashAttention(attention),
      kvCacheKeyType: type,
      kvCacheValueType: type,
    });
  const f16 = at(GgmlType.F16);
  if (attention.kvCacheType === 'f16') return { ram: f16.cpuRam, vram: f16.gpuVram };
  const f32 = at(GgmlType.F32);
  const saved = 2 - KV_BYTES_PER_ELEMENT[attention.kvCacheType];
  // elements = (f32 - f16) / 2 bytes; each takes `saved` bytes fewer than at f16
  return {
    ram: f16.cpuRam - ((f32.cpuRam - f16.cpuRam) / 2) * saved,
    vram: f16.gpuVram - ((f32.gpuVram - f16.gpuVram) / 2) * saved,
  };
}

/** The part of a need the budget limits: VRAM on a GPU backend, RAM on CPU. */
export function budgetedBytes(backend: Backend, need: MemoryNeed): number {
  return Math.ceil(backend === 'cpu' ? need.ram : need.vram);
}

/** The default budget: free VRAM (GPU) or free RAM (CPU) now, less llama.cpp's padding. */
export async function defaultMemoryBudget(llama: Llama, backend: Backend): Promise<number> {
  if (backend === 'cpu') {
    const ram = await llama.getRamState();
    return Math.max(0, ram.free - llama.ramPaddingSize);
  }
  const vram = await llama.getVramState();
  return Math.max(0, vram.free - llama.vramPaddingSize);
}

export function describeNeed(backend: Backend, need: MemoryNeed): string {
  return `${formatBytes(budgetedBytes(backend, need))} of ${backend === 'cpu' ? 'RAM' : 'VRAM'}`;
}
