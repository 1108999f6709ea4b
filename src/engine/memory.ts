import type { GgufInsights, Llama } from 'node-llama-cpp';
import { formatBytes } from '../units.js';
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

/** A context (KV cache + compute buffers) of `sequences` × `contextSize` tokens. */
export function estimateContext(
  insights: GgufInsights,
  opts: { contextSize: number; sequences: number; batchSize: number; gpuLayers: number; embedding: boolean },
): MemoryNeed {
  const need = insights.estimateContextResourceRequirements({
    contextSize: opts.contextSize,
    sequences: opts.sequences,
    batchSize: opts.batchSize,
    modelGpuLayers: opts.gpuLayers,
    isEmbeddingContext: opts.embedding,
  });
  return { ram: need.cpuRam, vram: need.gpuVram };
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
