import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describeError, HearthError } from '../../errors.js';
import { type AttentionSettings, attentionFlags, DEFAULT_ATTENTION } from '../attention.js';
import type { LoadOptions } from '../types.js';

const run = promisify(execFile);

/** What a llama-server process serves: generation (chat, completion, infill), embeddings or reranking; a start-up mode of the server. */
export type ServerMode = 'generate' | 'embedding' | 'rerank';

/** The flags hearth passes to llama-server: a `inference.llamaServer` lacking one is refused, naming it. */
export const REQUIRED_FLAGS = [
  '--model',
  '--host',
  '--ctx-size',
  '--parallel',
  '--batch-size',
  '--threads',
  '--n-gpu-layers',
  '--load-mode',
  '--jinja',
  '--no-webui',
  '--poll',
  '--embeddings',
  '--pooling',
  '--flash-attn',
  '--cache-type-k',
  '--cache-type-v',
  '--no-kv-unified',
  '--mmproj',
  '--rerank',
  '--context-shift',
  '--reasoning-format',
] as const;

export interface ServerArgsInput {
  modelPath: string;
  /** normalised, numCtx already capped at the trained context */
  load: LoadOptions;
  mode: ServerMode;
  /** the GGUF names no pooling type (a generative model asked for embeddings): mean pooling, as hearth's in-process engine */
  needsPooling: boolean;
  /** a vision model's projector (llama.cpp mmproj GGUF): images go through it */
  projectorPath?: string;
  /** flash attention and the KV cache type, resolved (attention.ts); default auto and f16 */
  attention?: AttentionSettings;
}

/**
 * The command line of one instance. `-c` is the whole KV cache, split across
 * the `-np` slots (no unified cache), so hearth's per-sequence `num_ctx`
 * becomes `num_ctx × num_parallel`.
 */
export function serverArgs(input: ServerArgsInput): string[] {
  const { load, mode } = input;
  const slots = mode === 'generate' ? load.numParallel : 1;
  const args = [
    '--model',
    input.modelPath,
    '--ctx-size',
    String(load.numCtx * slots),
    '--parallel',
    String(slots),
    '--no-kv-unified',
    '--batch-size',
    String(mode === 'generate' ? Math.min(load.numBatch, load.numCtx * slots) : load.numCtx),
    '--threads',
    String(load.numThread),
    '--load-mode',
    load.useMmap ? 'mmap' : 'none',
    '--no-webui',
    // ggml's threads sleep as soon as a graph is done instead of spinning for the next one (llama.cpp's
    // default, 50, spins about 150 ms after every request on both cores of a 2-core node): measured in
    // bench/server-poll.ts, decode and aggregate speed stay the same, and a second model's llama-server
    // taking turns with this one (an embedder beside a chat model) answers in 21 ms instead of 42.
    '--poll',
    '0',
    ...attentionFlags(input.attention ?? DEFAULT_ATTENTION),
  ];
  // -1 (auto): llama.cpp fits as many layers as the device holds
  if (load.numGpu >= 0) args.push('--n-gpu-layers', String(load.numGpu));
  if (mode === 'embedding') {
    // an embedding batch must hold a whole input: the physical batch is the context
    args.push('--embeddings', '--ubatch-size', String(load.numCtx));
    if (input.needsPooling) args.push('--pooling', 'mean');
  } else if (mode === 'rerank') {
    // a query and a document in one batch, scored by the GGUF's classifier head
    args.push('--rerank', '--ubatch-size', String(load.numCtx));
  } else {
    // Ollama keeps generating past the context end (it drops the oldest tokens after num_keep); llama-server stops there unless told
    args.push('--jinja', '--context-shift');
    // a thinking model's reasoning comes apart from its answer (message.reasoning_content); each request asks again
    args.push('--reasoning-format', 'deepseek');
    if (input.projectorPath) args.push('--mmproj', input.projectorPath);
  }
  return args;
}

/**
 * Checks a llama-server hearth did not build (`inference.llamaServer`): it
 * must answer `--version`, and its `--help` must list every flag hearth passes.
 */
export async function checkLlamaServer(binary: string): Promise<{ version: string }> {
  let version: string;
  try {
    const out = await run(binary, ['--version'], { timeout: 15_000 });
    version = `${out.stdout}\n${out.stderr}`.match(/version:\s*([^\n]+)/)?.[1]?.trim() ?? '';
  } catch (err) {
    throw new HearthError('ENGINE_SERVER_UNSUITABLE', [
      `inference.llamaServer ${binary} does not answer --version (${describeError(err)}): point it at a llama-server executable, or remove it to use \`hearth engine build\`'s`,
    ]);
  }
  if (!version) {
    throw new HearthError('ENGINE_SERVER_UNSUITABLE', [
      `inference.llamaServer ${binary} printed no "version:" line for --version: it is not llama.cpp's llama-server`,
    ]);
  }
  let help: string;
  try {
    const out = await run(binary, ['--help'], { timeout: 15_000, maxBuffer: 8 << 20 });
    help = `${out.stdout}\n${out.stderr}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    help = `${e.stdout ?? ''}\n${e.stderr ?? ''}`;
  }
  const missing = REQUIRED_FLAGS.filter((flag) => !new RegExp(`(^|[\\s,])${flag}([\\s,=]|$)`, 'm').test(help));
  if (missing.length > 0) {
    throw new HearthError('ENGINE_SERVER_UNSUITABLE', [
      `inference.llamaServer ${binary} (version ${version}) lacks ${missing.join(', ')}, which hearth passes: use a newer llama-server, or remove inference.llamaServer to use \`hearth engine build\`'s`,
    ]);
  }
  return { version };
}
