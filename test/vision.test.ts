// Vision through the server engine: a generated chat model with a generated
// mmproj projector (llama.cpp's clip format), so each image runs through
// llama-server's real mtmd code. Random weights: the test checks the path
// (the request succeeds, the image's tokens are counted), not what is "seen".
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI, { BadRequestError } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateProjector } from './fixtures/gguf/index.js';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  runHearthCli,
  startHearthInProcess,
} from './support/hearth.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let ollama: Ollama;
let openai: OpenAI;
let png: Buffer;
let imageTokens: number;
let images: Server;
let imageUrl: string;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-vision-');
  const models = await makeTestModels(dirs.root);
  const projector = await generateProjector({ path: join(dirs.root, 'mmproj.gguf'), textWidth: 64 });
  imageTokens = projector.imageTokens;
  png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .png()
    .toBuffer();
  images = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png));
  await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  imageUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/red.png`;
  hearth = await startHearthInProcess(dirs, { inference: { numParallel: 1, numCtx: 512, fetchImageUrls: true } });
  // The CLI path: a Modelfile with hearth's PROJECTOR line.
  await writeFile(
    join(dirs.root, 'Modelfile'),
    `FROM ./chat.gguf\nPROJECTOR ./mmproj.gguf\nPARAMETER stop "<|im_end|>"\nPARAMETER num_predict 4\n`,
  );
  await writeFile(join(dirs.root, 'Modelfile.plain'), 'FROM ./chat.gguf\nPARAMETER num_predict 4\n');
  const env = { HEARTH_HOST: hearth.url };
  const made = await runHearthCli(dirs, ['create', 'seeing', '-f', join(dirs.root, 'Modelfile')], { env });
  expect(made.code, made.stderr).toBe(0);
  const plain = await runHearthCli(dirs, ['create', 'blind', '-f', join(dirs.root, 'Modelfile.plain')], { env });
  expect(plain.code, plain.stderr).toBe(0);
  // --quantize: the model quantized by llama-quantize, its projector kept
  const quantized = await runHearthCli(
    dirs,
    ['create', 'seeing-q8', '-f', join(dirs.root, 'Modelfile'), '--quantize', 'q8_0'],
    { env },
  );
  expect(quantized.code, quantized.stderr).toBe(0);
  expect(quantized.stdout).toMatch(/quantizing F32 model to Q8_0\n(.*\n)*success/);
  ollama = new Ollama({ host: hearth.url });
  openai = new OpenAI({ baseURL: `${hearth.url}/v1`, apiKey: 'sk-anything', maxRetries: 0 });
  void models;
}, 300_000);

afterAll(async () => {
  await hearth?.close();
  await new Promise((resolve) => images?.close(resolve));
  await dirs?.cleanup();
});

describe('a model with a projector layer', () => {
  it('is stored with the projector and shows vision', async () => {
    const show = await ollama.show({ model: 'seeing' });
    expect(show.capabilities).toContain('vision');
    expect((show as unknown as { projector_info: Record<string, unknown> }).projector_info).toMatchObject({
      'general.architecture': 'clip',
      'clip.projector_type': 'mlp',
    });
    expect(show.model_info).not.toHaveProperty('hearth.projector');
    const q8 = await ollama.show({ model: 'seeing-q8' });
    expect(q8.details.quantization_level).toBe('Q8_0');
    expect(q8.capabilities).toContain('vision');
    const blind = await ollama.show({ model: 'blind' });
    expect(blind.capabilities).not.toContain('vision');
  });

  it('answers Ollama images on /api/chat and /api/generate, counting the image tokens', async () => {
    const text = await ollama.chat({ model: 'seeing', messages: [{ role: 'user', content: 'What is this?' }] });
    const seen = await ollama.chat({
      model: 'seeing',
      messages: [{ role: 'user', content: 'What is this?', images: [png.toString('base64')] }],
    });
    expect(seen.done).toBe(true);
    expect(seen.prompt_eval_count).toBe(text.prompt_eval_count + imageTokens);
    const generated = await ollama.generate({ model: 'seeing', prompt: 'Describe', images: [png] });
    expect(generated.done).toBe(true);
    expect(generated.prompt_eval_count).toBeGreaterThan(imageTokens);
  });

  it('answers OpenAI image_url parts: data URLs, and http URLs when fetchImageUrls allows', async () => {
    const ask = (url: string) =>
      openai.chat.completions.create({
        model: 'seeing',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url } },
            ],
          },
        ],
      });
    const inline = await ask(`data:image/png;base64,${png.toString('base64')}`);
    expect(inline.choices[0]?.message.role).toBe('assistant');
    expect(inline.usage?.prompt_tokens).toBeGreaterThan(imageTokens);
    const fetched = await ask(imageUrl);
    expect(fetched.usage?.prompt_tokens).toBe(inline.usage?.prompt_tokens);
  });

  it('refuses data that is not base64 with a 400 naming images', async () => {
    const res = await fetch(`${hearth.url}/api/chat`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'seeing',
        stream: false,
        messages: [{ role: 'user', content: 'x', images: ['not base64!'] }],
      }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/images\[0\] is not base64/);
  });
});

describe('a model without a projector', () => {
  it('answers 400 `model "x" does not support images`, as Ollama', async () => {
    await expect(
      ollama.chat({ model: 'blind', messages: [{ role: 'user', content: 'x', images: [png.toString('base64')] }] }),
    ).rejects.toMatchObject({ status_code: 400, error: 'model "blind:latest" does not support images' });
    await expect(ollama.generate({ model: 'blind', prompt: 'x', images: [png] })).rejects.toMatchObject({
      status_code: 400,
    });
    const refused = openai.chat.completions.create({
      model: 'blind',
      messages: [
        {
          role: 'user',
          content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }],
        },
      ],
    });
    await expect(refused).rejects.toBeInstanceOf(BadRequestError);
    await expect(refused).rejects.toMatchObject({ message: expect.stringMatching(/does not support images/) });
  });
});
