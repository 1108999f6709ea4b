// The server engine: llama-server processes (built once per machine by the global setup) behind the same
// APIs, over real HTTP on generated models: one process per instance, killed on unload, a crash mid-stream
// failing cleanly and the next request starting a new process; and a user's own llama-server refused when
// it lacks a flag hearth passes.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { configFromObject } from '../src/config/index.js';
import { openContext } from '../src/context.js';
import { REQUIRED_FLAGS } from '../src/engine/server/flags.js';
import { silentLogger } from '../src/log.js';
import { testEngineDir } from './support/engine.js';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  REPO_ROOT,
  startHearthInProcess,
} from './support/hearth.js';
import { makeTestModels, type TestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let models: TestModels;

async function post(path: string, body: unknown) {
  const res = await fetch(`${hearth.url}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json };
}

async function upload(name: string, path: string) {
  const bytes = await readFile(path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  const created = await post('/api/create', {
    model: name,
    files: { [path.split('/').pop()!]: digest },
    stream: false,
  });
  expect(created.status, created.text).toBe(200);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  expect(inject('serverEngineUnavailable'), 'the global setup could not build llama-server').toBe('');
  dirs = await hearthDirs('hearth-server-engine-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, { inference: { numParallel: 2, numCtx: 512 } });
  await upload('chat', models.chat);
  await upload('embed', models.embed);
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('the server engine', () => {
  it('serves with llama-server processes built for this node', () => {
    const serving = hearth.ctx.engine.serving();
    expect(serving.engine).toBe('server');
    expect(serving.binary?.origin).toMatch(/hearth engine build .*linked to node-llama-cpp's prebuilt cpu libraries/);
  });

  it('generates and chats (streamed and not), one process per loaded instance, shown by /api/ps', async () => {
    const gen = await post('/api/generate', {
      model: 'chat',
      prompt: 'Say something.',
      stream: false,
      options: { num_predict: 8, seed: 1, temperature: 0 },
    });
    expect(gen.status, gen.text).toBe(200);
    expect(gen.json.done).toBe(true);
    expect(gen.json.eval_count).toBeGreaterThan(0);
    expect(gen.json.eval_count).toBeLessThanOrEqual(8);
    expect(gen.json.prompt_eval_count).toBeGreaterThan(0);
    expect(typeof gen.json.response).toBe('string');

    const chat = await post('/api/chat', {
      model: 'chat',
      messages: [{ role: 'user', content: 'Hello' }],
      options: { num_predict: 6, seed: 2 },
    });
    expect(chat.status, chat.text).toBe(200);
    const lines = chat.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.at(-1).done).toBe(true);
    expect(lines.at(-1).eval_count).toBeLessThanOrEqual(6);
    expect(lines.slice(0, -1).every((l: any) => l.done === false && typeof l.message.content === 'string')).toBe(true);

    const ps = await (await fetch(`${hearth.url}/api/ps`)).json();
    expect((ps as any).models.map((m: any) => m.name)).toContain('chat:latest');
    const pids = hearth.ctx.engine.serverPids();
    expect(pids).toHaveLength(1);
    expect(alive(pids[0]!)).toBe(true);
  });

  it('embeds with an embedding-mode process (normalised vectors)', async () => {
    const res = await post('/api/embed', { model: 'embed', input: ['a cat', 'a dog'] });
    expect(res.status, res.text).toBe(200);
    expect(res.json.embeddings).toHaveLength(2);
    for (const v of res.json.embeddings as number[][]) {
      expect(Math.hypot(...v)).toBeCloseTo(1, 3);
    }
    expect(res.json.prompt_eval_count).toBeGreaterThan(0);
  });

  it('fails a stream cleanly when its llama-server is killed, and the next request starts a new one', async () => {
    await post('/api/generate', { model: 'chat', prompt: 'warm up', stream: false, options: { num_predict: 1 } });
    const before = hearth.ctx.engine.loaded().find((m) => m.name === 'chat:latest');
    expect(before).toBeDefined();
    const res = await fetch(`${hearth.url}/api/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // A schema of 400 numbers: the grammar allows no end of generation before them, so the
      // process is still generating when it is killed (a random model may otherwise stop at once).
      body: JSON.stringify({
        model: 'chat',
        prompt: 'Count.',
        format: { type: 'array', items: { type: 'integer' }, minItems: 400 },
        options: { num_predict: 4000, seed: 3 },
      }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    const chatPids = hearth.ctx.engine.serverPids();
    for (const pid of chatPids) process.kill(pid, 'SIGKILL');
    let rest = new TextDecoder().decode(first.value);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    const last = JSON.parse(rest.trim().split('\n').at(-1)!);
    expect(last, rest.slice(-2000)).toHaveProperty('error');
    expect(last.error).toMatch(/llama-server process of model "chat:latest" stopped during the generation/);
    expect(last.error).toMatch(/retry/);

    const again = await post('/api/generate', {
      model: 'chat',
      prompt: 'Again.',
      stream: false,
      options: { num_predict: 4 },
    });
    expect(again.status, again.text).toBe(200);
    expect(again.json.done).toBe(true);
    const now = hearth.ctx.engine.serverPids();
    expect(now.some((p) => !chatPids.includes(p))).toBe(true);

    const metrics = await (await fetch(`${hearth.url}/metrics`)).text();
    expect(metrics).toMatch(/hearth_engine_server_restarts_total\{model="chat:latest"\} 1/);
  });

  it('keeps generating past the context end, as Ollama does (the context shifts)', async () => {
    // a small context (llama-server pads a slot to 256 tokens) and 400 tokens to generate; the grammar allows no end
    // before 1000 numbers, so only num_predict stops it (without the shift it stopped at about 250)
    const res = await post('/api/generate', {
      model: 'chat',
      prompt: 'Count.',
      stream: false,
      format: { type: 'array', items: { type: 'integer' }, minItems: 1000 },
      options: { num_ctx: 64, num_predict: 400, seed: 4, temperature: 0 },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json.done_reason).toBe('length');
    expect(res.json.eval_count).toBe(400);
  });

  it('kills the process on keep_alive 0 (the memory comes back)', async () => {
    const warm = await post('/api/generate', {
      model: 'chat',
      prompt: 'x',
      stream: false,
      options: { num_predict: 1 },
    });
    expect(warm.status, warm.text).toBe(200);
    const pids = hearth.ctx.engine.serverPids();
    expect(pids.length).toBeGreaterThan(0);
    const unload = await post('/api/generate', { model: 'chat', prompt: '', keep_alive: 0 });
    expect(unload.json.done_reason).toBe('unload');
    expect(hearth.ctx.engine.loaded().filter((m) => m.name === 'chat:latest')).toEqual([]);
    await waitFor(() => pids.every((p) => !hearth.ctx.engine.serverPids().includes(p)));
    const chatPid = pids[0]!;
    await waitFor(() => !alive(chatPid) || hearth.ctx.engine.serverPids().includes(chatPid));
  });
});

describe('inference.llamaServer', () => {
  it('refuses a llama-server whose --help lacks a flag hearth passes, naming the flag', async () => {
    const fake = join(dirs.root, 'old-llama-server');
    const help = REQUIRED_FLAGS.filter((f) => f !== '--no-kv-unified').join('\n');
    // an older llama-server: answers --version, and its --help lists every flag hearth passes but one
    await writeFile(join(dirs.root, 'old-help.txt'), `${help}\n`);
    await writeFile(
      fake,
      `#!/bin/sh\ncase "$1" in\n  --version) echo "version: 1234 (abcdef0)" >&2 ;;\n  --help) cat "${join(dirs.root, 'old-help.txt')}" ;;\nesac\n`,
    );
    await chmod(fake, 0o755);
    const other = await hearthDirs('hearth-fake-llama-server-');
    try {
      const { config } = configFromObject({
        atlas: { files: other.atlas, database: 'embedded' },
        node: { cacheDir: other.cache, threads: 1, id: 'fake-node', engineDir: join(other.root, 'engine') },
        inference: { llamaServer: fake },
        log: { level: 'silent' },
      });
      await expect(openContext(config, silentLogger())).rejects.toMatchObject({
        code: 'ENGINE_SERVER_UNSUITABLE',
        message: expect.stringMatching(/\(version 1234 \(abcdef0\)\) lacks --no-kv-unified, which hearth passes/),
      });
      // `hearth doctor` reports the refusal on its engine line (dist/: npm test builds it)
      const doctor = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        execFile(
          process.execPath,
          [join(REPO_ROOT, 'bin', 'hearth.js'), 'doctor'],
          {
            env: {
              PATH: process.env['PATH'] ?? '',
              HOME: other.home,
              HEARTH_ATLAS_FILES: other.atlas,
              HEARTH_NODE_CACHE_DIR: other.cache,
              HEARTH_NODE_ENGINE_DIR: testEngineDir(),
              HEARTH_INFERENCE_LLAMA_SERVER: fake,
              NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true',
            },
            timeout: 120_000,
          },
          (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
        );
      });
      expect(doctor.code).toBe(1);
      expect(doctor.stdout).toMatch(
        /✗ engine: engine: inference.llamaServer .* lacks --no-kv-unified, which hearth passes/,
      );
    } finally {
      await other.cleanup();
    }
  });
});
