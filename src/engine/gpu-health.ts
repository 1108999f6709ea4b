import type { Logger } from 'pino';
import { describeError, HearthError } from '../errors.js';
import type { Backend } from './llama.js';

/** Messages of llama.cpp failures that happen on the device (node-llama-cpp's addon and ggml backends). */
const NATIVE_FAILURE =
  /Eval has failed|Failed to (load model|create context|sample next token|generated? next token|get embeddings)|cuda|cublas|vulkan|vk::|metal|ggml|out of memory|device lost|illegal (memory )?address/i;

/**
 * Whether the GPU may still be used. A load or a generation that fails on the
 * GPU marks it unhealthy (invariant 4: the request in hand fails, nothing
 * acknowledged is lost); from then on loads run on the CPU (gpuFallback: cpu)
 * or are refused (gpuFallback: none) until hearth restarts.
 */
export class GpuHealth {
  private failure: { reason: string; at: Date } | null = null;

  constructor(
    readonly backend: Backend,
    private readonly fallback: 'cpu' | 'none',
    private readonly log: Logger,
  ) {}

  get healthy(): boolean {
    return this.failure === null;
  }

  /** Marks the GPU unhealthy (once; later calls only log at debug). */
  markUnhealthy(reason: string): void {
    if (this.backend === 'cpu') return;
    if (this.failure) {
      this.log.debug({ reason }, 'engine: GPU already marked unhealthy');
      return;
    }
    this.failure = { reason, at: new Date() };
    this.log.error(
      { backend: this.backend, reason, gpuFallback: this.fallback },
      this.fallback === 'cpu'
        ? `engine: GPU (${this.backend}) FAILED and is marked unhealthy: every later load runs on the CPU (slow) until hearth restarts`
        : `engine: GPU (${this.backend}) FAILED and is marked unhealthy: loads are refused (gpuFallback: none) until hearth restarts`,
    );
  }

  /**
   * The numGpu a load should use: 0 on a CPU backend or after a GPU failure with fallback `cpu`;
   * with fallback `none` a load after a failure is refused.
   */
  layersFor(numGpu: number): number {
    if (this.backend === 'cpu') return 0;
    if (!this.failure) return numGpu;
    if (this.fallback === 'cpu') return 0;
    throw new HearthError('ENGINE_GPU_FAILED', [
      `the GPU (${this.backend}) has been unusable since ${this.failure.at.toISOString()} (${this.failure.reason}): restart hearth once the GPU works, or set node.gpuFallback to cpu`,
    ]);
  }

  /**
   * Whether an error on an instance with `gpuLayers` offloaded counts as a GPU failure: only
   * failures reported by the native code (a decode, a load, a context), never the JS-side
   * validation errors of node-llama-cpp (bad schema, invalid function call) nor aborts.
   */
  isGpuFailure(err: unknown, gpuLayers: number): boolean {
    if (this.backend === 'cpu' || gpuLayers === 0) return false;
    if (!(err instanceof Error) || err instanceof HearthError) return false;
    if (err.name === 'AbortError' || err.name === 'InsufficientMemoryError') return false;
    return NATIVE_FAILURE.test(err.message);
  }

  /** The error a request sees when the GPU failed under it. */
  failedError(what: string, err: unknown): HearthError {
    return new HearthError(
      'ENGINE_GPU_FAILED',
      [
        `${what} failed on the GPU (${this.backend}: ${describeError(err)}); the GPU is marked unhealthy${
          this.fallback === 'cpu'
            ? ' and later requests run on the CPU: retry the request'
            : ': restart hearth once the GPU works'
        }`,
      ],
      { cause: err },
    );
  }
}
