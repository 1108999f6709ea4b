import { describe, expect, it } from 'vitest';
import { captureLog } from '../../test/support/log.js';
import { isHearthError } from '../errors.js';
import { GpuHealth } from './gpu-health.js';

describe('GPU health', () => {
  it('uses the GPU until it fails, then loads on the CPU and says so loudly (gpuFallback cpu)', () => {
    const { log, records } = captureLog();
    const gpu = new GpuHealth('cuda', 'cpu', log);
    expect(gpu.layersFor(-1)).toBe(-1);
    expect(gpu.isGpuFailure(new Error('Eval has failed'), 33)).toBe(true);
    gpu.markUnhealthy('loading llama3: CUDA error: out of memory');
    expect(gpu.healthy).toBe(false);
    expect(gpu.layersFor(-1)).toBe(0);
    expect(records.some((r) => r['level'] === 50 && /FAILED.*CPU/.test(String(r['msg'])))).toBe(true);
    expect(isHearthError(gpu.failedError('generation', new Error('Eval has failed')), 'ENGINE_GPU_FAILED')).toBe(true);
  });

  it('refuses loads after a failure with gpuFallback none', () => {
    const gpu = new GpuHealth('vulkan', 'none', captureLog().log);
    gpu.markUnhealthy('device lost');
    let err: unknown;
    try {
      gpu.layersFor(-1);
    } catch (e) {
      err = e;
    }
    expect(isHearthError(err, 'ENGINE_GPU_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/restart hearth once the GPU works, or set node.gpuFallback to cpu/);
  });

  it('does not blame the GPU for aborts, validation errors, CPU-only instances or a CPU backend', () => {
    const gpu = new GpuHealth('cuda', 'cpu', captureLog().log);
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    expect(gpu.isGpuFailure(abort, 33)).toBe(false);
    expect(gpu.isGpuFailure(new Error('Function name "x" is not in the supplied functions object'), 33)).toBe(false);
    expect(gpu.isGpuFailure(new Error('Eval has failed'), 0)).toBe(false);
    const cpu = new GpuHealth('cpu', 'cpu', captureLog().log);
    expect(cpu.isGpuFailure(new Error('Eval has failed'), 33)).toBe(false);
    cpu.markUnhealthy('x');
    expect(cpu.healthy).toBe(true);
    expect(cpu.layersFor(-1)).toBe(0);
  });
});
