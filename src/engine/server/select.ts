import { join } from 'node:path';
import type { Logger } from 'pino';
import { describeError } from '../../errors.js';
import type { Backend } from '../llama.js';
import { type BuildProgress, buildServer, findServerBuild, type ServerBuild } from './build.js';
import { backendFolder, type CudaNeeds, chooseCudaLibrary, cudaNeeds, describeCudaNeeds } from './cuda-runtime.js';
import type { ServerBinary } from './engine.js';
import { checkLlamaServer } from './flags.js';
import type { ServerBackend } from './prebuilt.js';

export type EngineChoice = 'auto' | 'server' | 'inprocess';

export interface ServerSelection {
  /** the llama-server to run models with now; absent: in-process */
  binary?: ServerBinary;
  /** no build yet for this node: `hearth serve` builds one (in the background with `auto`) */
  buildNeeded: boolean;
  /** one line: what serves and why */
  why: string;
  /** something the node lacks that the engine will run without (a CUDA runtime): logged as a warning */
  warning?: string;
}

/** The server backend for the backend node-llama-cpp runs on (metal: no linked build on this platform, compiled whole). */
export function serverBackend(backend: Backend): ServerBackend {
  return backend === 'cuda' || backend === 'vulkan' ? backend : 'cpu';
}

/**
 * The llama-server of a build. A build linked for CUDA loads the prebuilt CUDA library whose
 * runtime this node has (node-llama-cpp's main one, else its fallback for an older CUDA); with
 * neither complete, `warning` says what is missing: ggml's CUDA load would fail and llama-server
 * run on the CPU.
 */
export async function binaryOfBuild(build: ServerBuild): Promise<{ binary: ServerBinary; warning?: string }> {
  const binary: ServerBinary = {
    path: build.server,
    libDir: build.libDir,
    quantize: build.quantize,
    origin: `hearth engine build ${build.key} (${build.mode === 'linked' ? `linked to node-llama-cpp's prebuilt ${build.backend} libraries` : 'llama.cpp compiled whole'})`,
  };
  if (build.backend !== 'cuda' || build.mode !== 'linked') return { binary };
  let needs: CudaNeeds[];
  try {
    needs = await cudaNeeds();
  } catch (err) {
    return { binary, warning: `cannot check the CUDA libraries llama-server needs: ${describeError(err)}` };
  }
  const choice = chooseCudaLibrary(needs);
  if (!choice) return { binary, warning: 'no prebuilt CUDA library installed (@node-llama-cpp/*-cuda)' };
  const { chosen, complete } = choice;
  if (!complete) {
    return {
      binary,
      warning: `the CUDA libraries are incomplete here, so llama-server would run on the CPU: ${describeCudaNeeds(needs)}`,
    };
  }
  if (chosen !== needs[0]) {
    try {
      binary.backendDir = await backendFolder(join(build.dir, 'backends-cuda'), build.libDir, chosen.library);
    } catch (err) {
      // another hearth process making the same folder at this moment, or an unwritable engine folder
      return {
        binary,
        warning: `cannot prepare the ${chosen.label} CUDA library (${describeError(err)}), so llama-server would run on the CPU: ${describeCudaNeeds(needs)}`,
      };
    }
  }
  binary.origin += `, ${chosen.runtime ?? 'CUDA'} through the ${chosen.label.split(' ')[0]} CUDA library`;
  return { binary };
}

/**
 * Decides what runs models: `inference.llamaServer` (checked: refused with
 * ENGINE_SERVER_UNSUITABLE naming a missing flag), else the build in
 * `engineDir` for this backend, else in-process (and whether to build).
 */
export async function selectServer(opts: {
  engine: EngineChoice;
  llamaServer: string | undefined;
  engineDir: string;
  backend: Backend;
}): Promise<ServerSelection> {
  if (opts.engine === 'inprocess') {
    return { buildNeeded: false, why: 'in-process llama.cpp (inference.engine: inprocess)' };
  }
  if (opts.llamaServer) {
    const { version } = await checkLlamaServer(opts.llamaServer);
    return {
      binary: { path: opts.llamaServer, origin: `inference.llamaServer (version ${version})` },
      buildNeeded: false,
      why: `llama-server processes from inference.llamaServer ${opts.llamaServer} (version ${version})`,
    };
  }
  const backend = serverBackend(opts.backend);
  const build = await findServerBuild(opts.engineDir, backend);
  if (build) {
    const { binary, warning } = await binaryOfBuild(build);
    return {
      binary,
      buildNeeded: false,
      why: `llama-server processes (${binary.origin}, in ${opts.engineDir})`,
      ...(warning ? { warning } : {}),
    };
  }
  return {
    buildNeeded: true,
    why: `in-process llama.cpp: no llama-server built for ${backend} in ${opts.engineDir} yet (\`hearth engine build\`; \`hearth serve\` builds it in the background)`,
  };
}

/**
 * `hearth serve`'s background build: logs progress every 10 %, attaches the
 * result with `attach`. Returns a function that cancels it (on close).
 */
export function buildInBackground(opts: {
  engineDir: string;
  backend: Backend;
  log: Logger;
  attach: (binary: ServerBinary) => void;
}): { cancel: () => Promise<void>; done: Promise<void> } {
  const abort = new AbortController();
  let lastTenth = -1;
  const onProgress = (p: BuildProgress) => {
    if (p.phase !== 'compile' || p.total === 0) return;
    const tenth = Math.floor((p.done / p.total) * 10);
    if (tenth === lastTenth) return;
    lastTenth = tenth;
    opts.log.info(
      { done: p.done, total: p.total, etaSeconds: p.etaSeconds },
      `engine: building llama-server in the background (${tenth * 10} %); in-process llama.cpp serves meanwhile`,
    );
  };
  const running = buildServer({
    engineDir: opts.engineDir,
    backend: serverBackend(opts.backend),
    onProgress,
    onNote: (line) => opts.log.warn(`engine: ${line}`),
    signal: abort.signal,
  }).then(
    (build) => {
      opts.log.info({ seconds: build.seconds, dir: build.dir }, 'engine: llama-server built');
      return binaryOfBuild(build).then(({ binary, warning }) => {
        if (warning) opts.log.warn(`engine: ${warning}`);
        opts.attach(binary);
      });
    },
    (err: unknown) => {
      if (abort.signal.aborted) return;
      opts.log.error(
        { err: describeError(err) },
        'engine: building llama-server failed; in-process llama.cpp keeps serving (run `hearth engine build` to see why)',
      );
    },
  );
  return {
    done: running,
    cancel: async () => {
      abort.abort();
      await running;
    },
  };
}
