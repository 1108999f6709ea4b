// The admin screens' API (/api/ui/admin) on two in-process nodes sharing one real PostgreSQL Atlas:
// who may call it (the admin role, and a client in adminZones or on loopback), pulls as server-side
// tasks on Atlas (progress seen from the other node, cancel from the other node, a dead node's pull
// marked interrupted), model copy/create/import/keep-alive/unload/delete, API keys, jobs and the node.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { PullTasks } from '../src/models/pull-tasks.js';
import { generateModel } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { call, finished, jsonlDataset, putFile } from './support/jobs.js';
import { createTestDatabase } from './support/postgres.js';
import { type SlowMirror, startSlowMirror } from './support/slow-mirror.js';
import { importModel, type Json, UiClient } from './support/ui-client.js';

let dirs: HearthDirs;
let other: HearthDirs;
let a: InProcessHearth;
let b: InProcessHearth;
let database: { url: string; drop(): Promise<void> };
let mirror: SlowMirror;
let gguf: Buffer;
let ggufPath: string;
let admin: UiClient;
let adminOnB: UiClient;
let bob: UiClient;

const ZONES = {
  zones: { mgmt: ['10.0.99.0/24'], users: ['10.0.30.0/24'] },
  adminZones: ['mgmt'],
  trustedProxies: ['127.0.0.1/32'],
};

async function waitFor<T>(what: string, get: () => Promise<T>, until: (v: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await get();
    if (until(last)) return last;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms; last: ${JSON.stringify(last)}`);
}

const pullOn = async (client: UiClient, id: string): Promise<Json> =>
  (await client.get(`/api/ui/admin/pulls/${id}`)).json.pull;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-ui-admin-');
  other = await hearthDirs('hearth-ui-admin-b-');
  const made = await generateModel({
    path: join(dirs.root, 'tiny.gguf'),
    seed: 5,
    chatTemplate: 'chatml',
    contextLength: 1024,
    name: 'hearth-test-pulled',
  });
  ggufPath = made.path;
  gguf = await readFile(made.path);
  // The file server a house's mirror would be: it sends the GGUF slowly (about 4 s), honouring Range.
  mirror = await startSlowMirror('/files/pulled-model.gguf', gguf, 40);

  const pgAdmin = inject('postgresUrl');
  if (!pgAdmin) throw new Error(`PostgreSQL is not running for the tests: ${inject('postgresUnavailable')}`);
  database = await createTestDatabase(pgAdmin);
  a = await startHearthInProcess(dirs, { atlas: { files: dirs.atlas, database: database.url }, ...ZONES });
  // A second node on the same Atlas (database and files), with its own cache.
  b = await startHearthInProcess(other, {
    atlas: { files: dirs.atlas, database: database.url },
    node: { cacheDir: other.cache, id: 'node-b' },
    ...ZONES,
  });
  await importModel(a.url, 'chat', ggufPath);

  admin = new UiClient(a.url);
  admin.csrf = 'x';
  expect((await admin.post('/api/ui/setup', { username: 'alice', password: 'correct horse' })).status).toBe(201);
  adminOnB = new UiClient(b.url);
  expect((await adminOnB.login('alice', 'correct horse')).status).toBe(200);
  expect((await admin.post('/api/ui/users', { username: 'bob', password: 'bob password', role: 'user' })).status).toBe(
    201,
  );
  bob = new UiClient(a.url);
  expect((await bob.login('bob', 'bob password')).status).toBe(200);
}, 300_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
  await database?.drop();
  await mirror?.close();
  await other?.cleanup();
  await dirs?.cleanup();
});

describe('who may administer from a browser', () => {
  it('refuses a signed-in user without the admin role', async () => {
    const res = await bob.get('/api/ui/admin/models');
    expect(res.status).toBe(403);
    expect(res.json.error).toBe('only an admin may do this');
    expect((await bob.post('/api/ui/admin/pulls', { source: mirror.url })).status).toBe(403);
  });

  it('refuses an admin outside the admin zones and says why; admits the management zone and loopback', async () => {
    const fromUsers = await admin.call('GET', '/api/ui/admin/keys', undefined, { 'x-forwarded-for': '10.0.30.5' });
    expect(fromUsers.status).toBe(403);
    expect(fromUsers.json.error).toContain('open only to the admin zones (loopback, mgmt)');
    expect(fromUsers.json.error).toContain('10.0.30.5 is in zone users');
    const users = await admin.call('GET', '/api/ui/users', undefined, { 'x-forwarded-for': '10.0.30.5' });
    expect(users.status).toBe(403);
    const pull = await admin.call(
      'POST',
      '/api/ui/admin/pulls',
      { source: mirror.url },
      { 'x-forwarded-for': '192.168.1.9' },
    );
    expect(pull.status).toBe(403);
    expect(pull.json.error).toContain('192.168.1.9 is in no admin zone');
    // Chatting from the user zone stays open.
    expect((await admin.call('GET', '/api/ui/models', undefined, { 'x-forwarded-for': '10.0.30.5' })).status).toBe(200);
    const fromMgmt = await admin.call('GET', '/api/ui/admin/keys', undefined, { 'x-forwarded-for': '10.0.99.7' });
    expect(fromMgmt.status, fromMgmt.text).toBe(200);
    expect((await admin.get('/api/ui/admin/keys')).status).toBe(200);
  });
});

describe('pulls are tasks on Atlas', () => {
  let pullId = '';

  it('answers malformed sources precisely', async () => {
    const noFile = await admin.post('/api/ui/admin/pulls', { source: 'hf:owner/repo' });
    expect(noFile.status).toBe(400);
    expect(noFile.json.error).toContain('name the GGUF file');
    const empty = await admin.post('/api/ui/admin/pulls', { source: '  ' });
    expect(empty.status).toBe(400);
    const extra = await admin.post('/api/ui/admin/pulls', { source: 'x', force: true });
    expect(extra.status).toBe(400);
    expect((await admin.get('/api/ui/admin/pulls/nope')).status).toBe(404);
  });

  it('pulls a URL in the background: progress with speed on both nodes, then the model in the picker', async () => {
    const started = await admin.post('/api/ui/admin/pulls', { source: mirror.url });
    expect(started.status, started.text).toBe(202);
    expect(started.json.pull).toMatchObject({ state: 'running', model: 'pulled-model:latest', node: 'test-node' });
    pullId = started.json.pull.id;

    const again = await admin.post('/api/ui/admin/pulls', { source: mirror.url });
    expect(again.status).toBe(409);
    expect(again.json.error).toContain('is being pulled already');

    // The other node, which is not running it, reads the same progress from Atlas.
    const midway = await waitFor(
      'progress with a speed on node b',
      () => pullOn(adminOnB, pullId),
      (p) => p.completed > 0 && p.completed < gguf.length && p.bytesPerSecond > 0,
    );
    expect(midway).toMatchObject({ state: 'running', total: gguf.length });
    expect(midway.status).toMatch(/^pulling /);

    const done = await waitFor(
      'the pull to end',
      () => pullOn(admin, pullId),
      (p) => p.state !== 'running',
    );
    expect(done).toMatchObject({ state: 'done', status: 'success', completed: gguf.length, error: null });
    expect(done.finishedAt).not.toBeNull();

    const picker = await admin.get('/api/ui/models');
    expect(picker.json.models.map((m: Json) => m.name)).toContain('pulled-model:latest');
    const listed = (await admin.get('/api/ui/admin/models')).json.models.find(
      (m: Json) => m.name === 'pulled-model:latest',
    );
    expect(listed).toMatchObject({ size: gguf.length, contextLength: 1024, format: 'gguf' });
    expect(listed.capabilities).toContain('completion');
    expect(listed.quantization).toBeTruthy();
  });

  it('cancels a pull from the node that is not running it', async () => {
    await admin.delete('/api/ui/admin/models?name=pulled-model');
    mirror.setTicks(200); // 20 s: long enough to cancel midway
    const started = await admin.post('/api/ui/admin/pulls', { source: mirror.url });
    expect(started.status, started.text).toBe(202);
    const id = started.json.pull.id;
    await waitFor(
      'first bytes',
      () => pullOn(admin, id),
      (p) => p.completed > 0,
    );
    const cancel = await adminOnB.post(`/api/ui/admin/pulls/${id}/cancel`);
    expect(cancel.status, cancel.text).toBe(200);
    const ended = await waitFor(
      'the cancel to land',
      () => pullOn(adminOnB, id),
      (p) => p.state !== 'running',
      10_000,
    );
    expect(ended.state).toBe('cancelled');
    expect(ended.error).toContain('pull again to resume');
    expect((await admin.get('/api/ui/models')).json.models.map((m: Json) => m.name)).not.toContain(
      'pulled-model:latest',
    );
    mirror.setTicks(40);
  });

  it('marks a pull whose node died interrupted (its lease ran out), and a restarted node its own', async () => {
    const db = a.ctx.atlas.db;
    await db.query(
      `insert into model_pulls (id, source, model, state, status, completed, total, node_id, lease_until)
       values ('dead-1', 'hf:x/y/z.gguf', 'z', 'running', 'pulling z', 10, 100, 'gone-node', now() - interval '1 second'),
              ('mine-1', 'hf:x/y/w.gguf', 'w', 'running', 'pulling w', 10, 100, 'restarted-node', now() + interval '1 hour')`,
    );
    const dead = await pullOn(adminOnB, 'dead-1');
    expect(dead.state).toBe('interrupted');
    expect(dead.error).toContain('stopped answering');
    expect((await pullOn(admin, 'mine-1')).state).toBe('running');
    const restarted = await PullTasks.open({ db, puller: a.ctx.pull, nodeId: 'restarted-node', log: silentLogger() });
    await restarted.close();
    const mine = await pullOn(admin, 'mine-1');
    expect(mine.state).toBe('interrupted');
    expect(mine.error).toContain('restarted');
    const list = (await admin.get('/api/ui/admin/pulls')).json.pulls;
    expect(list.filter((p: Json) => p.state === 'running')).toEqual([]);
  });
});

describe('models', () => {
  it('copies, creates from a Modelfile, imports a GGUF on Atlas in place, and refuses bad input', async () => {
    const copy = await admin.post('/api/ui/admin/models/copy', { source: 'chat', destination: 'chat-copy' });
    expect(copy.status, copy.text).toBe(201);
    const created = await admin.post('/api/ui/admin/models/create', {
      name: 'pirate',
      modelfile: 'FROM chat\nPARAMETER temperature 0.2\nSYSTEM You are a pirate.',
    });
    expect(created.status, created.text).toBe(201);
    await putFile(a.url, 'imports/tiny.gguf', gguf);
    const imported = await admin.post('/api/ui/admin/models/create', {
      name: 'imported',
      atlasPath: 'imports/tiny.gguf',
    });
    expect(imported.status, imported.text).toBe(201);
    const names = (await admin.get('/api/ui/admin/models')).json.models.map((m: Json) => m.name);
    expect(names).toEqual(expect.arrayContaining(['chat-copy:latest', 'pirate:latest', 'imported:latest']));

    const both = await admin.post('/api/ui/admin/models/create', { name: 'x', modelfile: 'FROM chat', atlasPath: 'a' });
    expect(both.status).toBe(400);
    expect(both.json.error).toContain('either modelfile or atlasPath');
    const missing = await admin.post('/api/ui/admin/models/copy', { source: 'nothing', destination: 'y' });
    expect(missing.status).toBe(404);
  });

  it('loads with a keep-alive, shows the model loaded, unloads, and deletes', async () => {
    const keep = await admin.post('/api/ui/admin/models/keep-alive', { name: 'chat-copy', keepAlive: '10m' });
    expect(keep.status, keep.text).toBe(200);
    const loaded = (await admin.get('/api/ui/admin/models')).json.loaded;
    const entry = loaded.find((l: Json) => l.name === 'chat-copy:latest');
    expect(entry.size).toBeGreaterThan(0);
    const left = new Date(entry.expiresAt).getTime() - Date.now();
    expect(left).toBeGreaterThan(8 * 60_000);
    expect(left).toBeLessThanOrEqual(10 * 60_000);
    expect((await admin.post('/api/ui/admin/models/keep-alive', { name: 'chat-copy', keepAlive: 'soon' })).status).toBe(
      400,
    );

    const unload = await admin.post('/api/ui/admin/models/unload', { name: 'chat-copy' });
    expect(unload.json).toEqual({ unloaded: true });
    await waitFor(
      'the unload',
      async () => (await admin.get('/api/ui/admin/models')).json.loaded,
      (l: Json[]) => !l.some((x) => x.name === 'chat-copy:latest'),
      10_000,
    );

    const del = await admin.delete('/api/ui/admin/models?name=chat-copy');
    expect(del.json).toEqual({ deleted: 'chat-copy:latest' });
    expect((await admin.delete('/api/ui/admin/models?name=chat-copy')).status).toBe(404);
    expect((await admin.delete('/api/ui/admin/models')).status).toBe(400);
  });
});

describe('API keys', () => {
  it('creates a key shown once, lists it with its last use, and revokes it', async () => {
    const created = await admin.post('/api/ui/admin/keys', { name: 'n8n', scopes: ['inference'] });
    expect(created.status, created.text).toBe(201);
    expect(created.json.key).toMatch(/^\S{30,}$/);
    expect(created.json.info).toMatchObject({ name: 'n8n', scopes: ['inference'], last_used_at: null });
    const listed = (await admin.get('/api/ui/admin/keys')).json.keys;
    expect(JSON.stringify(listed)).not.toContain(created.json.key);
    expect(listed.find((k: Json) => k.name === 'n8n')).toMatchObject({ revoked_at: null });

    expect((await admin.post('/api/ui/admin/keys', { name: 'n8n', scopes: ['inference'] })).status).toBe(409);
    const badScope = await admin.post('/api/ui/admin/keys', { name: 'x', scopes: ['root'] });
    expect(badScope.status).toBe(400);

    const revoked = await admin.delete('/api/ui/admin/keys/n8n');
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json.revoked.revoked_at).not.toBeNull();
    expect((await admin.delete('/api/ui/admin/keys/nobody')).status).toBe(404);
  });
});

describe('batch jobs', () => {
  it('lists a job, follows it to the end, shows its log and results; cancel and retry say why not', async () => {
    await putFile(a.url, 'datasets/ui.jsonl', jsonlDataset(6));
    const submitted = await call(a.url, '/api/jobs', {
      input: 'datasets/ui.jsonl',
      model: 'chat',
      template: 'Say {{text}}',
      key_field: 'id',
      options: { num_predict: 2, temperature: 0 },
      output: 'results/ui',
    });
    expect(submitted.status, submitted.text).toBe(201);
    const id = submitted.json.id;
    const listed = (await admin.get('/api/ui/admin/jobs')).json;
    expect(listed.jobs.map((j: Json) => j.id)).toContain(id);
    const job = await waitFor(
      'the job to finish',
      async () => (await admin.get(`/api/ui/admin/jobs/${id}`)).json.job,
      finished,
      120_000,
    );
    expect(job.state, job.error).toBe('succeeded');
    expect(job.progress).toMatchObject({ records_total: 6, records_ok: 6 });
    const logs = (await admin.get(`/api/ui/admin/jobs/${id}/logs`)).json.events;
    expect(logs.length).toBeGreaterThan(0);
    const results = (await admin.get(`/api/ui/admin/jobs/${id}/results`)).json;
    expect(results.manifest.counts).toMatchObject({ records: 6, ok: 6 });
    expect(results.preview).toHaveLength(6);
    expect(JSON.parse(results.preview[0]).key).toMatch(/^r000\d$/);
    const cancel = await admin.post(`/api/ui/admin/jobs/${id}/cancel`);
    expect(cancel.status).toBe(409);
    expect((await admin.get('/api/ui/admin/jobs?limit=0')).status).toBe(400);
    expect((await admin.get('/api/ui/admin/jobs/nope')).status).toBe(404);
  });
});

describe('the node', () => {
  it('reports the engine, cache, Atlas health and the exposure doctor prints', async () => {
    const res = await admin.get('/api/ui/admin/node');
    expect(res.status, res.text).toBe(200);
    expect(res.json.node).toMatchObject({ id: 'test-node' });
    expect(['server', 'inprocess']).toContain(res.json.engine.engine);
    expect(res.json.engine.backend).toBeTruthy();
    expect(res.json.cache.maxBytes).toBeGreaterThan(0);
    expect(res.json.atlas.database.ok).toBe(true);
    expect(res.json.atlas.database.detail).toContain('schema current');
    expect(res.json.atlas.files.ok).toBe(true);
    expect(res.json.exposure.report.join('\n')).toContain('listener test: 127.0.0.1:0');
  });
});

describe('a node shutting down', () => {
  it('marks the pulls it runs interrupted, their progress kept', async () => {
    mirror.setTicks(300);
    const started = await adminOnB.post('/api/ui/admin/pulls', { source: mirror.url });
    expect(started.status, started.text).toBe(202);
    const id = started.json.pull.id;
    await waitFor(
      'first bytes',
      () => pullOn(admin, id),
      (p) => p.completed > 0,
    );
    const closing = b;
    b = undefined as unknown as InProcessHearth;
    await closing.close();
    const after = await pullOn(admin, id);
    expect(after).toMatchObject({ state: 'interrupted', node: 'node-b' });
    expect(after.error).toContain('hearth was shut down');
    expect(after.completed).toBeGreaterThan(0);
  });
});
