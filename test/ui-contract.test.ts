// One contract (docs/ui.md): the UI API's answers are what src/http/ui/contract.ts says (each parsed
// with its schema, from a real hearth on embedded Atlas), a malformed request is refused with the
// message the contract's own schema gives, the contract modules stay free of node code, and web/
// imports them as types only. The compile-time half is the two type checks: every route's answer
// goes through `answer(schema, ...)`, and web/ reads the schemas' types.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as z from 'zod';
import * as knowledge from '../src/http/knowledge/contract.js';
import * as ui from '../src/http/ui/contract.js';
import { parseRequest } from '../src/http/validate.js';
import { generateModel } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { importModel, UiClient, type UiResponse } from './support/ui-client.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

let dirs: HearthDirs;
let hearth: InProcessHearth;
let alice: UiClient;

/** The answer, parsed with its contract schema: a missing field or a wrong type fails with zod's list of them. */
function read<S extends z.ZodType>(schema: S, res: UiResponse, status = 200): z.output<S> {
  expect(res.status, res.text).toBe(status);
  const parsed = schema.safeParse(res.json);
  if (!parsed.success)
    throw new Error(`the answer is not what the contract says: ${parsed.error.message}\n${res.text}`);
  return parsed.data;
}

/** The message parseRequest gives for `value` under `schema`: what the route must answer with. */
function contractMessage(schema: z.ZodType, value: unknown, what?: string): string {
  try {
    parseRequest(schema, value, what);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the value is valid under the schema');
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-ui-contract-');
  hearth = await startHearthInProcess(dirs);
  const made = await generateModel({
    path: join(dirs.root, 'tiny.gguf'),
    seed: 9,
    chatTemplate: 'chatml',
    contextLength: 1024,
    name: 'hearth-test-contract',
  });
  await importModel(hearth.url, 'chat', made.path);
  alice = new UiClient(hearth.url);
  alice.csrf = 'x';
}, 120_000);

afterAll(async () => {
  await hearth?.close();
});

describe('the UI API answers as its contract says', () => {
  it('accounts and sessions', async () => {
    expect(read(ui.sessionAnswer, await alice.get('/api/ui/session'))).toEqual({
      user: null,
      csrfToken: null,
      setupRequired: true,
    });
    const made = read(
      ui.signedInAnswer,
      await alice.post('/api/ui/setup', { username: 'alice', password: 'correct horse' }),
      201,
    );
    expect(made.user).toMatchObject({ username: 'alice', role: 'admin', theme: 'system', defaultModel: null });
    expect(read(ui.sessionAnswer, await alice.get('/api/ui/session')).user?.username).toBe('alice');
    expect(read(ui.userAnswer, await alice.patch('/api/ui/me', { theme: 'dark' })).user.theme).toBe('dark');
    read(ui.userAnswer, await alice.post('/api/ui/users', { username: 'bob', password: 'battery staple' }), 201);
    const users = read(ui.usersAnswer, await alice.get('/api/ui/users')).users;
    expect(users.map((u) => u.username).sort()).toEqual(['alice', 'bob']);
    expect(typeof users.find((u) => u.username === 'alice')?.lastSeenAt).toBe('string');
  });

  it('models, conversations, messages, search and presets', async () => {
    const models = read(ui.modelsAnswer, await alice.get('/api/ui/models'));
    expect(models.models.map((m) => m.name)).toEqual(['chat:latest']);
    expect(models.imageModels).toEqual([]);

    const { conversation } = read(
      ui.conversationAnswer,
      await alice.post('/api/ui/conversations', { title: 'Contract', model: 'chat', params: { temperature: 0.2 } }),
      201,
    );
    read(ui.conversationAnswer, await alice.patch(`/api/ui/conversations/${conversation.id}`, { pinned: true }));

    // Messages without a model run: an imported tree (Open WebUI's shape).
    const imported = read(
      ui.importAnswer,
      await alice.post('/api/ui/import', [
        {
          id: 'w1',
          title: 'Imported hello',
          created_at: 1_700_000_000,
          updated_at: 1_700_000_100,
          chat: {
            models: ['chat'],
            history: {
              currentId: 'b1',
              messages: {
                a1: { id: 'a1', parentId: null, childrenIds: ['b1'], role: 'user', content: 'Hi', timestamp: 1 },
                b1: { id: 'b1', parentId: 'a1', childrenIds: [], role: 'assistant', content: 'Hello!', timestamp: 2 },
              },
            },
          },
        },
      ]),
    );
    const tree = read(
      ui.conversationWithMessages,
      await alice.get(`/api/ui/conversations/${imported.conversations[0]?.id}`),
    );
    expect(tree.messages.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'Hi', 'done'],
      ['assistant', 'Hello!', 'done'],
    ]);

    const page = read(ui.conversationsAnswer, await alice.get('/api/ui/conversations?limit=10'));
    expect(page.conversations.map((c) => c.title)).toEqual(['Contract', 'Imported hello']);
    expect(read(ui.searchAnswer, await alice.get('/api/ui/search?q=hello')).results.map((r) => r.title)).toEqual([
      'Imported hello',
    ]);

    read(ui.presetAnswer, await alice.post('/api/ui/presets', { name: 'Terse', systemPrompt: 'Be brief.' }), 201);
    const presets = read(ui.presetsAnswer, await alice.get('/api/ui/presets')).presets;
    expect(presets.map((p) => [p.name, p.editable])).toEqual([['Terse', true]]);
    read(ui.okAnswer, await alice.delete(`/api/ui/conversations/${conversation.id}`));
    read(ui.conversationAnswer, await alice.post(`/api/ui/conversations/${conversation.id}/restore`));
  });

  it('knowledge and the admin screens', async () => {
    expect(read(knowledge.basesAnswer, await alice.get('/api/ui/knowledge')).bases).toEqual([]);

    const admin = read(ui.adminModelsAnswer, await alice.get('/api/ui/admin/models'));
    expect(admin.models.map((m) => m.name)).toEqual(['chat:latest']);
    expect(read(ui.pullsAnswer, await alice.get('/api/ui/admin/pulls')).pulls).toEqual([]);
    const key = read(
      ui.createdKeyAnswer,
      await alice.post('/api/ui/admin/keys', { name: 'ci', scopes: ['jobs'] }),
      201,
    );
    expect(key.key).toMatch(/^hth_/);
    expect(read(ui.keysAnswer, await alice.get('/api/ui/admin/keys')).keys.map((k) => k.name)).toEqual(['ci']);
    expect(read(ui.jobsAnswer, await alice.get('/api/ui/admin/jobs?limit=50'))).toEqual({ jobs: [], next: null });
    const node = read(ui.nodeAnswer, await alice.get('/api/ui/admin/node'));
    expect(node.node.id).toBe('test-node');
  });
});

describe('the workflow editor’s API answers as the contract says', () => {
  const W = '/api/ui/workflows';
  const textPrompt = (text: string) => ({
    '1': { class_type: 'Text', inputs: { text } },
    '2': { class_type: 'SaveText', inputs: { text: ['1', 0], filename_prefix: 'contract/t' } },
  });

  it('queue, history and gallery', async () => {
    const workflow = { nodes: [], links: [] };
    const queued = read(
      ui.promptAnswer,
      await alice.post(`${W}/prompt`, { prompt: textPrompt('to the contract'), workflow, client: 'tab1' }),
    );
    let entry: ui.HistoryEntry | undefined;
    for (let i = 0; i < 200 && !entry; i++) {
      const one = read(ui.promptHistoryAnswer, await alice.get(`${W}/history/${queued.prompt_id}`));
      const found = one[queued.prompt_id];
      if (found && 'status' in found) entry = found;
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(entry?.status.status_str).toBe('success');
    expect(entry?.outputs['2']?.['text']).toEqual(['to the contract']);
    expect(entry?.prompt[3].extra_pnginfo?.workflow).toEqual(workflow);
    expect(Object.keys(read(ui.historyAnswer, await alice.get(`${W}/history?max_items=10`)))).toEqual([
      queued.prompt_id,
    ]);
    expect(read(ui.queueAnswer, await alice.get(`${W}/queue`))).toEqual({ queue_running: [], queue_pending: [] });
    expect(read(ui.interruptAnswer, await alice.post(`${W}/interrupt`, {}))).toEqual({ interrupted: 0 });
    expect(read(ui.clearQueueAnswer, await alice.post(`${W}/queue/clear`, {}))).toEqual({ removed: 0 });
    const gallery = read(ui.galleryAnswer, await alice.get(`${W}/gallery`));
    expect(gallery.items.map((i) => [i.promptId, i.kind, i.classType, i.workflow])).toEqual([
      [queued.prompt_id, 'text', 'SaveText', workflow],
    ]);
    const { filename, subfolder } = gallery.items[0]!;
    const query = `filename=${encodeURIComponent(filename)}&subfolder=${encodeURIComponent(subfolder)}&type=output`;
    expect(read(ui.okAnswer, await alice.delete(`${W}/gallery?${query}`))).toEqual({ ok: true });

    const refused = read(
      ui.promptRefusedAnswer,
      await alice.post(`${W}/prompt`, { prompt: { '1': { class_type: 'NoSuchNode', inputs: {} } } }),
      400,
    );
    expect(refused.error).toMatch(/NoSuchNode/);
  });

  it('saved workflows', async () => {
    const workflow = { nodes: [{ id: 1 }], links: [] };
    expect(read(ui.savedPutAnswer, await alice.call('PUT', `${W}/saved/first`, { workflow })).name).toBe('first');
    expect(read(ui.savedWorkflowsAnswer, await alice.get(`${W}/saved`)).workflows.map((w) => w.name)).toEqual([
      'first',
    ]);
    expect(read(ui.savedWorkflowAnswer, await alice.get(`${W}/saved/first`)).workflow).toEqual(workflow);
    expect(read(ui.renamedAnswer, await alice.post(`${W}/saved/first/rename`, { name: 'second' }))).toEqual({
      name: 'second',
    });
    expect(read(ui.okAnswer, await alice.delete(`${W}/saved/second`))).toEqual({ ok: true });
  });
});

describe('a malformed request is refused with the contract schema’s own message', () => {
  it.each([
    ['POST', '/api/ui/conversations', ui.conversationInit, { title: 7, knowledge: 'docs' }],
    ['POST', '/api/ui/presets', ui.presetBody, { name: '', shared: 'yes' }],
    ['PATCH', '/api/ui/me', ui.mePatch, { theme: 'sepia' }],
    ['POST', '/api/ui/conversations/any/images', ui.createImageBody, { model: 'sd', prompt: '', steps: 0 }],
    ['POST', '/api/ui/admin/keys', ui.keyBody, { name: 'k', scopes: ['root'] }],
    ['POST', '/api/ui/knowledge', knowledge.createBaseBody, { name: 'docs', sharing: 'public' }],
  ] as const)('%s %s', async (method, path, schema, body) => {
    const res = await alice.call(method, path, body);
    expect(res.status).toBe(400);
    expect(res.json.error).toBe(contractMessage(schema, body));
  });

  it('names the field and what it must be', async () => {
    const res = await alice.patch('/api/ui/me', { theme: 'sepia' });
    expect(res.json.error).toBe('invalid request body: theme: Invalid option: expected one of "system"|"light"|"dark"');
  });
});

describe('the contract modules', () => {
  const CONTRACTS = ['src/http/ui/contract.ts', 'src/http/knowledge/contract.ts'];

  it('import zod and import-free vocabulary leaves only (web/ type-checks them)', async () => {
    const seen = new Map<string, string[]>();
    const visit = async (file: string) => {
      if (seen.has(file)) return;
      const text = await readFile(join(ROOT, file), 'utf8');
      const specifiers = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1] ?? '');
      seen.set(file, specifiers);
      for (const s of specifiers.filter((x) => x.startsWith('.'))) {
        await visit(relative(ROOT, resolve(ROOT, dirname(file), s.replace(/\.js$/, '.ts'))));
      }
    };
    for (const file of CONTRACTS) await visit(file);
    const outside = [...seen].flatMap(([file, specs]) =>
      specs.filter((s) => !s.startsWith('.') && s !== 'zod').map((s) => `${file} imports ${s}`),
    );
    expect(outside).toEqual([]);
    expect([...seen.keys()].sort()).toEqual([
      'src/chat/sources.ts',
      'src/chat/vocabulary.ts',
      'src/http/knowledge/contract.ts',
      'src/http/openai/images-schema.ts',
      'src/http/ui/contract.ts',
      'src/jobs/spec.ts',
      'src/knowledge/vocabulary.ts',
      'src/net/keys/scopes.ts',
    ]);
  });

  it('reach web/ as types only, and web/ keeps no copies of them', async () => {
    const files = (await readdir(join(ROOT, 'web/src'), { recursive: true })).filter((f) => /\.tsx?$/.test(f));
    const valueImports: string[] = [];
    let typeImports = 0;
    for (const file of files) {
      const text = await readFile(join(ROOT, 'web/src', file), 'utf8');
      for (const m of text.matchAll(/^(import|export)(\s+type)?\s[^;]*?from\s+'@contract\/[^']+'/gms)) {
        if (m[2]) typeImports++;
        else valueImports.push(`web/src/${file}: ${m[0].split('\n')[0]}`);
      }
      // The shapes the contract owns are not declared again in the page.
      for (const name of [
        'User',
        'Message',
        'Conversation',
        'Preset',
        'Pull',
        'Job',
        'ApiKey',
        'KnowledgeBase',
        'HistoryEntry',
        'QueueItem',
        'GalleryItem',
        'NodeErrors',
        'FileRef',
      ]) {
        expect(text, `web/src/${file} declares ${name}`).not.toMatch(
          new RegExp(`^export (interface|type) ${name}\\b`, 'm'),
        );
      }
    }
    expect(valueImports).toEqual([]);
    expect(typeImports).toBeGreaterThanOrEqual(4);
  });
});
