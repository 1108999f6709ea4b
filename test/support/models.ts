// The standard set of generated models every test file shares (the global setup makes them once).
import { join } from 'node:path';
import { generateModel } from '../fixtures/gguf/index.js';
import { generateDiffusersModel } from '../fixtures/onnx/diffusers.js';

export interface TestModels {
  /** A tiny chat model with the ChatML template (node-llama-cpp's `ChatML` wrapper). */
  chat: string;
  /** The same shape with Qwen 2.5's tool-call template (node-llama-cpp parses `<tool_call>` function calls). */
  tools: string;
  /** A tiny embedding model (mean pooling), for `createEmbeddingContext`. */
  embed: string;
  /** A chat model whose template thinks (Qwen 3 style `<think>`), for llama-server's reasoning extraction. */
  thinking: string;
}

/**
 * Writes the standard test models into `dir` (which must exist) and returns their paths.
 * Deterministic: the same files, byte for byte, on every run. Takes well under a second.
 */
export async function makeTestModels(dir: string): Promise<TestModels> {
  // 2048 context: node-llama-cpp's function-calling system prompt alone is several hundred tokens.
  const common = { contextLength: 2048, seed: 1 } as const;
  const [chat, tools, embed, thinking] = await Promise.all([
    generateModel({ ...common, path: join(dir, 'chat.gguf'), chatTemplate: 'chatml', name: 'hearth-test-chat' }),
    generateModel({ ...common, path: join(dir, 'tools.gguf'), chatTemplate: 'qwen-tools', name: 'hearth-test-tools' }),
    generateModel({
      ...common,
      path: join(dir, 'embed.gguf'),
      chatTemplate: 'none',
      embedding: true,
      name: 'hearth-test-embed',
    }),
    generateModel({
      ...common,
      path: join(dir, 'thinking.gguf'),
      chatTemplate: 'qwen-thinking',
      name: 'hearth-test-thinking',
    }),
  ]);
  return { chat: chat.path, tools: tools.path, embed: embed.path, thinking: thinking.path };
}

/**
 * Writes the tiny SD 1.5 diffusers-layout ONNX fixture under Atlas files (`models/sd/<name>`) and
 * registers it, in place, in a running hearth as `<name>` (POST /api/create from `atlas:`).
 * `change`: edits the folder before it is registered (to break a file, say).
 */
export async function addImageModel(
  baseUrl: string,
  atlasDir: string,
  name = 'tiny-sd',
  change?: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = join(atlasDir, 'models', 'sd', name);
  await generateDiffusersModel({ dir, family: 'sd15' });
  await change?.(dir);
  const created = await fetch(`${baseUrl}/api/create`, {
    method: 'POST',
    body: JSON.stringify({ model: name, from: `atlas:models/sd/${name}`, stream: false }),
    headers: { 'content-type': 'application/json' },
  });
  if (created.status !== 200) throw new Error(`image model create failed: ${created.status} ${await created.text()}`);
}
