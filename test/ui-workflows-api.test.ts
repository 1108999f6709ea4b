// The workflow editor's API (/api/ui/workflows) over real HTTP with the session: node types, queueing
// with validation errors per node, live frames as server-sent events, history, saved workflows on
// Atlas (shared with ComfyUI's /api/workflows), the gallery of outputs and who may delete them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { type Json, UiClient } from './support/ui-client.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let alice: UiClient;
let bob: UiClient;
const W = '/api/ui/workflows';

const textPrompt = (text: string) => ({
  '1': { class_type: 'Text', inputs: { text } },
  '2': { class_type: 'SaveText', inputs: { text: ['1', 0], filename_prefix: 'editor/t' } },
});

/** Reads server-sent events until `until` says stop (bounded by a deadline). */
async function readEvents(
  url: string,
  cookie: string,
  until: (e: Json, started: boolean) => boolean,
  start: () => Promise<void>,
) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20_000);
  const res = await fetch(url, { headers: { cookie }, signal: controller.signal });
  expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: Json[] = [];
  let buffered = '';
  let started = false;
  let startDone = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let end = buffered.indexOf('\n\n');
      while (end >= 0) {
        const chunk = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        end = buffered.indexOf('\n\n');
        if (chunk.startsWith(':')) continue; // keep-alive comment
        const event = JSON.parse(chunk.replace(/^data: /, ''));
        events.push(event);
        if (!started) {
          started = true;
          await start();
          startDone = true;
        }
        if (until(event, startDone)) return events;
      }
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-ui-wf-');
  hearth = await startHearthInProcess(dirs, { ui: { generateTitles: false } });
  alice = new UiClient(hearth.url);
  alice.csrf = 'x';
  expect((await alice.post('/api/ui/setup', { username: 'alice', password: 'correct horse' })).status).toBe(201);
  expect(
    (await alice.post('/api/ui/users', { username: 'bob', password: 'battery staple', role: 'user' })).status,
  ).toBe(201);
  bob = new UiClient(hearth.url);
  expect((await bob.login('bob', 'battery staple')).status).toBe(200);
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('the workflow editor API', () => {
  it('needs a session (not an API key) and the CSRF header on writes', async () => {
    const anonymous = new UiClient(hearth.url);
    expect((await anonymous.get(`${W}/object_info`)).status).toBe(401);
    const noCsrf = await bob.call('POST', `${W}/prompt`, { prompt: textPrompt('x') }, { 'x-hearth-csrf': '' });
    expect(noCsrf.status).toBe(403);
  });

  it('lists node types as /object_info does', async () => {
    const info = await bob.get(`${W}/object_info`);
    expect(info.status).toBe(200);
    expect(info.json.Text.input.required.text[0]).toBe('STRING');
    expect(info.json.SaveText.output_node).toBe(true);
  });

  it('refuses an invalid prompt with ComfyUI node_errors naming the node and input, and queues nothing', async () => {
    const res = await bob.post(`${W}/prompt`, {
      prompt: { '1': { class_type: 'SaveJSON', inputs: { filename_prefix: 'x' } } },
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/validation/i);
    expect(res.json.node_errors['1'].errors[0]).toMatchObject({ type: 'required_input_missing' });
    expect(res.json.node_errors['1'].errors[0].extra_info.input_name).toBe('json');
    const malformed = await bob.post(`${W}/prompt`, { prompt: 'nope' });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error).toMatch(/prompt/);
    const badTab = await bob.post(`${W}/prompt`, { prompt: textPrompt('x'), client: '../x' });
    expect(badTab.status).toBe(400);
    expect((await bob.get(`${W}/queue`)).json).toEqual({ queue_running: [], queue_pending: [] });
  });

  it('queues a prompt and streams its frames to the tab that queued it, then it is in the history', async () => {
    let promptId = '';
    const events = await readEvents(
      `${hearth.url}${W}/events?client=tab1`,
      bob.cookie!,
      (e) => e.type === 'executing' && e.data.node === null,
      async () => {
        const res = await bob.post(`${W}/prompt`, {
          prompt: textPrompt('hello gallery'),
          workflow: { nodes: [], links: [], version: 0.4 },
          client: 'tab1',
        });
        expect(res.status, res.text).toBe(200);
        promptId = res.json.prompt_id;
      },
    );
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('status');
    expect(types).toContain('execution_start');
    expect(types).toContain('executed');
    expect(events.find((e) => e.type === 'executed').data).toMatchObject({ node: '2', prompt_id: promptId });
    const history = await bob.get(`${W}/history/${promptId}`);
    expect(history.json[promptId].status.status_str).toBe('success');
    expect(history.json[promptId].outputs['2'].text).toEqual(['hello gallery']);
    expect((await bob.get(`${W}/history/nope`)).status).toBe(404);
    expect((await bob.get(`${W}/history?max_items=0`)).status).toBe(400);
  });

  it('keeps another user’s tab out of those frames', async () => {
    const events = await readEvents(
      `${hearth.url}${W}/events?client=tab1`,
      alice.cookie!,
      // After the run has ended: the status frame every tab gets when the queue empties.
      (e, done) => done && e.type === 'status' && e.data.status.exec_info.queue_remaining === 0,
      async () => {
        const res = await bob.post(`${W}/prompt`, { prompt: textPrompt('for bob only'), client: 'tab1' });
        expect(res.status).toBe(200);
        // Wait for the run to end, then close the stream with a last look.
        for (let i = 0; i < 100; i++) {
          const entry = (await bob.get(`${W}/history/${res.json.prompt_id}`)).json[res.json.prompt_id];
          if (entry?.status) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      },
    );
    expect(events.at(-1).type).toBe('status');
    expect(events.some((e) => e.type === 'executed' || e.type === 'execution_start')).toBe(false);
  });

  it('saves, lists, renames and deletes workflows in the store ComfyUI’s /api/workflows serves', async () => {
    const workflow = { last_node_id: 1, last_link_id: 0, nodes: [], links: [], groups: [], version: 0.4 };
    expect((await bob.call('PUT', `${W}/saved/first`, { workflow })).status).toBe(200);
    expect((await bob.get(`${W}/saved`)).json.workflows.map((w: Json) => w.name)).toEqual(['first']);
    expect((await bob.get(`${W}/saved/first`)).json.workflow).toEqual(workflow);
    // The same row ComfyUI clients read.
    expect((await fetch(`${hearth.url}/api/workflows/first`).then((r) => r.json() as Promise<Json>)).workflow).toEqual(
      workflow,
    );
    expect((await bob.post(`${W}/saved/first/rename`, { name: 'second' })).status).toBe(200);
    expect((await bob.get(`${W}/saved`)).json.workflows.map((w: Json) => w.name)).toEqual(['second']);
    expect((await bob.call('PUT', `${W}/saved/third`, { workflow })).status).toBe(200);
    const clash = await bob.post(`${W}/saved/second/rename`, { name: 'third' });
    expect(clash.status).toBe(409);
    expect(clash.json.error).toMatch(/choose another name/);
    expect((await bob.post(`${W}/saved/missing/rename`, { name: 'x' })).status).toBe(404);
    expect((await bob.call('PUT', `${W}/saved/bad`, { workflow: 'x' })).status).toBe(400);
    expect((await bob.delete(`${W}/saved/second`)).status).toBe(200);
    expect((await bob.delete(`${W}/saved/second`)).status).toBe(404);
  });

  it('shows outputs newest first with their prompt and workflow; downloads; only an admin deletes', async () => {
    const gallery = await bob.get(`${W}/gallery`);
    expect(gallery.status).toBe(200);
    const [newest, older] = gallery.json.items;
    expect(newest).toMatchObject({ kind: 'text', type: 'output', subfolder: 'editor', classType: 'SaveText' });
    expect(newest.filename).toBe('t_00002_.txt');
    expect(older.filename).toBe('t_00001_.txt');
    expect(older.workflow).toEqual({ nodes: [], links: [], version: 0.4 });
    expect(older.prompt['1'].inputs.text).toBe('hello gallery');
    const file = await bob.get(`${W}/view?filename=${older.filename}&subfolder=editor&download=1`);
    expect(file.text).toBe('hello gallery');
    expect(file.headers.get('content-disposition')).toMatch(/attachment/);
    expect((await bob.get(`${W}/view?filename=../../etc/passwd`)).status).toBe(400);
    const query = `filename=${older.filename}&subfolder=editor`;
    expect((await bob.delete(`${W}/gallery?${query}`)).status).toBe(403);
    expect((await alice.delete(`${W}/gallery?${query}`)).status).toBe(200);
    expect((await alice.delete(`${W}/gallery?${query}`)).status).toBe(404);
    const after = await bob.get(`${W}/gallery`);
    expect(after.json.items.map((i: Json) => i.filename)).toEqual(['t_00002_.txt']);
  });

  it('interrupts and clears the queue', async () => {
    expect((await bob.post(`${W}/interrupt`, {})).json).toEqual({ interrupted: 0 });
    expect((await bob.post(`${W}/queue/clear`, {})).json).toEqual({ removed: 0 });
  });
});
