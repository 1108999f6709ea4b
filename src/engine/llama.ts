import { getLlama, type Llama, LlamaLogLevel } from 'node-llama-cpp';
import type { Logger } from 'pino';
import { describeError, HearthError } from '../errors.js';
import type { EngineOptions } from './options.js';

export type Backend = 'cuda' | 'vulkan' | 'metal' | 'cpu';

/** A counted hold on the process's one Llama; `release()` disposes it when the last holder lets go. */
export interface LlamaLease {
  readonly llama: Llama;
  readonly backend: Backend;
  release(): Promise<void>;
}

interface SharedLlama {
  llama: Promise<{ llama: Llama; backend: Backend }>;
  holders: number;
  preference: EngineOptions['gpu'];
}

// llama.cpp's backends are process-wide state: one Llama per process, shared by every Engine
// (tests open several engines in one process; a second Llama would load the backends twice).
let shared: SharedLlama | null = null;

/** Opens (or joins) the process's Llama. Never builds llama.cpp: only the prebuilt binaries are used. */
export async function acquireLlama(opts: Pick<EngineOptions, 'gpu' | 'gpuFallback' | 'log'>): Promise<LlamaLease> {
  if (shared && shared.preference !== opts.gpu) {
    opts.log.warn(
      { wanted: opts.gpu, running: shared.preference },
      'engine: llama.cpp already runs in this process with another GPU preference; sharing it',
    );
  }
  if (!shared) {
    const entry: SharedLlama = { llama: startLlama(opts), holders: 0, preference: opts.gpu };
    shared = entry;
    entry.llama.catch(() => {
      if (shared === entry) shared = null;
    });
  }
  const entry = shared;
  entry.holders++;
  let started: { llama: Llama; backend: Backend };
  try {
    started = await entry.llama;
  } catch (err) {
    entry.holders--;
    throw err;
  }
  let released = false;
  return {
    llama: started.llama,
    backend: started.backend,
    release: async () => {
      if (released) return;
      released = true;
      entry.holders--;
      if (entry.holders === 0 && shared === entry) {
        shared = null;
        await started.llama.dispose();
      }
    },
  };
}

async function startLlama(
  opts: Pick<EngineOptions, 'gpu' | 'gpuFallback' | 'log'>,
): Promise<{ llama: Llama; backend: Backend }> {
  const { log } = opts;
  const common = {
    build: 'never' as const,
    usePrebuiltBinaries: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.warn,
    logger: llamaLogger(log),
    // 0: every context uses exactly the threads it asks for (the engine decides them per instance).
    maxThreads: 0,
  };
  if (opts.gpu === 'cpu' || opts.gpu === 'auto') {
    const llama = await getLlama({ ...common, gpu: opts.gpu === 'cpu' ? false : 'auto' });
    return { llama, backend: llama.gpu === false ? 'cpu' : llama.gpu };
  }
  try {
    const llama = await getLlama({ ...common, gpu: opts.gpu });
    return { llama, backend: llama.gpu === false ? 'cpu' : llama.gpu };
  } catch (err) {
    if (opts.gpuFallback !== 'cpu') {
      throw new HearthError(
        'ENGINE_GPU_FAILED',
        [
          `the ${opts.gpu} backend failed to start (${describeError(err)}): check the driver with \`hearth doctor\`, or set node.gpu to auto or cpu, or node.gpuFallback to cpu`,
        ],
        { cause: err },
      );
    }
    log.error(
      { err, gpu: opts.gpu },
      `engine: the ${opts.gpu} backend failed to start; RUNNING ON CPU (gpuFallback: cpu). Inference will be slow until the GPU is fixed`,
    );
    const llama = await getLlama({ ...common, gpu: false });
    return { llama, backend: 'cpu' };
  }
}

function llamaLogger(log: Logger): (level: LlamaLogLevel, message: string) => void {
  return (level, message) => {
    const text = message.trimEnd();
    if (text === '') return;
    switch (level) {
      case LlamaLogLevel.fatal:
      case LlamaLogLevel.error:
        log.error({ source: 'llama.cpp' }, text);
        break;
      case LlamaLogLevel.warn:
        log.warn({ source: 'llama.cpp' }, text);
        break;
      default:
        log.debug({ source: 'llama.cpp' }, text);
    }
  };
}
