// The rebuild drill (ARCHITECTURE.md): kill hearth, delete everything on the
// node, start again: nothing that was acknowledged is lost.
import { createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jsonForAtlas } from '../src/atlas/db/json.js';
import { generateModel } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, startHearthProcess } from './support/hearth.js';
import { createTestDatabase } from './support/postgres.js';

async function json(url: string, init?: RequestInit): Promise<any> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const backends = [
  { name: 'embedded PGlite', database: async () => ({ url: 'embedded', drop: async () => {} }) },
  {
    name: 'real PostgreSQL',
    database: async () => {
      const admin = inject('postgresUrl');
      if (!admin) throw new Error(`PostgreSQL is not running for the tests: ${inject('postgresUnavailable')}`);
      return createTestDatabase(admin);
    },
  },
];

describe.each(backends)('rebuild drill on $name', ({ database }) => {
  let dirs: HearthDirs;
  let db: { url: string; drop(): Promise<void> };
  let gguf: { path: string; sha256: string; size: number };

  beforeAll(async () => {
    dirs = await hearthDirs('hearth-drill-');
    db = await database();
    gguf = await generateModel({
      path: join(dirs.root, 'drill.gguf'),
      seed: 7,
      chatTemplate: 'chatml',
      contextLength: 512,
    });
  });
  afterAll(async () => {
    await db?.drop();
    await dirs?.cleanup();
  });

  it('loses nothing when the node is killed and its cache deleted', async () => {
    let stored: any;
    const first = await startHearthProcess({ dirs, database: db.url });
    try {
      // State on Atlas: a blob (file store) and a manifest (database row), both acknowledged with 2xx.
      const digest = `sha256:${gguf.sha256}`;
      const upload = await fetch(`${first.url}/api/blobs/${digest}`, {
        method: 'POST',
        body: await readFile(gguf.path),
      });
      expect(upload.status).toBe(201);
      await json(`${first.url}/api/create`, {
        method: 'POST',
        body: JSON.stringify({
          model: 'drill',
          files: { 'drill.gguf': digest },
          system: 'be brief',
          parameters: { temperature: 0.2 },
          stream: false,
        }),
      });
      // Use it, so the node cache holds a copy worth deleting.
      const gen = await json(`${first.url}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: 'drill', prompt: 'hello', stream: false, options: { num_predict: 4 } }),
      });
      expect(gen.done).toBe(true);
      expect((await stat(join(dirs.cache, 'blobs', `sha256-${gguf.sha256}`))).size).toBe(gguf.size);
      // A stored response (/v1/responses, store defaults to true), acknowledged with its 200.
      stored = await json(`${first.url}/v1/responses`, {
        method: 'POST',
        body: JSON.stringify({ model: 'drill', input: 'remember me', max_output_tokens: 4 }),
      });
      expect(stored.id).toMatch(/^resp_/);
    } finally {
      // No goodbye: SIGKILL, as a power cut would.
      await first.stop('SIGKILL');
    }

    await rm(dirs.cache, { recursive: true, force: true });

    const second = await startHearthProcess({ dirs, database: db.url });
    try {
      const tags = await json(`${second.url}/api/tags`);
      expect(tags.models.map((m: { name: string; digest: string }) => [m.name, m.digest])).toEqual([
        ['drill:latest', gguf.sha256],
      ]);
      const show = await json(`${second.url}/api/show`, { method: 'POST', body: JSON.stringify({ model: 'drill' }) });
      expect(show.system).toBe('be brief');
      expect(show.parameters).toMatch(/temperature\s+0.2/);
      expect((await fetch(`${second.url}/api/blobs/sha256:${gguf.sha256}`, { method: 'HEAD' })).status).toBe(200);
      // The Atlas copy is intact, byte for byte.
      const onAtlas = await readFile(join(dirs.atlas, 'models', 'blobs', `sha256-${gguf.sha256}`));
      expect(createHash('sha256').update(onAtlas).digest('hex')).toBe(gguf.sha256);
      // And the model still runs: the cache is re-derived from Atlas.
      const gen = await json(`${second.url}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: 'drill', prompt: 'hello again', stream: false, options: { num_predict: 4 } }),
      });
      expect(gen.done).toBe(true);
      expect(gen.eval_count).toBeGreaterThan(0);
      // The stored response is there, as it was answered, and a new response continues it. (Random
      // weights can write a NUL, which jsonb cannot hold: Atlas keeps U+FFFD in its place, as documented.)
      expect(await json(`${second.url}/v1/responses/${stored.id}`)).toEqual(JSON.parse(jsonForAtlas(stored)));
      const next = await json(`${second.url}/v1/responses`, {
        method: 'POST',
        body: JSON.stringify({
          model: 'drill',
          previous_response_id: stored.id,
          input: 'and now?',
          max_output_tokens: 4,
        }),
      });
      expect(next.usage.input_tokens).toBeGreaterThan(stored.usage.input_tokens);
    } finally {
      expect(await second.stop('SIGTERM')).toBe(0);
    }
  });
});
