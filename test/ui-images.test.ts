// "Create image" in the chat over real HTTP: a generated diffusers-layout ONNX model draws the
// prompt through the images API's code (ONNX Runtime on CPU), and the chat keeps it on Atlas (PGlite
// and a files folder): one PNG of the asked size and the two messages. Every bad request is refused
// before any work and writes nothing.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { addImageModel, makeTestModels } from './support/models.js';
import { importModel, type Json, UiClient } from './support/ui-client.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
/** an ordinary user (not an admin): "Create image" is for everyone who chats */
let bob: UiClient;
let bobId: string;
let chatId: string;

const ndjson = (text: string): Json[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

/** What Atlas holds for the chats: image files and message rows. */
async function atlasState() {
  const files = await hearth.ctx.atlas.files.list('chat/');
  const [row] = await hearth.ctx.atlas.db.query<{ n: string }>('select count(*) as n from chat_messages');
  return { files: files.map((f) => f.key), messages: Number(row?.n) };
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-ui-images-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, { images: { executionProvider: 'cpu' }, ui: { generateTitles: false } });
  await addImageModel(hearth.url, dirs.atlas);
  await importModel(hearth.url, 'chat', models.chat);

  const alice = new UiClient(hearth.url);
  alice.csrf = 'x';
  expect((await alice.post('/api/ui/setup', { username: 'alice', password: 'correct horse' })).status).toBe(201);
  const made = await alice.post('/api/ui/users', { username: 'bob', password: 'battery staple', role: 'user' });
  expect(made.status, made.text).toBe(201);
  bobId = made.json.user.id;
  bob = new UiClient(hearth.url);
  expect((await bob.login('bob', 'battery staple')).status).toBe(200);
  const chat = await bob.post('/api/ui/conversations', {});
  expect(chat.status, chat.text).toBe(201);
  chatId = chat.json.conversation.id;
}, 300_000); // test models, an ONNX fixture, a server: slow on a busy 2-core machine

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('Create image', () => {
  it('lists image models apart from the chat models', async () => {
    const res = await bob.get('/api/ui/models');
    expect(res.status).toBe(200);
    expect(res.json.imageModels).toEqual([expect.objectContaining({ name: 'tiny-sd:latest' })]);
    expect(res.json.models.map((m: Json) => m.name)).toEqual(['chat:latest']);
  });

  it('refuses each bad request with its status and reason, before any work, writing nothing', async () => {
    const before = await atlasState();
    const ok = { parentId: null, prompt: 'a red house', model: 'tiny-sd', size: '64x64', steps: 1 };
    const cases: Array<[string, Json, number, RegExp, string?]> = [
      ['unknown model', { ...ok, model: 'nope' }, 404, /image model "nope" not found: create it with hearth create/],
      ['a language model', { ...ok, model: 'chat' }, 400, /"chat" is a language model; images need an image model/],
      ['a size off the grid of 8', { ...ok, size: '65x64' }, 400, /size "65x64": use WIDTHxHEIGHT in multiples of 8/],
      ['a size too large', { ...ok, size: '8192x64' }, 400, /from 64 to 4096/],
      ['no steps', { ...ok, steps: 0 }, 400, /steps/],
      ['too many steps', { ...ok, steps: 501 }, 400, /steps/],
      ['a negative seed', { ...ok, seed: -1 }, 400, /seed/],
      ['an empty prompt', { ...ok, prompt: '' }, 400, /prompt must not be empty/],
      ['no model', { parentId: null, prompt: 'x' }, 400, /model is required/],
      ['a parent from nowhere', { ...ok, parentId: 'no-such-message' }, 404, /no message "no-such-message"/],
      ['another chat', ok, 404, /conversation/, 'no-such-chat'],
    ];
    for (const [what, body, status, message, chat] of cases) {
      const res = await bob.call('POST', `/api/ui/conversations/${chat ?? chatId}/images`, body);
      expect(res.status, `${what}: ${res.text}`).toBe(status);
      expect(res.json.error, what).toMatch(message);
    }
    expect(await atlasState()).toEqual(before);
  });

  it('draws the prompt with progress, and keeps one PNG of the asked size and the two messages on Atlas', async () => {
    const before = await atlasState();
    const res = await bob.call('POST', `/api/ui/conversations/${chatId}/images`, {
      parentId: null,
      prompt: 'a red house',
      model: 'tiny-sd',
      size: '72x64',
      steps: 2,
      seed: 7,
    });
    expect(res.status, res.text).toBe(200);
    const events = ndjson(res.text);
    expect(events.map((e) => e.type)).toEqual(['progress', 'progress', 'message', 'message', 'done']);
    expect(events.slice(0, 2)).toEqual([
      { type: 'progress', step: 1, total: 2 },
      { type: 'progress', step: 2, total: 2 },
    ]);
    const [asked, answer] = [events[2].message, events[3].message];
    expect(asked).toMatchObject({ role: 'user', content: 'a red house', parentId: null, status: 'done' });
    expect(answer).toMatchObject({ role: 'assistant', parentId: asked.id, model: 'tiny-sd:latest', status: 'done' });
    expect(answer.content).toMatch(/^72×64 · 2 steps · seed 7 · /);
    expect(events[4].message).toEqual(answer);

    // exactly one new file, a PNG of 72×64, and the two rows
    const after = await atlasState();
    expect(after.messages).toBe(before.messages + 2);
    const added = after.files.filter((f) => !before.files.includes(f));
    expect(added).toEqual([`chat/${bobId}/${answer.attachments[0].image}`]);
    const png = await fetch(`${hearth.url}/api/ui/images/${answer.attachments[0].image}`, {
      headers: { cookie: bob.cookie ?? '' },
    });
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    const meta = await sharp(Buffer.from(await png.arrayBuffer())).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 72, height: 64 });
    expect(answer.attachments).toEqual([
      { name: 'a red house.png', size: meta.size, text: '', truncated: false, image: answer.attachments[0].image },
    ]);

    // The chat as the page reads it: the exchange is the shown branch, titled by the prompt.
    const chat = await bob.get(`/api/ui/conversations/${chatId}`);
    expect(chat.json.conversation).toMatchObject({ title: 'a red house', currentLeafId: answer.id });
    expect(chat.json.messages.map((m: Json) => m.id)).toEqual([asked.id, answer.id]);

    // The same seed again, under the answer: the same bytes, stored once (content-addressed).
    const again = await bob.call('POST', `/api/ui/conversations/${chatId}/images`, {
      parentId: answer.id,
      prompt: 'a red house',
      model: 'tiny-sd',
      size: '72x64',
      steps: 2,
      seed: 7,
    });
    expect(again.status, again.text).toBe(200);
    const second = ndjson(again.text).at(-1).message;
    expect(second.attachments[0].image).toBe(answer.attachments[0].image);
    expect((await atlasState()).files).toEqual(after.files);
  });

  it('shows a draw as pending, stops it between sampling steps storing nothing, then draws again', async () => {
    const chat = (await bob.post('/api/ui/conversations', {})).json.conversation.id;
    const before = await atlasState();
    // 500 steps (the most) at 256×256: seconds even for the tiny model, far longer than the checks below.
    const slow = { parentId: null, prompt: 'a slow green field', model: 'tiny-sd', size: '256x256', steps: 500 };
    let stepped!: () => void;
    const firstStep = new Promise<void>((resolve) => {
      stepped = resolve;
    });
    let steps = 0;
    const drawn = bob.createImage(chat, slow, (e) => {
      if (e.type !== 'progress') return;
      steps++;
      stepped();
    });
    await firstStep;

    // A reload meanwhile: the chat says a picture is being drawn (nothing is on Atlas yet).
    const shown = await bob.get(`/api/ui/conversations/${chat}`);
    expect(shown.json.messages).toEqual([]);
    expect(shown.json.drawing).toMatchObject({ prompt: 'a slow green field', model: 'tiny-sd:latest', total: 500 });
    expect(shown.json.drawing.step).toBeGreaterThanOrEqual(1);
    // A second picture in the same chat waits for this one.
    const second = await bob.call('POST', `/api/ui/conversations/${chat}/images`, { ...slow, steps: 1 });
    expect(second.status, second.text).toBe(409);
    expect(second.json).toMatchObject({
      error: expect.stringMatching(
        /a picture is being drawn in this chat \("a slow green field"\): wait for it, or stop it/,
      ),
    });
    // The reloaded page follows it, from the step it is at.
    let following!: () => void;
    const followingNow = new Promise<void>((resolve) => {
      following = resolve;
    });
    const followed = bob.followImage(chat, () => following());
    await followingNow;

    const stop = await bob.post(`/api/ui/conversations/${chat}/images/stop`);
    expect(stop.status, stop.text).toBe(200);
    expect(stop.json).toEqual({ stopped: true });
    // The stop answers once the draw has ended: no step after it.
    const stepsAtStop = steps;
    const events = (await drawn).events;
    expect(events.at(-1)).toEqual({ type: 'stopped' });
    expect(events.filter((e) => e.type === 'progress')).toHaveLength(stepsAtStop);
    expect(stepsAtStop).toBeLessThan(500);
    const seen = (await followed).events;
    expect(seen[0]).toMatchObject({ type: 'progress', total: 500 });
    expect(seen.at(-1)).toEqual({ type: 'stopped' });
    expect(seen.some((e) => e.type === 'message' || e.type === 'done')).toBe(false);

    // Nothing of it on Atlas, no draw any more, and nothing left to stop or follow.
    expect(await atlasState()).toEqual(before);
    expect((await bob.get(`/api/ui/conversations/${chat}`)).json).toMatchObject({ messages: [], drawing: null });
    expect((await bob.post(`/api/ui/conversations/${chat}/images/stop`)).json).toEqual({ stopped: false });
    expect((await bob.followImage(chat)).status).toBe(204);

    // The next picture in that chat is drawn and stored.
    const next = await bob.call('POST', `/api/ui/conversations/${chat}/images`, { ...slow, size: '64x64', steps: 1 });
    expect(next.status, next.text).toBe(200);
    expect(ndjson(next.text).map((e) => e.type)).toEqual(['progress', 'message', 'message', 'done']);
    expect((await atlasState()).messages).toBe(before.messages + 2);
  });

  it('ends a draw when hearth shuts down, storing nothing and telling the page why', async () => {
    const chat = (await bob.post('/api/ui/conversations', {})).json.conversation.id;
    const before = await atlasState();
    let stepped!: () => void;
    const firstStep = new Promise<void>((resolve) => {
      stepped = resolve;
    });
    const drawn = bob.createImage(
      chat,
      { parentId: null, prompt: 'a late night', model: 'tiny-sd', size: '256x256', steps: 500 },
      () => stepped(),
    );
    await firstStep;
    // What closing hearth does first with the chat (src/chat/index.ts); the server itself stays up here.
    await hearth.ctx.chat.images.close();
    expect((await drawn).events.at(-1)).toEqual({ error: 'hearth is shutting down' });
    expect(await atlasState()).toEqual(before);
    expect((await bob.get(`/api/ui/conversations/${chat}`)).json.drawing).toBeNull();
  });

  it('is stopped and followed only by the chat’s owner', async () => {
    const chat = (await bob.post('/api/ui/conversations', {})).json.conversation.id;
    const dave = new UiClient(hearth.url);
    const admin = new UiClient(hearth.url);
    expect((await admin.login('alice', 'correct horse')).status).toBe(200);
    expect((await admin.post('/api/ui/users', { username: 'dave', password: 'dave dave dave' })).status).toBe(201);
    expect((await dave.login('dave', 'dave dave dave')).status).toBe(200);
    expect((await dave.post(`/api/ui/conversations/${chat}/images/stop`)).status).toBe(404);
    expect((await dave.followImage(chat)).status).toBe(404);
  });

  it('writes nothing when the image model fails in ONNX Runtime, and says where', async () => {
    await addImageModel(hearth.url, dirs.atlas, 'broken-sd', (dir) =>
      writeFile(join(dir, 'unet', 'model.onnx'), 'not a protobuf'),
    );
    const before = await atlasState();
    const res = await bob.call('POST', `/api/ui/conversations/${chatId}/images`, {
      parentId: null,
      prompt: 'a blue tree',
      model: 'broken-sd',
      size: '64x64',
      steps: 1,
    });
    expect(res.status).toBe(500);
    expect(res.json.error).toMatch(/ONNX Runtime failed in loading unet/);
    expect(await atlasState()).toEqual(before);
  });

  it('is refused for a chat of another person, and their images stay theirs', async () => {
    const carol = new UiClient(hearth.url);
    carol.csrf = 'x';
    const admin = new UiClient(hearth.url);
    expect((await admin.login('alice', 'correct horse')).status).toBe(200);
    expect((await admin.post('/api/ui/users', { username: 'carol', password: 'hunter2 hunter2' })).status).toBe(201);
    expect((await carol.login('carol', 'hunter2 hunter2')).status).toBe(200);
    const res = await carol.call('POST', `/api/ui/conversations/${chatId}/images`, {
      parentId: null,
      prompt: 'x',
      model: 'tiny-sd',
      size: '64x64',
      steps: 1,
    });
    expect(res.status).toBe(404);
  });
});
