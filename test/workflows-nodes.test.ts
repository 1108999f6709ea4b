// Workflow prompts spread over two real `hearth serve` nodes sharing one Atlas (a real PostgreSQL and
// one files folder): both nodes take prompts from the one queue, a node killed mid-prompt loses nothing
// (the other runs it again once its lease runs out, exactly once), and either node shows the same history.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, type HearthProcess, hearthDirs, startHearthProcess } from './support/hearth.js';
import { call, createModel } from './support/jobs.js';
import { makeTestModels } from './support/models.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';

// ws comes with @fastify/websocket; Node 20 has no global WebSocket client.
const WebSocket = createRequire(import.meta.url)('ws') as new (url: string) => any;

// A short lease so a lost node's prompt comes back within seconds; quick polls so an idle node
// takes queued prompts promptly.
const NODE_ENV = {
  HEARTH_WORKFLOWS_LEASE: '3s',
  HEARTH_WORKFLOWS_POLL_INTERVAL: '200ms',
  HEARTH_INFERENCE_NUM_CTX: '1024',
};

let dirsA: HearthDirs;
let dirsB: HearthDirs;
let database: { url: string; drop(): Promise<void> };
let a: HearthProcess;
let b: HearthProcess;
let modelDir: string;
const processes: HearthProcess[] = [];

/**
 * A prompt of `parts` generations (different seeds, so nothing is shared through a node's cache),
 * joined and saved as `outputs/nodes/<name>_00001_.txt`. The test model writes a few thousand tokens a
 * second, so a prompt that must still be running when its node is killed needs several parts.
 */
function storyPrompt(name: string, parts: number, seed: number): Record<string, unknown> {
  const prompt: Record<string, unknown> = {};
  let text: [string, number] | undefined;
  for (let i = 0; i < parts; i++) {
    prompt[`gen${i}`] = {
      class_type: 'LLMGenerate',
      inputs: { model: 'tiny', prompt: `Tell story ${name}`, max_tokens: 400, seed: seed * 100 + i },
    };
    if (text) prompt[`join${i}`] = { class_type: 'TextConcat', inputs: { a: text, b: [`gen${i}`, 0] } };
    text = [text ? `join${i}` : `gen${i}`, 0];
  }
  prompt['save'] = { class_type: 'SaveText', inputs: { text, filename_prefix: `nodes/${name}` } };
  return prompt;
}

async function submit(base: string, prompt: unknown, clientId?: string): Promise<string> {
  const r = await call(base, '/prompt', { prompt, ...(clientId ? { client_id: clientId } : {}) });
  expect(r.status, r.text).toBe(200);
  return r.json.prompt_id;
}

/** Polls `/history` on `base` until every id has finished (bounded); returns the entries. */
async function finishedEntries(base: string, ids: string[], timeoutMs: number): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const history = (await call(base, '/history')).json as Record<string, any>;
    if (ids.every((id) => history[id])) return history;
    if (Date.now() > deadline) {
      const missing = ids.filter((id) => !history[id]);
      throw new Error(`prompts ${missing.join(', ')} did not finish; logs:\n${a.logs().slice(-2000)}`);
    }
    await sleep(200);
  }
}

/** Saved text files under outputs/nodes on the shared Atlas folder. */
async function savedTexts(): Promise<string[]> {
  return (await readdir(join(dirsA.atlas, 'outputs', 'nodes')).catch(() => [] as string[])).sort();
}

beforeAll(async () => {
  [dirsA, dirsB] = await Promise.all([hearthDirs('hearth-wf-node-a-'), hearthDirs('hearth-wf-node-b-')]);
  database = await createTestDatabase(sharedPostgresUrl());
  modelDir = await mkdtemp(join(tmpdir(), 'hearth-wf-nodes-models-'));
  const models = await makeTestModels(modelDir);
  // Own cache and home each; the same Atlas: one database and one files folder.
  const start = async (dirs: HearthDirs, id: string) => {
    const started = await startHearthProcess({
      dirs,
      database: database.url,
      env: { ...NODE_ENV, HEARTH_ATLAS_FILES: dirsA.atlas, HEARTH_NODE_ID: id },
    });
    processes.push(started);
    return started;
  };
  a = await start(dirsA, 'node-a');
  b = await start(dirsB, 'node-b');
  await createModel(a.url, 'tiny', models.chat);
});

afterAll(async () => {
  for (const p of processes) await p.stop('SIGKILL');
  await database?.drop();
  await Promise.all([dirsA?.cleanup(), dirsB?.cleanup()]);
  if (modelDir) await rm(modelDir, { recursive: true, force: true });
});

describe('workflow prompts on two nodes sharing one Atlas', () => {
  it('prompts submitted to one node are run by both, each exactly once', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `spread${i}`);
    const ids: string[] = [];
    for (const [i, name] of names.entries()) ids.push(await submit(a.url, storyPrompt(name, 2, i + 1)));

    const history = await finishedEntries(a.url, ids, 45_000);
    const ranOn = new Set<string>();
    for (const id of ids) {
      const entry = history[id];
      expect(entry.status, JSON.stringify(entry.status)).toMatchObject({ status_str: 'success', completed: true });
      expect(entry.outputs['save'].text[0].length).toBeGreaterThan(0);
      ranOn.add(entry.status.node);
    }
    expect([...ranOn].sort()).toEqual(['node-a', 'node-b']);
    // One file per prompt: no prompt ran twice.
    expect(await savedTexts()).toEqual(names.map((n) => `${n}_00001_.txt`));
  });

  it('shows the same /history and queue from either node', async () => {
    const [fromA, fromB] = await Promise.all([call(a.url, '/history'), call(b.url, '/history')]);
    expect(Object.keys(fromA.json).length).toBe(6);
    expect(fromB.json).toEqual(fromA.json);
    const one = Object.keys(fromA.json)[0]!;
    expect((await call(b.url, `/history/${one}`)).json).toEqual((await call(a.url, `/history/${one}`)).json);
    expect((await call(b.url, '/queue')).json).toEqual((await call(a.url, '/queue')).json);
  });

  it('a node killed mid-prompt: the other runs that prompt again after the lease, and each ends with one success', async () => {
    // Frames of a prompt come from the node running it, so progress on B's socket means B runs it.
    const socket = new WebSocket(`${b.url.replace('http', 'ws')}/ws?clientId=watch-b`);
    const onB: string[] = [];
    socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'progress') onB.push(frame.data.prompt_id);
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    try {
      // Two long prompts, two idle nodes: each node takes one (a node runs one prompt at a time).
      const names = ['long0', 'long1'];
      const ids: string[] = [];
      for (const [i, name] of names.entries()) {
        ids.push(await submit(b.url, storyPrompt(name, 20, 100 + i), 'watch-b'));
      }
      const deadline = Date.now() + 30_000;
      while (onB.length === 0 && Date.now() < deadline) await sleep(50);
      expect(onB.length, 'node B never reported progress on a prompt').toBeGreaterThan(0);
      const killed = onB[0]!;
      await b.stop('SIGKILL');
      const killedAt = Date.now();
      expect((await call(a.url, `/history/${killed}`)).json[killed]).toBeUndefined();

      // Node A takes the prompt only once B's lease (3 s, renewed every second) has run out.
      await finishedEntries(a.url, [killed], 45_000);
      expect(Date.now() - killedAt).toBeGreaterThan(1500);
      const history = await finishedEntries(a.url, ids, 45_000);
      for (const id of ids) {
        expect(history[id].status, JSON.stringify(history[id].status)).toMatchObject({
          status_str: 'success',
          completed: true,
          node: 'node-a',
        });
      }
      // Exactly one success each: one entry per prompt, one saved file per prompt, nothing left queued.
      expect(Object.keys(history).length).toBe(8);
      expect((await savedTexts()).filter((f) => f.startsWith('long'))).toEqual(names.map((n) => `${n}_00001_.txt`));
      expect((await call(a.url, '/prompt')).json).toEqual({ exec_info: { queue_remaining: 0 } });
    } finally {
      socket.close();
    }
  });

  it('records a run whose text holds a NUL character (jsonb refuses it) instead of retrying it as lost', async () => {
    // JSONParse turns the escape into a real NUL; the prompt itself holds only the escape.
    const id = await submit(a.url, {
      '1': { class_type: 'JSONParse', inputs: { text: '{"t": "a\\u0000b"}' } },
      '2': { class_type: 'JSONGetPath', inputs: { json: ['1', 0], path: 't' } },
      '3': { class_type: 'PreviewText', inputs: { text: ['2', 1] } },
    });
    const entry = (await finishedEntries(a.url, [id], 15_000))[id];
    expect(entry.status).toMatchObject({ status_str: 'success', node: 'node-a' });
    expect(entry.outputs['3'].text).toEqual(['a\uFFFDb']);
  });
});
