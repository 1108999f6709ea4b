// Malformed input that used to crash a route with a 500: NUL characters headed for the database,
// repeated query parameters, a malformed session cookie, JSON nested thousands deep. Each is a 400
// in the route family's error shape, and the server serves on.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { UiClient } from './support/ui-client.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let ui: UiClient;

/** `{"a":{"a":...}}`, `depth` objects deep, as text (JSON.stringify itself would recurse). */
function deepJson(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

async function send(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${hearth.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text) as { error: string | { message: string; type: string } } };
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-bad-input-');
  hearth = await startHearthInProcess(dirs);
  const gguf = await generateModel({ path: join(dirs.root, 'm.gguf'), seed: 1, chatTemplate: 'chatml' });
  const bytes = await readFile(gguf.path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  expect((await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes })).status).toBe(201);
  const created = await send(
    'POST',
    '/api/create',
    JSON.stringify({ model: 'm', files: { 'm.gguf': digest }, stream: false }),
  );
  expect(created.status).toBe(200);
  await mkdir(join(dirs.atlas, 'datasets'), { recursive: true });
  await writeFile(join(dirs.atlas, 'datasets', 'd.jsonl'), '{"text":"hi"}\n');
  await writeFile(join(dirs.atlas, 'datasets', 'secret.jsonl'), 'root:x:0:0:the-secret-line\n{"a":1\n');
  ui = new UiClient(hearth.url);
  expect(
    (await ui.call('POST', '/api/ui/setup', { username: 'admin', password: 'pw-123456' }, { 'x-hearth-csrf': '1' }))
      .status,
  ).toBe(201);
});
afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

const NUL = 'a\u0000b';

describe('NUL characters are refused with 400, wherever they would be stored', () => {
  it('a Modelfile SYSTEM', async () => {
    const res = await send(
      'POST',
      '/api/create',
      JSON.stringify({ model: 'n', modelfile: `FROM m\nSYSTEM ${NUL}`, stream: false }),
    );
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/NUL/);
  });

  it('a UI conversation title and system prompt, a preset', async () => {
    // Titles and preset names are cleaned of control characters (they are shown in lists), not refused.
    const titled = await ui.post('/api/ui/conversations', { title: NUL });
    expect(titled.status).toBe(201);
    expect(titled.json.conversation.title).toBe('a b');
    const id = titled.json.conversation.id as string;
    const patched = await ui.call('PATCH', `/api/ui/conversations/${id}`, { systemPrompt: NUL });
    expect(patched.status, patched.text).toBe(400);
    expect(patched.json.error).toMatch(/NUL/);
    for (const [path, body] of [
      ['/api/ui/conversations', { systemPrompt: NUL }],
      ['/api/ui/presets', { name: 'p', systemPrompt: NUL }],
    ] as const) {
      const res = await ui.post(path, body);
      expect(res.status, `${path} ${JSON.stringify(body)}: ${res.text}`).toBe(400);
      expect(res.json.error).toMatch(/NUL/);
    }
    expect((await ui.get('/api/ui/conversations')).json.conversations).toHaveLength(1);
    expect((await ui.get('/api/ui/presets')).json.presets).toEqual([]);
    const named = await ui.post('/api/ui/presets', { name: NUL });
    expect(named.status).toBe(201);
    expect(named.json.preset.name).toBe('a b');
  });

  it('a saved workflow', async () => {
    const res = await send('PUT', '/api/workflows/w', JSON.stringify({ workflow: { note: NUL } }));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/NUL/);
  });

  it('a job template', async () => {
    const res = await send(
      'POST',
      '/api/jobs',
      JSON.stringify({ input: 'datasets/d.jsonl', model: 'm', template: `{{text}} ${NUL}`, output: 'results/r' }),
    );
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/NUL/);
  });
});

describe('information a refusal must not disclose', () => {
  it('a job whose input is not a dataset does not echo the file’s lines', async () => {
    const res = await send(
      'POST',
      '/api/jobs',
      JSON.stringify({ input: 'datasets/secret.jsonl', model: 'm', template: '{{text}}', output: 'results/s' }),
    );
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/none of the first 2 records .* can be read \(line 1 is not valid JSON/);
    expect(res.json.error).not.toMatch(/secret-line|root:x/);
  });
});

describe('other input that crashed a route', () => {
  it('a repeated query parameter on /view', async () => {
    const res = await send('GET', '/view?filename=a.png&filename=b.png');
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/filename/);
  });

  it('a malformed session cookie is no session', async () => {
    const res = await fetch(`${hearth.url}/api/ui/session`, { headers: { cookie: 'hearth_session=%zz%' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { user: unknown }).user).toBeNull();
    const write = await fetch(`${hearth.url}/api/ui/conversations`, {
      headers: { cookie: 'hearth_session=%E0%A4%A', 'x-hearth-csrf': '1' },
    });
    expect(write.status).toBe(401);
  });

  it('JSON nested 5,000 deep, in format, tool parameters or anywhere: 400 in the family’s shape', async () => {
    const format = await send('POST', '/api/chat', `{"model":"m","messages":[],"format":${deepJson(5000)}}`);
    expect(format.status).toBe(400);
    expect(format.json.error).toMatch(/nested/);
    const tools = await send(
      'POST',
      '/v1/chat/completions',
      `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deepJson(5000)}}}]}`,
    );
    expect(tools.status).toBe(400);
    expect(tools.json.error).toMatchObject({ type: 'invalid_request_error', message: expect.stringMatching(/nested/) });
    // The same with any Content-Type (Ollama's clients send text/plain and form types too).
    const plain = await send('POST', '/api/generate', `{"model":"m","format":${deepJson(5000)}}`, {
      'content-type': 'text/plain',
    });
    expect(plain.status).toBe(400);
    // A reasonable depth still passes the parser (and fails later for its own reason, or not at all).
    const shallow = await send('POST', '/api/show', `{"model":"m","extra":${deepJson(50)}}`);
    expect(shallow.status).not.toBe(500);
    expect((await fetch(`${hearth.url}/api/version`)).status).toBe(200);
  });
});
