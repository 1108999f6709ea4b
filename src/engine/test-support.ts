// Shared by the engine's test files (not part of the engine's API).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ModelSpec } from './types.js';

/** A ModelSpec over a local file that counts how often the engine pins and releases it. */
export interface CountingSpec extends ModelSpec {
  resolved: number;
  released: number;
}

export async function localSpec(path: string, name = basename(path, '.gguf')): Promise<CountingSpec> {
  const bytes = await readFile(path);
  const spec: CountingSpec = {
    name,
    digest: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
    resolved: 0,
    released: 0,
    resolveFile: async () => {
      spec.resolved++;
      let done = false;
      return {
        path,
        release: () => {
          if (done) return;
          done = true;
          spec.released++;
        },
      };
    },
  };
  return spec;
}

/** Polls `check` every 20 ms until it holds or `ms` pass (bounded: tests never hang on it). */
export async function eventually(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}
