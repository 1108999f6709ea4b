// `hearth serve` as an operator sees it: readiness follows Atlas, and SIGTERM
// drains what is in flight before the process exits.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, startHearthInProcess, startHearthProcess } from './support/hearth.js';
import { type PostgresServer, startPostgres } from './support/postgres.js';

let dirs: HearthDirs;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-serve-');
});
afterAll(async () => {
  await dirs?.cleanup();
});

describe('readiness', () => {
  let pg: PostgresServer;
  afterAll(async () => {
    await pg?.destroy();
  });

  it('/readyz fails while PostgreSQL is down and recovers without a restart', async () => {
    pg = await startPostgres();
    const hearth = await startHearthInProcess(dirs, { atlas: { database: pg.url, files: dirs.atlas } });
    try {
      expect((await fetch(`${hearth.url}/readyz`)).status).toBe(200);
      await pg.stop();
      const down = await fetch(`${hearth.url}/readyz`);
      expect(down.status).toBe(503);
      const body = (await down.json()) as { checks: { database: string; files: string } };
      expect(body.checks.files).toBe('ok');
      expect(body.checks.database).not.toBe('ok');
      // Liveness is not readiness: the process is fine.
      expect((await fetch(`${hearth.url}/healthz`)).status).toBe(200);
      await pg.start();
      const deadline = Date.now() + 20_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await fetch(`${hearth.url}/readyz`)).status;
        if (status === 200) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(status).toBe(200);
      // And requests that need the database work again.
      expect((await fetch(`${hearth.url}/api/tags`)).status).toBe(200);
    } finally {
      await hearth.close();
    }
  });
});

describe('shutdown', () => {
  it('SIGTERM lets a streaming generation finish, then exits 0', async () => {
    const gguf = await generateModel({
      path: join(dirs.root, 'm.gguf'),
      seed: 3,
      chatTemplate: 'chatml',
      contextLength: 1024,
    });
    const serveDirs = await hearthDirs('hearth-sigterm-');
    const proc = await startHearthProcess({ dirs: serveDirs });
    try {
      const bytes = await readFile(gguf.path);
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      await fetch(`${proc.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
      await fetch(`${proc.url}/api/create`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', files: { 'm.gguf': digest }, stream: false }),
      });
      const res = await fetch(`${proc.url}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', prompt: 'go', raw: true, options: { num_predict: 300, temperature: 1 } }),
      });
      const reader = res.body!.getReader();
      if (res.status !== 200) throw new Error(`not streaming: ${res.status} ${await res.text()}`);
      await reader.read(); // it is streaming
      proc.child.kill('SIGTERM');
      let text = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      const last = JSON.parse(text.trim().split('\n').at(-1)!);
      expect(last.done).toBe(true);
      // Finished normally (the end-of-text token or num_predict), not cut off by the shutdown.
      expect(['stop', 'length']).toContain(last.done_reason);
      expect(last.eval_count).toBeGreaterThan(1);
      const code = await proc.exited;
      expect(code, proc.logs().split('\n').slice(-8).join('\n')).toBe(0);
      expect(proc.logs()).toMatch(/draining in-flight requests/);
    } finally {
      await proc.stop('SIGKILL');
      await serveDirs.cleanup();
    }
  });
});
