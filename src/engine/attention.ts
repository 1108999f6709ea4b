// Flash attention and the KV cache type (inference.flashAttention, inference.kvCacheType), Ollama's
// OLLAMA_FLASH_ATTENTION and OLLAMA_KV_CACHE_TYPE: llama-server flags, the memory estimate, and the
// in-process engine's share of them.
import type { GgufFileInfo } from 'node-llama-cpp';
import { HearthError } from '../errors.js';

export type FlashAttention = 'auto' | 'on' | 'off';
export type KvCacheType = 'f16' | 'q8_0' | 'q4_0';

export const FLASH_ATTENTION_MODES: readonly FlashAttention[] = ['auto', 'on', 'off'];
export const KV_CACHE_TYPES: readonly KvCacheType[] = ['f16', 'q8_0', 'q4_0'];

/** How every model instance attends: the same for all (node settings, not per request). */
export interface AttentionSettings {
  flashAttention: FlashAttention;
  kvCacheType: KvCacheType;
}

export const DEFAULT_ATTENTION: AttentionSettings = { flashAttention: 'auto', kvCacheType: 'f16' };

/**
 * Checks the settings: llama.cpp stores a quantized V cache only with flash attention, so `off` with a
 * quantized type is refused (a config error, naming both keys). `auto` with one runs as `on`
 * (attentionFlags), so llama-server never turns it off by itself and then fails to start.
 */
export function resolveAttention(settings: AttentionSettings): AttentionSettings {
  if (!FLASH_ATTENTION_MODES.includes(settings.flashAttention)) {
    throw new HearthError(
      'CONFIG_INVALID',
      `inference.flashAttention must be one of ${FLASH_ATTENTION_MODES.join(', ')}, got ${String(settings.flashAttention)}`,
    );
  }
  if (!KV_CACHE_TYPES.includes(settings.kvCacheType)) {
    throw new HearthError(
      'CONFIG_INVALID',
      `inference.kvCacheType must be one of ${KV_CACHE_TYPES.join(', ')}, got ${String(settings.kvCacheType)}`,
    );
  }
  if (settings.kvCacheType !== 'f16' && settings.flashAttention === 'off') {
    throw new HearthError(
      'CONFIG_INVALID',
      `inference.kvCacheType ${settings.kvCacheType} needs flash attention (llama.cpp quantizes the KV cache only with it), but inference.flashAttention is off: set inference.flashAttention to auto or on, or inference.kvCacheType to f16`,
    );
  }
  return { ...settings };
}

/** A GGUF's attention head sizes (K and V), from its metadata. */
export function headSizes(info: GgufFileInfo): { k: number; v: number } {
  const arch = info.architectureMetadata as {
    embedding_length?: number;
    attention?: { head_count?: number; key_length?: number; value_length?: number };
  };
  const heads = Number(arch.attention?.head_count ?? 0);
  const fallback = heads > 0 && arch.embedding_length ? arch.embedding_length / heads : 0;
  return { k: Number(arch.attention?.key_length ?? fallback), v: Number(arch.attention?.value_length ?? fallback) };
}

/** Elements per block of the quantized KV types (q8_0 and q4_0 alike). */
const KV_BLOCK = 32;

/**
 * The settings one model runs with. llama.cpp stores a quantized KV cache in blocks of 32 elements of
 * each head: a model whose head size is no multiple of 32 cannot have one, and keeps f16, as Ollama
 * does ("kv cache type not supported by model"); `fallback` says why, for the log.
 */
export function attentionForModel(
  settings: AttentionSettings,
  heads: { k: number; v: number },
): { attention: AttentionSettings; fallback: string | null } {
  if (settings.kvCacheType === 'f16') return { attention: settings, fallback: null };
  if (heads.k > 0 && heads.k % KV_BLOCK === 0 && heads.v > 0 && heads.v % KV_BLOCK === 0) {
    return { attention: settings, fallback: null };
  }
  return {
    attention: { ...settings, kvCacheType: 'f16' },
    fallback: `its attention heads (K ${heads.k}, V ${heads.v} elements) are no multiple of the ${KV_BLOCK} a ${settings.kvCacheType} block holds: its KV cache stays f16`,
  };
}

/** llama-server's flags (`--flash-attn on|off|auto`, `--cache-type-k/-v TYPE`); a quantized cache turns `auto` to `on`. */
export function attentionFlags(settings: AttentionSettings): string[] {
  return [
    '--flash-attn',
    settings.kvCacheType !== 'f16' && settings.flashAttention === 'auto' ? 'on' : settings.flashAttention,
    '--cache-type-k',
    settings.kvCacheType,
    '--cache-type-v',
    settings.kvCacheType,
  ];
}

/** Bytes an element of the KV cache takes: f16 2; q8_0 and q4_0 blocks of 32 elements, of 34 and 18 bytes. */
export const KV_BYTES_PER_ELEMENT: Record<KvCacheType, number> = { f16: 2, q8_0: 34 / 32, q4_0: 18 / 32 };

/**
 * Whether the memory estimate counts flash attention: `auto` counts as on (llama.cpp turns it on
 * wherever the backend has it, which the CPU, CUDA, Metal and Vulkan backends do).
 */
export function estimatesFlashAttention(settings: AttentionSettings): boolean {
  return settings.flashAttention !== 'off';
}

/**
 * The in-process engine's context options: flash attention maps onto node-llama-cpp's own switch; a
 * quantized KV cache is refused there (node-llama-cpp marks its KV type options experimental and
 * unstable), naming the server engine as the way.
 */
export function inProcessAttention(settings: AttentionSettings, model: string): { flashAttention: 'auto' | boolean } {
  if (settings.kvCacheType !== 'f16') {
    throw new HearthError(
      'ENGINE_CAPABILITY',
      `model "${model}" cannot load with inference.kvCacheType ${settings.kvCacheType}: only the server engine (llama-server) quantizes the KV cache, and the in-process engine serves now; run \`hearth engine build\` and set inference.engine to auto or server, or set inference.kvCacheType to f16`,
    );
  }
  return { flashAttention: settings.flashAttention === 'auto' ? 'auto' : settings.flashAttention === 'on' };
}
