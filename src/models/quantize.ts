import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, HearthError } from '../errors.js';

/** The types `hearth create --quantize` (and /api/create `quantize`) makes, as Ollama names them. */
export const QUANTIZE_TYPES = ['q4_K_M', 'q5_K_M', 'q8_0'] as const;
export type QuantizeType = (typeof QUANTIZE_TYPES)[number];

/** Source types llama-quantize starts from: Ollama takes F16 and F32; hearth also BF16 and Q8_0 (requantized). */
const SOURCE_TYPES = new Set(['F32', 'F16', 'BF16', 'Q8_0']);

/** The type a `quantize` value names (case-insensitive, as Ollama), or a 400 naming the allowed ones. */
export function parseQuantizeType(value: string): QuantizeType {
  const found = QUANTIZE_TYPES.find((t) => t.toLowerCase() === value.trim().toLowerCase());
  if (!found) {
    throw new HearthError(
      'BAD_REQUEST',
      `unsupported quantization type ${JSON.stringify(value)}: use one of ${QUANTIZE_TYPES.join(', ')}`,
      { details: { param: 'quantize' } },
    );
  }
  return found;
}

/** Ollama's refusal of a source that is already quantized. */
export function checkQuantizeSource(level: string): void {
  if (!SOURCE_TYPES.has(level.toUpperCase())) {
    throw new HearthError(
      'BAD_REQUEST',
      `quantization is only supported for F16 and F32 models (and BF16, Q8_0 in hearth): this model is ${level || 'of an unknown type'}; create from an F16 or F32 GGUF`,
      { details: { param: 'quantize' } },
    );
  }
}

/** llama.cpp's llama-quantize, as `hearth engine build` made it (run with its shared libraries). */
export interface Quantizer {
  binary: string;
  libDir?: string;
  threads: number;
}

/**
 * Runs llama-quantize on `source` into a temporary folder (removed by
 * `cleanup`); the caller stores the result on Atlas (the blob writer makes it
 * appear atomically). Its output goes to `onLine` for the log.
 */
export async function runQuantize(
  q: Quantizer,
  source: string,
  type: QuantizeType,
  workDir: string,
  onLine: (line: string) => void = () => {},
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(workDir, 'quantize-'));
  const out = join(dir, 'model.gguf');
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const env = { ...process.env };
  if (q.libDir) env['LD_LIBRARY_PATH'] = [q.libDir, env['LD_LIBRARY_PATH']].filter(Boolean).join(':');
  const tail: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      // the prebuilt libraries find their backends beside themselves: run from that folder, as the server is
      const child = spawn(q.binary, ['--allow-requantize', source, out, type.toUpperCase(), String(q.threads)], {
        cwd: q.libDir ?? dir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines = (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line.trim()) continue;
          onLine(line);
          tail.push(line);
          if (tail.length > 8) tail.shift();
        }
      };
      child.stdout.on('data', lines);
      child.stderr.on('data', lines);
      child.on('error', reject);
      child.on('exit', (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`exited with ${signal ?? `code ${code}`}: ${tail.join(' | ')}`)),
      );
    });
  } catch (err) {
    await cleanup();
    throw new HearthError('QUANTIZE_FAILED', [type, describeError(err)], { cause: err });
  }
  return { path: out, cleanup };
}
