import { HearthError } from '../errors.js';
import type { JobEngine } from './record-processor.js';

/** Which engine calls of one JobService's workers fail as a lost GPU does (1 = the first call). */
export interface EngineFaultPlan {
  gpuLostAt: readonly number[];
}

/**
 * A test hook for the GPU-loss path, passed through openContext's options (never the environment, so
 * two nodes in one process keep their own): the Nth (and Mth ...) engine call made by this service's
 * job workers fails as a lost GPU does: the engine is marked unhealthy and the call throws
 * ENGINE_GPU_FAILED. Without a plan, it does nothing.
 */
export class EngineFaults {
  private readonly at: ReadonlySet<number>;
  private calls = 0;

  constructor(plan: EngineFaultPlan | undefined) {
    this.at = new Set(plan?.gpuLostAt ?? []);
  }

  /** Counts an engine call; throws when this one is to fail. */
  beforeEngineCall(engine: Pick<JobEngine, 'markGpuUnhealthy'>): void {
    if (this.at.size === 0) return;
    this.calls++;
    if (!this.at.has(this.calls)) return;
    const reason = `injected fault: engine call ${this.calls} lost the GPU`;
    engine.markGpuUnhealthy(reason);
    throw new HearthError('ENGINE_GPU_FAILED', [
      `generation failed on the GPU (${reason}); the GPU is marked unhealthy`,
    ]);
  }
}
