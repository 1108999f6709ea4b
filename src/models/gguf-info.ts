import { readGgufFileInfo } from 'node-llama-cpp';
import { HearthError } from '../errors.js';

/** What the library records about a GGUF when it is created (so listing never re-reads blobs). */
export interface GgufSummary {
  details: {
    format: 'gguf' | 'onnx';
    family: string;
    families: string[];
    parameter_size: string;
    quantization_level: string;
  };
  /** flattened GGUF key/values as `ollama show` returns them; long arrays (tokenizer vocab) become null */
  modelInfo: Record<string, unknown>;
  chatTemplate: string | null;
}

// llama.cpp's enum llama_ftype (general.file_type) → the names Ollama shows.
const FILE_TYPES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  7: 'Q8_0',
  8: 'Q5_0',
  9: 'Q5_1',
  10: 'Q2_K',
  11: 'Q3_K_S',
  12: 'Q3_K_M',
  13: 'Q3_K_L',
  14: 'Q4_K_S',
  15: 'Q4_K_M',
  16: 'Q5_K_S',
  17: 'Q5_K_M',
  18: 'Q6_K',
  19: 'IQ2_XXS',
  20: 'IQ2_XS',
  21: 'Q2_K_S',
  22: 'IQ3_XS',
  23: 'IQ3_XXS',
  24: 'IQ1_S',
  25: 'IQ4_NL',
  26: 'IQ3_S',
  27: 'IQ3_M',
  28: 'IQ2_S',
  29: 'IQ2_M',
  30: 'IQ4_XS',
  31: 'IQ1_M',
  32: 'BF16',
  36: 'TQ1_0',
  37: 'TQ2_0',
};
// ggml tensor types, for files without general.file_type.
const TENSOR_TYPES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  8: 'Q8_0',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  30: 'BF16',
};

/** As Ollama's format.HumanNumber: `8.0B`, `494.03M`. */
export function humanParameterCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}K`;
  return String(n);
}

function flatten(value: unknown, prefix: string, out: Record<string, unknown>): void {
  if (value && typeof value === 'object' && !Array.isArray(value) && !ArrayBuffer.isView(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const arr = Array.from(value as ArrayLike<unknown>);
    out[prefix] = arr.length > 64 ? null : arr.map((v) => (typeof v === 'bigint' ? Number(v) : v));
    return;
  }
  out[prefix] = typeof value === 'bigint' ? Number(value) : value;
}

export async function summariseGguf(path: string, label: string): Promise<GgufSummary> {
  let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    info = await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false, sourceType: 'filesystem' });
  } catch (err) {
    throw new HearthError('MODEL_INVALID', `${label} is not a valid GGUF file: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const meta = info.metadata as unknown as Record<string, Record<string, unknown>>;
  const general = (meta['general'] ?? {}) as Record<string, unknown>;
  const arch = String(general['architecture'] ?? 'unknown');
  let params = 0;
  const typeCounts = new Map<number, number>();
  for (const t of info.tensorInfo ?? []) {
    const n = t.dimensions.reduce<number>((a, d) => a * Number(d), 1);
    params += n;
    typeCounts.set(t.ggmlType, (typeCounts.get(t.ggmlType) ?? 0) + n);
  }
  const fileType = typeof general['file_type'] === 'number' ? FILE_TYPES[general['file_type'] as number] : undefined;
  const dominant = [...typeCounts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const modelInfo: Record<string, unknown> = {};
  flatten(meta, '', modelInfo);
  modelInfo['general.parameter_count'] = params;
  const tokenizer = (meta['tokenizer'] ?? {}) as Record<string, unknown>;
  return {
    details: {
      format: 'gguf',
      family: arch,
      families: [arch],
      parameter_size: humanParameterCount(params),
      quantization_level: fileType ?? (dominant !== undefined ? (TENSOR_TYPES[dominant] ?? 'unknown') : 'unknown'),
    },
    modelInfo,
    chatTemplate: typeof tokenizer['chat_template'] === 'string' ? (tokenizer['chat_template'] as string) : null,
  };
}
