// The chat UI's API over real HTTP: accounts, sessions on Atlas, CSRF, conversation trees with
// branches, stop, search, export/import, presets and who may see what.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeImages } from '../src/chat/attachments.js';
import { ChatReplies, TitleWriter, titleFromReply } from '../src/chat/index.js';
import { silentLogger } from '../src/log.js';
import { docx } from './support/docx.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';
import { imageOnlyPdf, textPdf } from './support/pdf.js';
import { importModel, type Json, LONG, orphanReply, PNG_1X1, UiClient } from './support/ui-client.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
const admin = () => new UiClient(hearth.url);
let alice: UiClient;
let bob: UiClient;

/** Short, deterministic replies: a few tokens of a random model. */
const SHORT = { num_predict: 6, seed: 1, temperature: 0 };

async function newChat(client: UiClient, params: Record<string, unknown> = SHORT): Promise<string> {
  const res = await client.post('/api/ui/conversations', { model: 'chat', params });
  expect(res.status, res.text).toBe(201);
  return res.json.conversation.id;
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-ui-api-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, { inference: { numCtx: 512 }, ui: { generateTitles: false } });
  await importModel(hearth.url, 'chat', models.chat);
  await importModel(hearth.url, 'embed', models.embed);
}, 300_000); // test models, a server and two imports: slow on a busy 2-core machine

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('first run, sign-in and sessions', () => {
  it('lets the first visitor create the admin, once', async () => {
    alice = admin();
    const before = await alice.get('/api/ui/session');
    expect(before.json).toMatchObject({ user: null, setupRequired: true });

    const noCsrf = await alice.call('POST', '/api/ui/setup', { username: 'alice', password: 'correct horse' });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.json.error).toMatch(/x-hearth-csrf/);

    alice.csrf = 'x';
    const weak = await alice.post('/api/ui/setup', { username: 'alice', password: 'short' });
    expect(weak.status).toBe(400);
    expect(weak.json.error).toMatch(/at least 8 characters/);

    const setup = await alice.post('/api/ui/setup', { username: 'alice', password: 'correct horse' });
    expect(setup.status, setup.text).toBe(201);
    expect(setup.json.user).toMatchObject({ username: 'alice', role: 'admin' });
    const cookie = setup.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/hearth_session=[\w-]{40,}/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);

    const again = await new UiClient(hearth.url).call(
      'POST',
      '/api/ui/setup',
      { username: 'mallory', password: 'mallory-pass' },
      { 'x-hearth-csrf': 'x' },
    );
    expect(again.status).toBe(409);
    const after = await new UiClient(hearth.url).get('/api/ui/session');
    expect(after.json.setupRequired).toBe(false);
  });

  it('keeps sessions in the Atlas database (only a hash of the token) and ends them on sign-out', async () => {
    const me = await alice.get('/api/ui/session');
    expect(me.json.user.username).toBe('alice');
    const token = /hearth_session=([^;]+)/.exec(alice.cookie ?? '')?.[1] ?? '';
    const rows = await hearth.ctx.atlas.db.query<{ id: string }>('select id from user_sessions');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.id === token)).toBe(false);

    const other = new UiClient(hearth.url);
    expect((await other.login('alice', 'correct horse')).status).toBe(200);
    expect((await other.post('/api/ui/logout')).status).toBe(200);
    expect((await other.get('/api/ui/conversations')).status).toBe(401);
    // alice's first session is untouched
    expect((await alice.get('/api/ui/conversations')).status).toBe(200);
  });

  it('refuses wrong passwords and unknown users alike', async () => {
    const c = new UiClient(hearth.url);
    const wrong = await c.login('alice', 'wrong password');
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('wrong user name or password');
    const unknown = await c.login('nobody', 'wrong password');
    expect(unknown.status).toBe(401);
    expect(unknown.json.error).toBe('wrong user name or password');
    expect((await c.get('/api/ui/conversations')).status).toBe(401);
  });

  it('refuses writes without the session’s CSRF token', async () => {
    const missing = await alice.call('POST', '/api/ui/conversations', {}, { 'x-hearth-csrf': '' });
    expect(missing.status).toBe(403);
    const wrong = await alice.call('POST', '/api/ui/conversations', {}, { 'x-hearth-csrf': 'not-the-token' });
    expect(wrong.status).toBe(403);
    expect(wrong.json.error).toMatch(/CSRF/);
    const crossSite = await alice.call('POST', '/api/ui/conversations', {}, { 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
  });

  it('lets an admin manage users, and only an admin', async () => {
    const created = await alice.post('/api/ui/users', { username: 'bob', password: 'bob-password', role: 'user' });
    expect(created.status, created.text).toBe(201);
    const dup = await alice.post('/api/ui/users', { username: 'BOB', password: 'bob-password' });
    expect(dup.status).toBe(409);
    bob = new UiClient(hearth.url);
    expect((await bob.login('bob', 'bob-password')).status).toBe(200);
    expect((await bob.get('/api/ui/users')).status).toBe(403);
    expect((await bob.post('/api/ui/users', { username: 'eve', password: 'eve-password' })).status).toBe(403);
    const list = await alice.get('/api/ui/users');
    expect(list.json.users.map((u: Json) => u.username)).toEqual(['alice', 'bob']);
    // When each account was made and last used a session (the Users page's columns).
    for (const u of list.json.users) {
      expect(Number.isNaN(Date.parse(u.createdAt))).toBe(false);
      expect(Number.isNaN(Date.parse(u.lastSeenAt))).toBe(false);
    }
    // the last admin cannot be demoted
    const demote = await alice.patch(`/api/ui/users/${list.json.users[0].id}`, { role: 'user' });
    expect(demote.status).toBe(400);
    expect(demote.json.error).toMatch(/last admin/);
  });

  it('sends browsers at / to the UI, and API clients the banner', async () => {
    const browser = await fetch(`${hearth.url}/`, { headers: { accept: 'text/html,*/*' }, redirect: 'manual' });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe('/ui/');
    const api = await fetch(`${hearth.url}/`);
    expect(await api.text()).toBe('hearth is running');
  });
});

describe('conversations', () => {
  it('lists chat models only, and remembers a default model', async () => {
    const models = await alice.get('/api/ui/models');
    expect(models.json.models.map((m: Json) => m.name)).toEqual(['chat:latest']);
    const bad = await alice.patch('/api/ui/me', { defaultModel: 'nope' });
    expect(bad.status).toBe(404);
    const me = await alice.patch('/api/ui/me', { defaultModel: 'chat:latest' });
    expect(me.json.user.defaultModel).toBe('chat:latest');
    // What the settings need: the model's own parameters and what it can do.
    expect(models.json.models[0]).toMatchObject({ parameters: expect.any(Object), capabilities: ['completion'] });
  });

  it('keeps each person’s theme on Atlas', async () => {
    expect((await alice.get('/api/ui/session')).json.user.theme).toBe('system');
    const bad = await alice.patch('/api/ui/me', { theme: 'pink' });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/theme/);
    expect((await alice.patch('/api/ui/me', { theme: 'dark' })).json.user.theme).toBe('dark');
    expect((await alice.get('/api/ui/session')).json.user.theme).toBe('dark');
    expect((await bob.get('/api/ui/session')).json.user.theme).toBe('system');
    expect((await alice.patch('/api/ui/me', { theme: 'system' })).json.user.theme).toBe('system');
  });

  it('stores a reply as a tree: regenerate and edit make siblings; the shown branch is remembered', async () => {
    const id = await newChat(alice);
    const texts: string[] = [];
    const first = await alice.reply(id, { parentId: null, content: 'Hello there' }, (e) => {
      if (e.type === 'text') texts.push(e.text);
    });
    expect(first.status).toBe(200);
    // Conversations are private: the streamed reply is never cached, as no other UI answer is.
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect((await alice.get(`/api/ui/conversations/${id}`)).headers.get('cache-control')).toBe('no-store');
    const kinds = first.events.map((e) => e.type);
    expect(kinds[0]).toBe('message');
    expect(kinds[1]).toBe('message');
    expect(kinds.at(-1)).toBe('done');
    const user = first.events[0].message;
    const reply1 = first.events.at(-1).message;
    expect(user).toMatchObject({ role: 'user', content: 'Hello there', parentId: null });
    expect(reply1).toMatchObject({ role: 'assistant', parentId: user.id, status: 'done', model: 'chat:latest' });
    expect(reply1.content).toBe(texts.join(''));
    expect(reply1.stats.evalTokens).toBeGreaterThan(0);
    expect(reply1.stats.timeToFirstTokenMs).toBeGreaterThanOrEqual(0);

    const regen = await alice.reply(id, { parentId: user.id });
    const reply2 = regen.events.at(-1).message;
    expect(regen.events.filter((e) => e.type === 'message')).toHaveLength(1);
    expect(reply2).toMatchObject({ role: 'assistant', parentId: user.id, status: 'done' });

    const edit = await alice.reply(id, { parentId: null, content: 'Hello again' });
    const editedUser = edit.events[0].message;
    expect(editedUser).toMatchObject({ role: 'user', parentId: null, content: 'Hello again' });

    const got = await alice.get(`/api/ui/conversations/${id}`);
    expect(got.json.messages).toHaveLength(5);
    const siblingsOf = (parent: string | null, role: string) =>
      got.json.messages.filter((m: Json) => m.parentId === parent && m.role === role).map((m: Json) => m.id);
    expect(siblingsOf(null, 'user')).toEqual([user.id, editedUser.id]);
    expect(siblingsOf(user.id, 'assistant')).toEqual([reply1.id, reply2.id]);
    expect(got.json.conversation.currentLeafId).toBe(edit.events.at(-1).message.id);
    expect(got.json.conversation.title).toBe('Hello there');

    // show the first branch again; a message of another chat is refused
    const shown = await alice.patch(`/api/ui/conversations/${id}`, { currentLeafId: reply1.id });
    expect(shown.json.conversation.currentLeafId).toBe(reply1.id);
    const elsewhere = await alice.patch(`/api/ui/conversations/${id}`, { currentLeafId: 'no-such-message' });
    expect(elsewhere.status).toBe(404);
  });

  it('stops a reply and keeps its text, saved', async () => {
    const id = await newChat(alice, LONG.params);
    let stopped: string | undefined;
    let stop: Promise<Json> | undefined;
    const { events } = await alice.reply(id, { parentId: null, content: LONG.prompt }, (e) => {
      if (e.type === 'message' && e.message.role === 'assistant') stopped = e.message.id;
      if (e.type === 'text') stop ??= alice.post(`/api/ui/conversations/${id}/messages/${stopped}/stop`);
    });
    const answer = await stop;
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.message.status).toBe('stopped');
    const final = events.at(-1).message;
    expect(final.status).toBe('stopped');
    expect(final.content.length).toBeGreaterThan(0);
    const saved = await alice.get(`/api/ui/conversations/${id}`);
    const message = saved.json.messages.find((m: Json) => m.id === stopped);
    expect(message).toMatchObject({ status: 'stopped', content: final.content });
  });

  it('continues a stopped reply: the new text is appended to the saved text, in the same message', async () => {
    const id = await newChat(alice, LONG.params);
    let replyId = '';
    let stop: Promise<Json> | undefined;
    await alice.reply(id, { parentId: null, content: LONG.prompt }, (e) => {
      if (e.type === 'message' && e.message.role === 'assistant') replyId = e.message.id;
      if (e.type === 'text') stop ??= alice.post(`/api/ui/conversations/${id}/messages/${replyId}/stop`);
    });
    const saved = (await stop)?.json.message.content as string;
    expect(saved.length).toBeGreaterThan(0);

    let again: Promise<Json> | undefined;
    let added = '';
    const { status, events } = await alice.continueReply(id, replyId, (e) => {
      if (e.type === 'text') {
        added += e.text;
        if (added.length > 20) again ??= alice.post(`/api/ui/conversations/${id}/messages/${replyId}/stop`);
      }
    });
    expect(status).toBe(200);
    expect(events[0]).toMatchObject({ type: 'message', message: { id: replyId, status: 'streaming', content: saved } });
    await again;
    const final = events.at(-1);
    expect(final).toMatchObject({ type: 'done', message: { id: replyId, status: 'stopped' } });
    expect(final.message.content).toBe(saved + added);
    expect(added.length).toBeGreaterThan(20);
    const tree = await alice.get(`/api/ui/conversations/${id}`);
    expect(tree.json.messages).toHaveLength(2);
    expect(tree.json.messages[1]).toMatchObject({ id: replyId, status: 'stopped', content: saved + added });

    // A user message, or a reply that ended by itself, is not continued.
    const user = tree.json.messages[0].id;
    const notReply = await alice.continueReply(id, user);
    expect(notReply.status).toBe(400);
    expect(notReply.events[0].error).toMatch(/only a reply/);
    // Greedy, this model ends "Hello there" by itself after about 24 tokens.
    const short = await newChat(alice, LONG.params);
    const done = await alice.reply(short, { parentId: null, content: 'Hello there' });
    expect(done.events.at(-1).message).toMatchObject({ status: 'done', stats: { doneReason: 'stop' } });
    const doneId = done.events.at(-1).message.id;
    const refused = await alice.continueReply(short, doneId);
    expect(refused.status).toBe(400);
    expect(refused.events[0].error).toMatch(/ended by itself|length/);
    expect((await bob.continueReply(id, replyId)).status).toBe(404);
  });

  it('reads a PDF’s and a Word document’s text into the message, refuses other binary files, and refuses images for a model that cannot see', async () => {
    const id = await newChat(alice);
    const asText = await alice.reply(id, {
      parentId: null,
      content: 'read this',
      attachments: [{ name: 'paper.pdf', text: '%PDF-1.7' }],
    });
    expect(asText.status).toBe(415);
    expect(asText.events[0].error).toMatch(/"paper.pdf" is not a text file/);
    // A PDF comes as its bytes; its text layer goes into the message (pdfjs-dist, on the server).
    const pdf = textPdf([['Quarterly report'], ['Revenue grew by 12 percent']]).toString('base64');
    const read = await alice.reply(id, {
      parentId: null,
      content: 'summarise',
      attachments: [{ name: 'report.pdf', data: pdf }],
    });
    expect(read.status, JSON.stringify(read.events[0])).toBe(200);
    const asked = read.events.find((e) => e.type === 'message' && e.message.role === 'user').message;
    expect(asked.attachments[0]).toMatchObject({ name: 'report.pdf', truncated: false });
    expect(asked.attachments[0].text).toMatch(/Quarterly report[\s\S]*Revenue grew by 12 percent/);
    // A Word document (.docx) likewise: its text, headings as Markdown (mammoth, on the server).
    const word = docx([{ text: 'Boiler care', heading: 1 }, { text: 'Bleed the radiators every October.' }]);
    const fromWord = await alice.reply(id, {
      parentId: null,
      content: 'summarise',
      attachments: [{ name: 'boiler.docx', data: word.toString('base64') }],
    });
    expect(fromWord.status, JSON.stringify(fromWord.events[0])).toBe(200);
    const askedWord = fromWord.events.find((e) => e.type === 'message' && e.message.role === 'user').message;
    expect(askedWord.attachments[0]).toMatchObject({ name: 'boiler.docx', truncated: false });
    expect(askedWord.attachments[0].text).toMatch(/# Boiler care[\s\S]*Bleed the radiators every October/);
    const wordAsText = await alice.reply(id, {
      parentId: null,
      content: 'read this',
      attachments: [{ name: 'boiler.docx', text: 'PK' }],
    });
    expect(wordAsText.status).toBe(415);
    expect(wordAsText.events[0].error).toMatch(/"boiler.docx" is not a text file/);
    const scan = await alice.reply(id, {
      parentId: null,
      content: 'read this',
      attachments: [{ name: 'scan.pdf', data: imageOnlyPdf().toString('base64') }],
    });
    expect(scan.status).toBe(415);
    expect(scan.events[0].error).toMatch(/scan.pdf/);
    const zip = await alice.reply(id, {
      parentId: null,
      content: 'open this',
      attachments: [{ name: 'files.zip', data: Buffer.from('PK\x03\x04 not really').toString('base64') }],
    });
    expect(zip.status).toBe(415);
    expect(zip.events[0].error).toMatch(/"files.zip": this kind of file is not read; attach images/);

    // An image, to a model without vision: refused with the reason, and nothing is written.
    const before = (await alice.get(`/api/ui/conversations/${id}`)).json.messages.length;
    const image = await alice.reply(id, {
      parentId: null,
      content: 'what is this?',
      attachments: [{ name: 'dot.png', data: PNG_1X1 }],
    });
    expect(image.status).toBe(415);
    expect(image.events[0].error).toBe(
      'chat:latest cannot see images (it has no vision capability): pick a vision model for "dot.png", or remove the image',
    );
    expect((await alice.get(`/api/ui/conversations/${id}`)).json.messages.length).toBe(before);

    const long = 'word '.repeat(2000);
    const cut = await alice.reply(id, {
      parentId: null,
      content: 'summarise',
      attachments: [{ name: 'notes.md', text: long }],
    });
    const notice = cut.events.find((e) => e.type === 'notice');
    expect(notice.text).toMatch(/"notes.md" was cut to .* to fit the model's context \(512 tokens\)/);
    const stored = cut.events.find((e) => e.type === 'message' && e.message.role === 'user');
    expect(stored.message.attachments[0]).toMatchObject({ name: 'notes.md', truncated: true });
    expect(stored.message.attachments[0].text.length).toBeLessThan(long.length);
  });

  it('serves a person’s chat images from Atlas files, to them only', async () => {
    const me = (await alice.get('/api/ui/session')).json.user;
    const [stored] = await storeImages(hearth.ctx.atlas.files, me.id, [
      { name: 'dot.png', bytes: Buffer.from(PNG_1X1, 'base64'), type: 'image/png' },
    ]);
    expect(stored).toMatchObject({ name: 'dot.png', image: expect.stringMatching(/^[0-9a-f]{64}\.png$/) });
    const res = await fetch(`${hearth.url}/api/ui/images/${stored?.image}`, {
      headers: { cookie: alice.cookie ?? '' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(PNG_1X1, 'base64'))).toBe(true);
    expect((await bob.get(`/api/ui/images/${stored?.image}`)).status).toBe(404);
    expect((await alice.get('/api/ui/images/..%2F..%2Fsecret.png')).status).toBe(404);
  });

  it('pages the sidebar, pinned first, and searches titles and message text in the database', async () => {
    for (const title of ['Alpha', 'Beta', 'Gamma']) {
      await alice.post('/api/ui/conversations', { title });
    }
    const all = await alice.get('/api/ui/conversations?limit=100');
    const beta = all.json.conversations.find((c: Json) => c.title === 'Beta');
    await alice.patch(`/api/ui/conversations/${beta.id}`, { pinned: true });
    const page1 = await alice.get('/api/ui/conversations?limit=2');
    expect(page1.json.conversations[0].title).toBe('Beta');
    expect(page1.json.conversations).toHaveLength(2);
    const page2 = await alice.get(`/api/ui/conversations?limit=100&after=${page1.json.next}`);
    const seen = [...page1.json.conversations, ...page2.json.conversations].map((c: Json) => c.id);
    expect(new Set(seen).size).toBe(all.json.conversations.length);

    const byText = await alice.get('/api/ui/search?q=hello%20agai');
    expect(byText.json.results).toHaveLength(1);
    expect(byText.json.results[0].snippet).toMatch(/Hello again/);
    const byTitle = await alice.get('/api/ui/search?q=gamma');
    expect(byTitle.json.results.map((r: Json) => r.title)).toEqual(['Gamma']);
  });

  it('deletes with undo', async () => {
    const id = await newChat(alice);
    expect((await alice.delete(`/api/ui/conversations/${id}`)).status).toBe(200);
    expect((await alice.get(`/api/ui/conversations/${id}`)).status).toBe(404);
    expect((await alice.post(`/api/ui/conversations/${id}/restore`)).status).toBe(200);
    expect((await alice.get(`/api/ui/conversations/${id}`)).status).toBe(200);
  });

  it('exports and imports an equal tree (hearth JSON), and reads Open WebUI exports', async () => {
    const list = await alice.get('/api/ui/search?q=hello');
    const id = list.json.results[0].id;
    const exported = await alice.get(`/api/ui/conversations/${id}/export`);
    expect(exported.headers.get('content-disposition')).toMatch(/attachment/);
    const imported = await alice.post('/api/ui/import', exported.json);
    expect(imported.json).toMatchObject({ format: 'hearth', imported: 1 });
    const copy = await alice.get(`/api/ui/conversations/${imported.json.conversations[0].id}`);
    const original = await alice.get(`/api/ui/conversations/${id}`);
    expect(shape(copy.json)).toEqual(shape(original.json));

    const md = await alice.call('GET', `/api/ui/conversations/${id}/export?format=md`);
    expect(md.headers.get('content-type')).toMatch(/text\/markdown/);
    expect(md.text).toMatch(/^# Hello there\n/);

    const webui = [
      {
        id: 'w1',
        title: 'From Open WebUI',
        created_at: 1_700_000_000,
        updated_at: 1_700_000_100,
        pinned: false,
        chat: {
          title: 'From Open WebUI',
          models: ['llama3:8b'],
          params: { temperature: 0.3, system: 'Be brief.' },
          history: {
            currentId: 'b2',
            messages: {
              a1: {
                id: 'a1',
                parentId: null,
                childrenIds: ['b1', 'b2'],
                role: 'user',
                content: 'Hi',
                timestamp: 1_700_000_000,
              },
              b1: {
                id: 'b1',
                parentId: 'a1',
                childrenIds: [],
                role: 'assistant',
                content: 'Hello!',
                model: 'llama3:8b',
                timestamp: 1_700_000_010,
              },
              b2: {
                id: 'b2',
                parentId: 'a1',
                childrenIds: [],
                role: 'assistant',
                content: 'Hey.',
                model: 'llama3:8b',
                timestamp: 1_700_000_020,
              },
            },
          },
        },
      },
    ];
    const fromWebui = await alice.post('/api/ui/import', webui);
    expect(fromWebui.json).toMatchObject({ format: 'open-webui', imported: 1 });
    const got = await alice.get(`/api/ui/conversations/${fromWebui.json.conversations[0].id}`);
    expect(got.json.conversation).toMatchObject({
      title: 'From Open WebUI',
      model: 'llama3:8b',
      systemPrompt: 'Be brief.',
    });
    expect(got.json.conversation.params).toEqual({ temperature: 0.3 });
    expect(got.json.messages.map((m: Json) => m.content)).toEqual(['Hi', 'Hello!', 'Hey.']);
    const leaf = got.json.messages.find((m: Json) => m.id === got.json.conversation.currentLeafId);
    expect(leaf.content).toBe('Hey.');

    const junk = await alice.post('/api/ui/import', { hello: 'world' });
    expect(junk.status).toBe(400);
    expect(junk.json.error).toMatch(/neither a hearth export/);
  });

  it('shows a user only their own conversations, in the list, by id, in search and export', async () => {
    const mine = await alice.get('/api/ui/conversations?limit=500');
    const theirs = await bob.get('/api/ui/conversations');
    expect(theirs.json.conversations).toEqual([]);
    const id = mine.json.conversations[0].id;
    expect((await bob.get(`/api/ui/conversations/${id}`)).status).toBe(404);
    expect((await bob.get(`/api/ui/conversations/${id}/export`)).status).toBe(404);
    expect((await bob.patch(`/api/ui/conversations/${id}`, { title: 'mine now' })).status).toBe(404);
    expect((await bob.delete(`/api/ui/conversations/${id}`)).status).toBe(404);
    expect((await bob.reply(id, { parentId: null, content: 'hi' })).status).toBe(404);
    expect((await bob.get('/api/ui/search?q=hello')).json.results).toEqual([]);
    expect((await bob.get('/api/ui/export')).json.conversations).toEqual([]);
  });
});

describe('titles', () => {
  it('asks the model for a title in the background, cleaned to one short line, and never over a person’s', async () => {
    expect(titleFromReply('"Sourdough Starter Basics."\nMore text')).toBe('Sourdough Starter Basics');
    expect(titleFromReply('Title: **Fixing a leaky tap**')).toBe('Fixing a leaky tap');
    expect(titleFromReply('\n\n  ?!  \n')).toBeNull();
    const { ctx } = hearth;
    // The test model writes noise, with no words to keep: the real engine runs, and its reply is replaced by
    // what a real model might write, so the cleaning and storing of a generated title are seen every time.
    const engine: typeof ctx.engine = Object.create(ctx.engine);
    engine.generate = async (req) => ({
      ...(await ctx.engine.generate(req)),
      text: '"Baking Bread at Home."\nIt is easy.',
    });
    const writer = new TitleWriter({
      conversations: ctx.chat.conversations,
      inference: ctx.inference,
      engine,
      log: ctx.log,
      generate: true,
    });
    const user = (await alice.get('/api/ui/session')).json.user;
    const auto = await ctx.chat.conversations.create(user.id, {});
    const named = await ctx.chat.conversations.create(user.id, { title: 'Mine' });
    writer.generateLater(auto.id, 'chat', 'How do I bake bread?', 'Mix flour, water, salt and yeast.');
    writer.generateLater(named.id, 'chat', 'How do I bake bread?', 'Mix flour, water, salt and yeast.');
    await writer.settled(); // close() would abort the titles still being written
    await writer.close();
    const titled = await ctx.chat.conversations.get(user.id, auto.id);
    expect(titled).toMatchObject({ titleSource: 'generated', title: 'Baking Bread at Home' });
    expect((await ctx.chat.conversations.get(user.id, named.id)).title).toBe('Mine');
  });
});

describe('presets', () => {
  it('keeps a user’s presets private and lets only admins share', async () => {
    const own = await bob.post('/api/ui/presets', {
      name: 'Terse',
      model: 'chat:latest',
      systemPrompt: 'Be terse.',
      params: { temperature: 0.2 },
    });
    expect(own.status, own.text).toBe(201);
    expect((await bob.post('/api/ui/presets', { name: 'For all', shared: true })).status).toBe(403);
    const shared = await alice.post('/api/ui/presets', { name: 'House style', systemPrompt: 'Be kind.', shared: true });
    expect(shared.status).toBe(201);
    const bad = await alice.post('/api/ui/presets', { name: 'Broken', params: { temperature: 'hot' } });
    expect(bad.status).toBe(400);

    expect((await bob.get('/api/ui/presets')).json.presets.map((p: Json) => [p.name, p.editable])).toEqual([
      ['House style', false],
      ['Terse', true],
    ]);
    expect((await alice.get('/api/ui/presets')).json.presets.map((p: Json) => p.name)).toEqual(['House style']);
    expect((await bob.delete(`/api/ui/presets/${shared.json.preset.id}`)).status).toBe(404);
  });

  it('keeps preset names unique among the presets a person sees (409, saying so)', async () => {
    const dup = await bob.post('/api/ui/presets', { name: 'terse' });
    expect(dup.status).toBe(409);
    expect(dup.json.error).toMatch(/a preset named "Terse" already exists/);
    // A shared preset's name is taken for everyone who sees it.
    expect((await bob.post('/api/ui/presets', { name: 'HOUSE STYLE' })).status).toBe(409);
    const other = await bob.post('/api/ui/presets', { name: 'Chatty' });
    expect(other.status).toBe(201);
    const rename = await bob.patch(`/api/ui/presets/${other.json.preset.id}`, { name: 'Terse' });
    expect(rename.status).toBe(409);
    // Keeping its own name is no conflict.
    expect((await bob.patch(`/api/ui/presets/${other.json.preset.id}`, { name: 'Chatty', params: {} })).status).toBe(
      200,
    );
  });
});

/** A conversation's tree without ids or times: roles, text and the parent's position. */
function shape(data: { conversation: Json; messages: Json[] }) {
  const index = new Map(data.messages.map((m, i) => [m.id, i]));
  return {
    model: data.conversation.model,
    params: data.conversation.params,
    leaf: index.get(data.conversation.currentLeafId),
    messages: data.messages.map((m) => ({
      parent: m.parentId === null ? null : index.get(m.parentId),
      role: m.role,
      content: m.content,
      status: m.status,
    })),
  };
}

describe('replies that keep going', () => {
  it('keeps writing a reply after the browser goes away, and lets two followers re-attach from an offset', async () => {
    const id = await newChat(alice, LONG.params);
    const cut = new AbortController();
    let assistantId = '';
    let seen = '';
    await alice
      .reply(
        id,
        { parentId: null, content: LONG.prompt },
        (e) => {
          if (e.type === 'message' && e.message.role === 'assistant') assistantId = e.message.id;
          if (e.type === 'text') seen += e.text;
          if (seen.length > 20) cut.abort();
        },
        cut.signal,
      )
      .catch(() => undefined);
    expect(assistantId).not.toBe('');
    // The sidebar marks the chat while its reply is written.
    const list = await alice.get('/api/ui/conversations');
    expect(list.json.conversations.find((c: Json) => c.id === id)).toMatchObject({ streaming: true });

    // Two tabs re-attach where their text ends; both get the rest, and the same final message.
    const from = seen.length;
    const [a, b] = await Promise.all([alice.follow(id, assistantId, from), alice.follow(id, assistantId, 0)]);
    expect(a.status).toBe(200);
    const final = a.events.at(-1);
    expect(final.type).toBe('done');
    expect(final.message).toMatchObject({ id: assistantId, status: 'done' });
    expect(final.message.content.length).toBeGreaterThan(from + 100);
    const textOf = (events: Json[]) =>
      events
        .filter((e) => e.type === 'text')
        .map((e) => e.text)
        .join('');
    expect(seen + textOf(a.events)).toBe(final.message.content);
    expect(textOf(b.events)).toBe(final.message.content);
    expect(b.events.at(-1)).toEqual(final);

    // Finished: following answers at once with what is left and the final message.
    const late = await alice.follow(id, assistantId, 10);
    expect(late.events).toEqual([
      { type: 'text', text: final.message.content.slice(10) },
      {
        type: 'done',
        message: expect.objectContaining({ id: assistantId, status: 'done', content: final.message.content }),
      },
    ]);
    const saved = await alice.get(`/api/ui/conversations/${id}`);
    expect(saved.json.messages.find((m: Json) => m.id === assistantId)).toMatchObject({
      status: 'done',
      content: final.message.content,
    });
    expect((await alice.get('/api/ui/conversations')).json.conversations.find((c: Json) => c.id === id).streaming).toBe(
      false,
    );
    // Another person's reply is not there to follow; a bad offset is a 400.
    expect((await bob.follow(id, assistantId, 0)).status).toBe(404);
    expect((await alice.follow(id, assistantId, -1)).status).toBe(400);
  });

  it('follows a reply written by another node through Atlas, within a second of each write', async () => {
    // A context of 2048 (not the file's 512): llama-server writes 512 tokens of the tiny model in well
    // under a second, too quick for the several writes to Atlas this follows.
    const id = await newChat(alice, { ...LONG.params, num_ctx: 2048 });
    const { chat, inference, engine } = hearth.ctx;
    // A second node's reply service on the same Atlas: it writes nothing, so it follows from the database,
    // woken by the writer's notifications (PGlite's in-process LISTEN/NOTIFY): its poll is too slow to matter.
    const elsewhere = new ChatReplies({
      conversations: chat.conversations,
      inference,
      engine,
      titles: chat.titles,
      log: silentLogger(),
      nodeId: 'another-node',
      followPollMs: 60_000,
    });
    let assistantId = '';
    let followed: Promise<Json> | undefined;
    const arrivals: number[] = [];
    const [user] = (await chat.users.list()).filter((u) => u.username === 'alice');
    if (!user) throw new Error('alice is missing');
    const writing = alice.reply(id, { parentId: null, content: LONG.prompt }, (e) => {
      if (e.type === 'message' && e.message.role === 'assistant') {
        assistantId = e.message.id;
        let text = '';
        followed = elsewhere
          .follow(user.id, id, assistantId, 0, {
            text: (t) => {
              text += t;
              arrivals.push(Date.now());
            },
          })
          .then((final) => ({ final, text }));
      }
    });
    const { events } = await writing;
    const { final, text } = await followed!;
    const written = events.at(-1).message;
    expect(final).toMatchObject({ id: assistantId, status: 'done', content: written.content });
    // Streamed text arrives in many steps (one per write to Atlas), and adds up to what is saved
    // (up to the last write; the final message carries the rest).
    expect(arrivals.length).toBeGreaterThan(3);
    expect(written.content.startsWith(text)).toBe(true);
    expect(elsewhere.followWakes.polled).toBe(0);
    expect(elsewhere.followWakes.notified).toBeGreaterThanOrEqual(arrivals.length - 1);
  });

  it('marks a reply whose node stopped renewing its lease as interrupted, text kept', async () => {
    const id = await newChat(alice);
    const orphan = await orphanReply(hearth.ctx.chat.conversations, id, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const saved = await alice.get(`/api/ui/conversations/${id}`);
    expect(saved.json.messages.find((m: Json) => m.id === orphan.id)).toMatchObject({
      status: 'interrupted',
      content: 'half a rep',
      error: expect.stringMatching(/stopped answering/),
    });
    const followed = await alice.follow(id, orphan.id, 5);
    expect(followed.events).toEqual([
      { type: 'text', text: 'a rep' },
      { type: 'done', message: expect.objectContaining({ status: 'interrupted', content: 'half a rep' }) },
    ]);
  });
});
