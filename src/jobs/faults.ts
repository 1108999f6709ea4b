import { HearthError } from '../errors.js';
import type { JobEngine } from './record-processor.js';

/**
 * A test hook for the GPU-loss path: with `HEARTH_TEST_ENGINE_FAULT=gpu-lost@N[,M...]`, the Nth
 * (and Mth ...) engine call made by this process's job workers fails as a lost GPU does: the engine is
 * marked unhealthy and the call throws ENGINE_GPU_FAILED. Unset, it does nothing.
 */
export class EngineFaults {
  readonly #at: ReadonlySet<number>;
  #calls = 0;

  constructor(spec: string | undefined) {
    const match = /^gpu-lost@(\d+(?:,\d+)*)$/.exec(spec?.trim() ?? '');
    if (spec?.trim() && !match) {
      throw new HearthError(
        'CONFIG_INVALID',
        `HEARTH_TEST_ENGINE_FAULT=${spec}: expected gpu-lost@N (N = the engine call to fail)`,
      );
    }
    this.#at = new Set(match ? match[1]!.split(',').map(Number) : []);
  }

  /** Counts an engine call; throws when this one is to fail. */
  beforeEngineCall(engine: Pick<JobEngine, 'markGpuUnhealthy'>): void {
    if (this.#at.size === 0) return;
    this.#calls++;
    if (!this.#at.has(this.#calls)) return;
    const reason = `injected fault: engine call ${this.#calls} lost the GPU`;
    engine.markGpuUnhealthy(reason);
    throw new HearthError('ENGINE_GPU_FAILED', [
      `generation failed on the GPU (${reason}); the GPU is marked unhealthy`,
    ]);
  }
}
