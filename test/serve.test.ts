// `hearth serve` as an operator sees it: readiness follows Atlas, and SIGTERM
// drains what is in flight before the process exits.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, startHearthInProcess, startHearthProcess } from './support/hearth.js';
import { type PostgresServer, startPostgres } from './support/postgres.js';

// ws comes with @fastify/websocket; Node 20 has no global WebSocket client.
const WebSocket = createRequire(import.meta.url)('ws') as new (url: string) => any;

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

describe('shutdown with connections that would hold it open', () => {
  it('SIGTERM closes an open /ws with 1001 and exits 0 without waiting out the timeout', async () => {
    const serveDirs = await hearthDirs('hearth-sigterm-ws-');
    const proc = await startHearthProcess({ dirs: serveDirs, env: { HEARTH_SERVER_SHUTDOWN_TIMEOUT: '20s' } });
    try {
      const socket = new WebSocket(`${proc.url.replace('http', 'ws')}/ws?clientId=shutdown`);
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      // A client that never answers the close handshake (ws waits 30 s for one by default).
      socket.close = () => {};
      const closed = new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code)));
      const started = Date.now();
      proc.child.kill('SIGTERM');
      const code = await proc.exited;
      expect(code, proc.logs().split('\n').slice(-8).join('\n')).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await closed).toBe(1001);
      expect(proc.logs()).toMatch(/"msg":"stopped"/);
    } finally {
      await proc.stop('SIGKILL');
      await serveDirs.cleanup();
    }
  });

  it('SIGTERM after a refused upload whose body is still arriving exits 0 promptly', async () => {
    const serveDirs = await hearthDirs('hearth-sigterm-upload-');
    const proc = await startHearthProcess({ dirs: serveDirs, env: { HEARTH_SERVER_SHUTDOWN_TIMEOUT: '20s' } });
    const { port } = new URL(proc.url);
    const socket = connect(Number(port), '127.0.0.1');
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      let answer = '';
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString();
      });
      socket.on('error', () => {});
      // Announce 1 GiB, send a little: the key is refused before the body is read.
      socket.write('PUT /api/files/.hearth/x HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1073741824\r\n\r\n');
      socket.write(Buffer.alloc(64 * 1024, 1));
      const deadline = Date.now() + 10_000;
      while (!answer.includes('\r\n\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      const started = Date.now();
      proc.child.kill('SIGTERM');
      const code = await proc.exited;
      expect(code, proc.logs().split('\n').slice(-8).join('\n')).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      socket.destroy();
      await proc.stop('SIGKILL');
      await serveDirs.cleanup();
    }
  });
});
