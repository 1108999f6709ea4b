// Pulling models from HTTP sources the test serves itself on loopback:
// a plain GGUF URL (with resume and digest checks) and an Ollama-style registry.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelPuller } from '../src/models/pull.js';
import { generateModel, generateProjector } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let server: Server;
let base: string;
let gguf: Buffer;
let sha: string;
const seen: Array<{ url: string; range?: string }> = [];
let dropNextAt: number | null = null;
let mmproj: Buffer;
let mmprojSha: string;

function serveFile(req: IncomingMessage, res: ServerResponse, data: Buffer) {
  const range = req.headers.range;
  let start = 0;
  if (range) {
    start = Number(/bytes=(\d+)-/.exec(range)?.[1] ?? 0);
    if (start >= data.length) {
      res.writeHead(416).end();
      return;
    }
    res.writeHead(206, {
      'content-length': data.length - start,
      'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
    });
  } else {
    res.writeHead(200, { 'content-length': data.length });
  }
  if (dropNextAt !== null) {
    // Send part of the body, then cut the connection, as a flaky Wi-Fi link would.
    res.write(data.subarray(start, dropNextAt));
    dropNextAt = null;
    setTimeout(() => res.socket?.destroy(), 20);
    return;
  }
  res.end(data.subarray(start));
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-pull-');
  const made = await generateModel({
    path: join(dirs.root, 'pulled.gguf'),
    seed: 11,
    chatTemplate: 'chatml',
    contextLength: 512,
  });
  gguf = await readFile(made.path);
  sha = made.sha256;
  const projector = await generateProjector({ path: join(dirs.root, 'mmproj.gguf'), textWidth: 64 });
  mmproj = await readFile(projector.path);
  mmprojSha = projector.sha256;
  const params = JSON.stringify({ temperature: 0.3, stop: ['<|im_end|>'] });
  const paramsSha = createHash('sha256').update(params).digest('hex');
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', ...(req.headers.range ? { range: req.headers.range } : {}) });
    const url = req.url ?? '';
    if (url === '/files/tiny-chat.gguf') return serveFile(req, res, gguf);
    // Ollama registry manifests: the model layer and one more (params, or a vision projector)
    const manifest = (second: { mediaType: string; digest: string; size: number }) => {
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' });
      const model = { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${sha}`, size: gguf.length };
      res.end(JSON.stringify({ schemaVersion: 2, layers: [model, second] }));
    };
    if (url === '/v2/library/tiny/manifests/latest') {
      return manifest({
        mediaType: 'application/vnd.ollama.image.params',
        digest: `sha256:${paramsSha}`,
        size: params.length,
      });
    }
    if (url === '/v2/library/seeing/manifests/latest') {
      return manifest({
        mediaType: 'application/vnd.ollama.image.projector',
        digest: `sha256:${mmprojSha}`,
        size: mmproj.length,
      });
    }
    if (url === `/v2/library/seeing/blobs/sha256:${sha}`) return serveFile(req, res, gguf);
    if (url === `/v2/library/seeing/blobs/sha256:${mmprojSha}`) return serveFile(req, res, mmproj);
    // a Hugging Face-style repository: its listing names the projector beside the model
    if (url === '/api/models/someone/vision-GGUF') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ siblings: [{ rfilename: 'tiny-Q8_0.gguf' }, { rfilename: 'mmproj-tiny-f16.gguf' }] }));
      return;
    }
    if (url === '/api/models/someone/text-GGUF') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ siblings: [{ rfilename: 'tiny-Q8_0.gguf' }] }));
      return;
    }
    if (/^\/someone\/(vision|text)-GGUF\/resolve\/main\/tiny-Q8_0\.gguf$/.test(url)) return serveFile(req, res, gguf);
    if (url === '/someone/vision-GGUF/resolve/main/mmproj-tiny-f16.gguf') return serveFile(req, res, mmproj);
    if (url === `/v2/library/tiny/blobs/sha256:${sha}`) return serveFile(req, res, gguf);
    if (url === `/v2/library/tiny/blobs/sha256:${paramsSha}`) return void res.end(params);
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  hearth = await startHearthInProcess(dirs);
});

afterAll(async () => {
  await hearth?.close();
  await new Promise((resolve) => server?.close(resolve));
  await dirs?.cleanup();
});

async function pull(model: string, extra: Record<string, unknown> = {}) {
  const res = await fetch(`${hearth.url}/api/pull`, { method: 'POST', body: JSON.stringify({ model, ...extra }) });
  const text = await res.text();
  return {
    status: res.status,
    lines: text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
  };
}

describe('pull from a URL', () => {
  it('resumes an interrupted download and commits the verified blob to Atlas', async () => {
    dropNextAt = Math.floor(gguf.length / 2);
    const first = await pull(`http://${base}/files/tiny-chat.gguf`);
    expect(first.lines.at(-1).error).toBeTruthy();
    expect(await hearth.ctx.atlas.files.stat(`models/blobs/sha256-${sha}`)).toBeNull();

    seen.length = 0;
    const second = await pull(`http://${base}/files/tiny-chat.gguf#sha256=${sha}`);
    expect(second.status).toBe(200);
    expect(second.lines.at(-1)).toEqual({ status: 'success' });
    expect(second.lines.map((l) => l.status)).toContain('verifying sha256 digest');
    // It asked only for the bytes it did not have (what reached the disk before the cut).
    const resumedAt = Number(/bytes=(\d+)-/.exec(seen[0]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(Math.floor(gguf.length / 2));
    const progress = second.lines.filter((l) => l.total);
    expect(progress.at(-1)).toMatchObject({ total: gguf.length, completed: gguf.length });

    const tags: any = await (await fetch(`${hearth.url}/api/tags`)).json();
    expect(tags.models.find((m: any) => m.name === 'tiny-chat:latest')?.digest).toBe(sha);
    const onAtlas = await readFile(join(dirs.atlas, 'models', 'blobs', `sha256-${sha}`));
    expect(onAtlas.equals(gguf)).toBe(true);
  });

  it('refuses a download whose digest does not match, leaving nothing on Atlas', async () => {
    const wrong = 'f'.repeat(64);
    const res = await pull(`http://${base}/files/tiny-chat.gguf#sha256=${wrong}`, { stream: false });
    expect(res.status).toBe(502);
    expect(res.lines[0].error).toMatch(/digest mismatch/);
    expect(await hearth.ctx.atlas.files.stat(`models/blobs/sha256-${wrong}`)).toBeNull();
  });

  it('says why a connection failed, not only "fetch failed"', async () => {
    // A loopback port that was just free: nothing listens there, so the connection is refused at once.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const res = await pull(`http://127.0.0.1:${port}/files/tiny-chat.gguf`, { stream: false });
    expect(res.status).toBe(502);
    expect(res.lines[0].error).toMatch(/fetch failed: .*ECONNREFUSED/);
  });

  it('names a missing file', async () => {
    const res = await pull(`http://${base}/files/missing.gguf`, { stream: false });
    expect(res.status).toBe(502);
    expect(res.lines[0].error).toMatch(/not found/);
  });
});

describe('pull from an Ollama registry', () => {
  it('pulls model and params layers by name', async () => {
    const res = await pull(`${base}/library/tiny`, { insecure: true });
    expect(res.lines.at(-1)).toEqual({ status: 'success' });
    const show: any = await (
      await fetch(`${hearth.url}/api/show`, { method: 'POST', body: JSON.stringify({ model: `${base}/library/tiny` }) })
    ).json();
    expect(show.parameters).toMatch(/temperature\s+0.3/);
    expect(show.details.family).toBe('llama');
  });

  it("gives Ollama's error for an unknown model", async () => {
    const res = await pull(`${base}/library/absent:latest`, { insecure: true, stream: false });
    expect(res.status).toBe(404);
    expect(res.lines[0].error).toMatch(/file does not exist/);
  });
});

describe('vision projectors', () => {
  async function show(model: string): Promise<any> {
    const res = await fetch(`${hearth.url}/api/show`, { method: 'POST', body: JSON.stringify({ model }) });
    expect(res.status).toBe(200);
    return res.json();
  }

  it('keeps the projector layer of an Ollama registry manifest', async () => {
    const res = await pull(`${base}/library/seeing`, { insecure: true });
    expect(res.lines.at(-1)).toEqual({ status: 'success' });
    expect(res.lines.map((l) => l.status)).toContain(`pulling ${mmprojSha.slice(0, 12)}`);
    const shown = await show(`${base}/library/seeing`);
    expect(shown.capabilities).toContain('vision');
    expect(shown.projector_info['clip.projector_type']).toBe('mlp');
    expect(await hearth.ctx.atlas.files.stat(`models/blobs/sha256-${mmprojSha}`)).not.toBeNull();
  });

  it("takes a Hugging Face repository's mmproj*.gguf along with the model, when it has one", async () => {
    const puller = new ModelPuller({
      library: hearth.ctx.models,
      partialDir: join(dirs.root, 'partial-hf'),
      log: hearth.ctx.log,
      hfEndpoint: `http://${base}`,
    });
    await puller.pull('hf:someone/vision-GGUF/tiny-Q8_0.gguf');
    expect((await show('hf.co/someone/vision-GGUF:tiny-Q8_0')).capabilities).toContain('vision');
    await puller.pull('hf:someone/text-GGUF/tiny-Q8_0.gguf');
    expect((await show('hf.co/someone/text-GGUF:tiny-Q8_0')).capabilities).not.toContain('vision');
  });

  it('deletes the projector blob with the last model that uses it', async () => {
    for (const model of [`${base}/library/seeing`, 'hf.co/someone/vision-GGUF:tiny-Q8_0']) {
      expect(await hearth.ctx.atlas.files.stat(`models/blobs/sha256-${mmprojSha}`)).not.toBeNull();
      const res = await fetch(`${hearth.url}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model }) });
      expect(res.status).toBe(200);
    }
    expect(await hearth.ctx.atlas.files.stat(`models/blobs/sha256-${mmprojSha}`)).toBeNull();
  });
});
