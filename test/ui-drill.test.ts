// The rebuild drill for the chat UI: SIGKILL `hearth serve` while a reply streams, wipe the node
// cache, start again: the session still works, the conversation is intact, and the reply that was
// cut keeps the text written until its last flush (at most about 250 ms behind).
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, type HearthProcess, hearthDirs, startHearthProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';
import { importModel, type Json, LONG, UiClient } from './support/ui-client.js';

let dirs: HearthDirs;
let running: HearthProcess | undefined;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-ui-drill-');
}, 300_000); // a fresh embedded Atlas: slow on a busy 2-core machine
afterAll(async () => {
  await running?.stop('SIGKILL');
  await dirs?.cleanup();
});

describe('chat UI rebuild drill', () => {
  it('keeps sessions, conversations and the text of a reply cut by SIGKILL', async () => {
    await mkdir(join(dirs.root, 'models'), { recursive: true });
    const models = await makeTestModels(join(dirs.root, 'models'));
    running = await startHearthProcess({ dirs, env: { HEARTH_UI_GENERATE_TITLES: 'false' } });
    const alice = new UiClient(running.url);
    alice.csrf = 'x';
    expect((await alice.post('/api/ui/setup', { username: 'alice', password: 'correct horse' })).status).toBe(201);
    await importModel(running.url, 'chat', models.chat, { parameters: LONG.params });
    const id = (await alice.post('/api/ui/conversations', { model: 'chat' })).json.conversation.id;

    const first = await alice.reply(id, { parentId: null, content: 'Hello there' });
    const answered = first.events.at(-1).message;
    expect(answered.status).toBe('done');

    // A long reply: kill the node once more than a second of it has streamed (one flush to Atlas at least).
    let streamed = '';
    let started = 0;
    let killed: Promise<unknown> | undefined;
    await alice
      // A second first message (a branch): the prompt the test model answers at length.
      .reply(id, { parentId: null, content: LONG.prompt }, (e: Json) => {
        if (e.type !== 'text') return;
        streamed += e.text;
        started ||= Date.now();
        if (!killed && Date.now() - started > 1300) killed = running!.stop('SIGKILL');
      })
      .catch(() => undefined);
    expect(killed, 'the reply ended before the kill: the test model should write for about 2 s').toBeDefined();
    await killed;

    await rm(dirs.cache, { recursive: true, force: true });
    running = await startHearthProcess({ dirs, env: { HEARTH_UI_GENERATE_TITLES: 'false' } });
    alice.baseUrl = running.url;

    const session = await alice.get('/api/ui/session');
    expect(session.json.user?.username).toBe('alice');
    const after = await alice.get(`/api/ui/conversations/${id}`);
    expect(after.status).toBe(200);
    const byRole = (role: string) => after.json.messages.filter((m: Json) => m.role === role);
    expect(byRole('user').map((m: Json) => m.content)).toEqual(['Hello there', LONG.prompt]);
    const [done, cut] = byRole('assistant');
    expect(done).toMatchObject({ status: 'done', content: answered.content });
    expect(cut.status).toBe('interrupted');
    expect(cut.error).toMatch(/restarted while writing this reply/);
    expect(cut.content.length).toBeGreaterThan(0);
    expect(streamed.startsWith(cut.content)).toBe(true);
    expect(after.json.conversation.currentLeafId).toBe(cut.id);
  }, 180_000); // two server starts and two long replies: slow on a busy 2-core machine
});
