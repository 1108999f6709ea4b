import { getLlama, type LlamaGpuType } from 'node-llama-cpp';

export type GpuPreference = 'auto' | 'cuda' | 'vulkan' | 'metal' | 'cpu';

export interface GpuReport {
  /** the backend llama.cpp actually runs on */
  backend: 'cuda' | 'vulkan' | 'metal' | 'cpu';
  devices: string[];
  vram?: { total: number; used: number; free: number };
  /** why a GPU preference was not met, when it was not */
  note?: string;
}

/**
 * Asks llama.cpp (through node-llama-cpp) which backend works here. With `auto`
 * a GPU is used when its binary loads and a device answers; otherwise CPU.
 */
export async function detectGpu(preference: GpuPreference): Promise<GpuReport> {
  const gpu: LlamaGpuType | 'auto' = preference === 'cpu' ? false : preference;
  try {
    const llama = await getLlama({ gpu, logLevel: 'error' as never, build: 'never', usePrebuiltBinaries: true });
    try {
      if (llama.gpu === false) {
        return {
          backend: 'cpu',
          devices: [],
          ...(preference !== 'cpu' && preference !== 'auto' ? { note: `${preference} is not available` } : {}),
        };
      }
      const [devices, vram] = await Promise.all([llama.getGpuDeviceNames(), llama.getVramState()]);
      return { backend: llama.gpu, devices, vram: { total: vram.total, used: vram.used, free: vram.free } };
    } finally {
      await llama.dispose();
    }
  } catch (err) {
    if (preference === 'auto' || preference === 'cpu') throw err;
    const fallback = await detectGpu('cpu');
    return { ...fallback, note: `${preference} failed to start: ${(err as Error).message}` };
  }
}
