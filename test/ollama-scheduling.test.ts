// What a busy house notices: a bounded queue (503 with Ollama's message, for a
// loaded model too) and a client that hangs up freeing its sequence at once.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;

beforeAll(async () => {
  expect(inject('serverEngineUnavailable'), 'the global setup could not build llama-server').toBe('');
  dirs = await hearthDirs('hearth-sched-');
  await mkdir(join(dirs.root, 'models'));
  const models = await makeTestModels(join(dirs.root, 'models'));
  // One sequence and room for one waiting request (the server engine: one llama-server, -np 1).
  hearth = await startHearthInProcess(dirs, {
    inference: { numParallel: 1, maxQueue: 1, numCtx: 2048 },
  });
  const bytes = await readFile(models.chat);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  await fetch(`${hearth.url}/api/create`, {
    method: 'POST',
    body: JSON.stringify({ model: 'm', files: { 'm.gguf': digest }, stream: false }),
  });
  // Loaded before the test: the queue bound must hold for loaded models too (Ollama #7758).
  await fetch(`${hearth.url}/api/generate`, {
    method: 'POST',
    body: JSON.stringify({ model: 'm', prompt: '', stream: false }),
  });
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

// A generation that does not end by itself: greedy decoding (temperature 0, no repeat penalty) of the
// generated model from this prompt falls into a loop without end-of-text (checked past 20,000 tokens,
// the context shifting), and num_predict -1 sets no limit. Only hanging up ends it.
const long = {
  model: 'm',
  prompt: 'Tell a long story',
  raw: true,
  options: { num_predict: -1, temperature: 0, top_k: 1, repeat_penalty: 1 },
};

async function firstLine(res: Response): Promise<void> {
  const reader = res.body!.getReader();
  await reader.read();
  reader.releaseLock();
}

describe('scheduling', () => {
  it('answers 503 when the queue is full, then frees the sequence when a client hangs up', async () => {
    const busy = new AbortController();
    const waitingController = new AbortController();
    try {
      const first = await fetch(`${hearth.url}/api/generate`, {
        method: 'POST',
        body: JSON.stringify(long),
        signal: busy.signal,
      });
      await firstLine(first); // generating: the only sequence is taken

      const waiting = fetch(`${hearth.url}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', prompt: 'hi', raw: true, stream: false, options: { num_predict: 3 } }),
        signal: waitingController.signal,
      });
      waiting.catch(() => {}); // aborted in `finally` if an assertion fails first
      // Give the second request time to reach the queue.
      const deadline = Date.now() + 5_000;
      while (hearth.ctx.engine.queueDepth() < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(hearth.ctx.engine.queueDepth()).toBe(1);

      const refused = await fetch(`${hearth.url}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ ...long, stream: false }),
      });
      expect(refused.status).toBe(503);
      // Ollama's exact message (two spaces), so clients that match on it keep working.
      expect(((await refused.json()) as any).error).toMatch(
        /^server busy, please try again\. {2}maximum pending requests exceeded/,
      );

      // Hang up the first client mid-stream: its sequence goes to the waiting request at once.
      const t0 = Date.now();
      busy.abort();
      const done = await waiting;
      expect(done.status).toBe(200);
      expect(((await done.json()) as any).done).toBe(true);
      // The first generation never ends by itself: the abort freed the sequence.
      expect(Date.now() - t0).toBeLessThan(20_000);
      const ps: any = await (await fetch(`${hearth.url}/api/ps`)).json();
      expect(ps.models).toHaveLength(1);
    } finally {
      busy.abort();
      waitingController.abort();
    }
  });
});
