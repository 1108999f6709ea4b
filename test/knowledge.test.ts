// Knowledge bases end to end, in process, on the embedded Atlas (PGlite) and on a real PostgreSQL: uploads
// (added, duplicate, refused with reasons), ingestion as a job, hybrid retrieval, the index cache rebuilt
// after a wipe, deletion, visibility for API keys, and the chat extension. The embedding model is
// generated (random weights), so retrieval quality is not what is tested: the machinery is.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docx } from './support/docx.js';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  REPO_ROOT,
  startHearthInProcess,
} from './support/hearth.js';
import { call, createModel, finished, putFile, waitForJob } from './support/jobs.js';
import { makeTestModels } from './support/models.js';
import { imageOnlyPdf, textPdf } from './support/pdf.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';
import { UiClient } from './support/ui-client.js';

const GUIDE = `# Hearth guide

Hearth serves local models to the house.

## Storage

Everything that matters lives on Atlas: the quokka marmalade ledger, conversations and models.

## Network

Zones and listeners decide who may reach which service.
`;

async function upload(base: string, path: string, files: Array<{ name: string; bytes: Buffer | string }>) {
  const form = new FormData();
  for (const f of files) form.append('file', new Blob([f.bytes]), f.name);
  const res = await fetch(`${base}${path}`, { method: 'POST', body: form });
  return { status: res.status, json: (await res.json()) as any };
}

/** Runs the built CLI (dist/, as `npm test` builds it) against a server. */
function hearthCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'hearth.js'), ...args], {
      env: { PATH: process.env['PATH'] ?? '', NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function scenario(name: string, database: () => Promise<{ url: string; drop(): Promise<void> } | null>) {
  describe(name, () => {
    let dirs: HearthDirs;
    let hearth: InProcessHearth;
    let base: string;
    let dropDatabase: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      dirs = await hearthDirs('hearth-knowledge-');
      await mkdir(join(dirs.root, 'models'), { recursive: true });
      const models = await makeTestModels(join(dirs.root, 'models'));
      const db = await database();
      dropDatabase = db?.drop;
      hearth = await startHearthInProcess(dirs, {
        ...(db ? { atlas: { files: dirs.atlas, database: db.url } } : {}),
        inference: { numCtx: 1024 },
        jobs: { pollInterval: '200ms' },
        knowledge: { maxFileSize: '64KiB', chunkTokens: 48, chunkOverlap: 8, embeddingModel: 'embed', topK: 3 },
      });
      base = hearth.url;
      await createModel(base, 'embed', models.embed);
      await createModel(base, 'chat', models.chat);
    });

    afterAll(async () => {
      await hearth?.close();
      await dropDatabase?.();
      await dirs?.cleanup();
    });

    it('ingests an upload as a job; identical bytes are a no-op; bad files get their own reasons', async () => {
      const created = await call(base, '/api/knowledge', { name: 'manuals', description: 'the house manuals' });
      expect(created.status).toBe(201);
      expect(created.json).toMatchObject({
        name: 'manuals',
        sharing: 'shared',
        embedding_model: 'embed',
        owner_id: null,
      });

      const up = await upload(base, '/api/knowledge/manuals/documents', [
        { name: 'guide.md', bytes: GUIDE },
        { name: 'notes.txt', bytes: 'Short notes about backups.\n\nAnother paragraph about restores.' },
        { name: 'printed.pdf', bytes: textPdf([['The boiler manual says: bleed the radiators in October.']]) },
        { name: 'scan.pdf', bytes: imageOnlyPdf() },
        {
          name: 'cellar.docx',
          bytes: docx([{ text: 'Cellar', heading: 1 }, { text: 'The water meter is behind the wine rack.' }]),
        },
        { name: 'broken.docx', bytes: Buffer.from('PK\u0003\u0004 not really a zip') },
        { name: 'photo.jpg', bytes: Buffer.from([0xff, 0xd8, 0xff]) },
        { name: 'huge.txt', bytes: 'x'.repeat(70 * 1024) },
      ]);
      expect(up.status).toBe(202);
      const byName = Object.fromEntries(up.json.files.map((f: any) => [f.name, f]));
      expect(byName['guide.md'].status).toBe('added');
      expect(byName['photo.jpg']).toMatchObject({ status: 'refused' });
      expect(byName['photo.jpg'].error).toMatch(/\.jpg files are not supported; knowledge bases read text, Markdown/);
      expect(byName['huge.txt'].error).toMatch(
        /huge\.txt: is 71\.7 KB, over the 65\.5 KB limit for documents \(knowledge\.maxFileSize\)/,
      );

      const job = await waitForJob(base, up.json.job, finished);
      expect(job).toMatchObject({ type: 'knowledge', state: 'succeeded', manifest: null });
      expect(job.progress).toMatchObject({ shards_total: 6, shards_committed: 6, records_ok: 4, records_failed: 2 });

      const docs = (await call(base, '/api/knowledge/manuals/documents')).json.documents;
      const state = Object.fromEntries(docs.map((d: any) => [d.name, d]));
      expect(state['guide.md']).toMatchObject({ state: 'ready', media_type: 'text/markdown' });
      expect(state['guide.md'].chunks).toBeGreaterThan(1);
      expect(state['printed.pdf']).toMatchObject({ state: 'ready', chunks: 1 });
      expect(state['scan.pdf'].state).toBe('failed');
      expect(state['scan.pdf'].error).toMatch(/scan\.pdf: the PDF has no text layer/);
      expect(state['cellar.docx']).toMatchObject({ state: 'ready', chunks: 1 });
      const cellar = await call(base, '/api/knowledge/manuals/query', { query: 'water meter wine rack', limit: 1 });
      expect(cellar.json.results[0]).toMatchObject({ heading: 'Cellar', document: { name: 'cellar.docx' } });
      expect(state['broken.docx'].state).toBe('failed');
      expect(state['broken.docx'].error).toMatch(
        /^broken\.docx: is not a readable Word document \(.+\): check the file/,
      );
      // The original is on Atlas files, named by its sha256.
      expect(existsSync(join(dirs.atlas, state['guide.md'].file_key))).toBe(true);

      const again = await upload(base, '/api/knowledge/manuals/documents', [
        { name: 'copy-of-guide.md', bytes: GUIDE },
      ]);
      expect(again.status).toBe(200);
      expect(again.json).toEqual({
        job: null,
        files: [{ name: 'copy-of-guide.md', status: 'duplicate', document: state['guide.md'].id }],
      });
      expect((await call(base, '/api/knowledge/manuals/documents')).json.documents.length).toBe(6);
    });

    it('ranks first, through the full-text side, the chunk whose words the query holds', async () => {
      const reply = await call(base, '/api/knowledge/manuals/query', { query: 'quokka marmalade ledger', limit: 3 });
      expect(reply.status).toBe(200);
      const [top] = reply.json.results;
      expect(top.text).toContain('quokka marmalade ledger');
      expect(top).toMatchObject({ text_rank: 1, heading: 'Hearth guide > Storage', document: { name: 'guide.md' } });
      expect(top.score).toBeGreaterThanOrEqual(1 / 61);
    });

    it('rebuilds the vector index from Atlas after the node cache is wiped, with the same results', async () => {
      const ask = async (mode: string) =>
        (await call(base, '/api/knowledge/manuals/query', { query: 'radiators backups network', limit: 5, mode })).json
          .results;
      const before = [await ask('exact'), await ask('indexed')];
      const rebuilds = hearth.ctx.knowledge.index.rebuilds;
      await rm(join(dirs.cache, 'knowledge'), { recursive: true, force: true });
      hearth.ctx.knowledge.index.forget();
      const after = [await ask('exact'), await ask('indexed')];
      expect(after).toEqual(before);
      expect(before[0].some((r: any) => r.vector_rank !== null)).toBe(true);
      expect(hearth.ctx.knowledge.index.rebuilds).toBe(rebuilds + 1);
      expect(existsSync(join(dirs.cache, 'knowledge'))).toBe(true);
    });

    it('registers an Atlas folder in place', async () => {
      await putFile(base, 'house/docs/heating.md', '# Heating\n\nThe thermostat lives in the hall.');
      await putFile(base, 'house/docs/tools/list.txt', 'Hammer, drill, level.');
      await call(base, '/api/knowledge', { name: 'house' });
      const added = await call(base, '/api/knowledge/house/documents', { folder: 'house/docs' });
      expect(added.status).toBe(202);
      expect(added.json.files.map((f: any) => [f.name, f.status])).toEqual([
        ['heating.md', 'added'],
        ['tools/list.txt', 'added'],
      ]);
      await waitForJob(base, added.json.job, finished);
      const docs = (await call(base, '/api/knowledge/house/documents')).json.documents;
      expect(docs.map((d: any) => [d.file_key, d.state])).toEqual([
        ['house/docs/heating.md', 'ready'],
        ['house/docs/tools/list.txt', 'ready'],
      ]);
    });

    it('answers a chat with numbered citations from the attached bases (OpenAI and Ollama shapes, streamed or not)', async () => {
      const openai = await call(base, '/v1/chat/completions', {
        model: 'chat',
        messages: [{ role: 'user', content: 'Where is the quokka marmalade ledger?' }],
        max_tokens: 4,
        knowledge: ['manuals'],
      });
      expect(openai.status).toBe(200);
      const citations = openai.json.hearth.citations;
      expect(citations[0]).toMatchObject({ n: 1, base: 'manuals', document: 'guide.md' });
      expect(citations[0].text).toContain('quokka marmalade ledger');

      const ollama = await call(base, '/api/chat', {
        model: 'chat',
        messages: [{ role: 'user', content: 'thermostat hall' }],
        stream: false,
        options: { num_predict: 4 },
        knowledge: ['house'],
      });
      expect(ollama.status).toBe(200);
      expect(ollama.json.hearth.citations[0]).toMatchObject({ n: 1, base: 'house', document: 'heating.md' });

      // Streamed: the OpenAI stream's first chunk (no choices) and /api/chat's last line carry the citations.
      const sse = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'chat',
          messages: [{ role: 'user', content: 'Where is the quokka marmalade ledger?' }],
          max_tokens: 4,
          stream: true,
          knowledge: ['manuals'],
        }),
      });
      expect(sse.status).toBe(200);
      const events = (await sse.text())
        .split('\n')
        .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
        .map((l) => JSON.parse(l.slice(6)));
      expect(events[0]).toMatchObject({ object: 'chat.completion.chunk', choices: [] });
      expect(events[0].hearth.citations).toEqual(citations);
      expect(events.slice(1).every((e: any) => e.hearth === undefined && e.choices.length === 1)).toBe(true);

      const ndjson = await fetch(`${base}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'chat',
          messages: [{ role: 'user', content: 'thermostat hall' }],
          options: { num_predict: 4 },
          knowledge: ['house'],
        }),
      });
      const lines = (await ndjson.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.at(-1)).toMatchObject({ done: true });
      expect(lines.at(-1).hearth.citations).toEqual(ollama.json.hearth.citations);
      expect(lines.slice(0, -1).every((l: any) => l.hearth === undefined && l.done === false)).toBe(true);

      const unknown = await call(base, '/v1/chat/completions', {
        model: 'chat',
        messages: [{ role: 'user', content: 'hi' }],
        knowledge: ['nope'],
      });
      expect(unknown.status).toBe(404);
      expect(unknown.json.error.message).toMatch(/knowledge base "nope" not found/);
    });

    it('shows API keys only shared bases, and refuses malformed requests with precise messages', async () => {
      const owner = await hearth.ctx.chat.users.create({ username: `kb-owner-${name.length}`, password: 'pw-123456' });
      await hearth.ctx.knowledge.create({ userId: owner.id }, { name: 'diary' });
      const listed = (await call(base, '/api/knowledge')).json.bases.map((b: any) => b.name);
      expect(listed).toEqual(['house', 'manuals']);
      expect((await call(base, '/api/knowledge/diary')).status).toBe(404);

      const bad = await call(base, '/api/knowledge', { name: '../etc' });
      expect(bad.status).toBe(400);
      expect(bad.json.error).toMatch(/name "\.\.\/etc" is not valid/);
      const dup = await call(base, '/api/knowledge', { name: 'manuals' });
      expect(dup.status).toBe(409);
      const privateByKey = await call(base, '/api/knowledge', { name: 'mine', sharing: 'private' });
      expect(privateByKey.status).toBe(400);
      expect(privateByKey.json.error).toMatch(/must be shared/);
      const notEmbedding = await call(base, '/api/knowledge', { name: 'x', embedding_model: 'missing-model' });
      expect(notEmbedding.status).toBe(404);
      const emptyQuery = await call(base, '/api/knowledge/manuals/query', { query: '' });
      expect(emptyQuery.status).toBe(400);
      const noName = await fetch(`${base}/api/knowledge/manuals/documents`, { method: 'POST', body: 'raw bytes' });
      expect(noName.status).toBe(400);
    });

    it('works from the CLI: kb create, add (with progress), ls, query, rm', async () => {
      const env = { HEARTH_HOST: base, HOME: dirs.home };
      const file = join(dirs.root, 'pantry.md');
      await writeFile(file, '# Pantry\n\nThe saffron jar sits behind the lentils.\n');
      expect((await hearthCli(['kb', 'create', 'cli-kb', '-m', 'embed'], env)).stdout).toMatch(
        /created knowledge base cli-kb/,
      );
      const added = await hearthCli(['kb', 'add', 'cli-kb', file, join(dirs.root, 'missing.bin')], env);
      expect(added.code).toBe(1);
      expect(added.stderr).toMatch(/missing\.bin/);
      const ok = await hearthCli(['kb', 'add', 'cli-kb', file], env);
      expect(ok.code).toBe(0);
      expect(ok.stderr).toMatch(/pantry\.md: added/);
      expect(ok.stderr).toMatch(/ingesting .* 1\/1 documents/);
      expect((await hearthCli(['kb', 'ls', 'cli-kb'], env)).stdout).toMatch(/pantry\.md\s+\S+ B\s+ready\s+1/);
      const query = await hearthCli(['kb', 'query', 'cli-kb', 'saffron', 'jar'], env);
      expect(query.stdout).toMatch(/^\[1\] pantry\.md › Pantry/);
      expect(query.stdout).toContain('The saffron jar sits behind the lentils.');
      expect((await hearthCli(['kb', 'rm', 'cli-kb'], env)).stdout).toMatch(/deleted knowledge base cli-kb/);
      const gone = await hearthCli(['kb', 'query', 'cli-kb', 'saffron'], env);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toMatch(/hearth: knowledge base "cli-kb" not found/);
    }, 300_000);

    it("answers from a preset's bases in a chat the preset is applied to, without #tags", async () => {
      const alice = new UiClient(base);
      await hearth.ctx.chat.users.create({ username: 'alice', password: 'correct horse' });
      expect((await alice.login('alice', 'correct horse')).status).toBe(200);
      const unknown = await alice.post('/api/ui/presets', { name: 'Lost', knowledge: ['nope'] });
      expect(unknown.status).toBe(404);
      expect(unknown.json.error).toMatch(/knowledge base "nope" not found/);
      const preset = await alice.post('/api/ui/presets', {
        name: 'House manuals',
        model: 'chat',
        knowledge: ['manuals'],
      });
      expect(preset.status, preset.text).toBe(201);
      expect(preset.json.preset.knowledge).toEqual(['manuals']);
      // Applying the preset (what the chat settings do): its model, prompt, parameters and bases.
      const created = await alice.post('/api/ui/conversations', { model: 'chat', params: { num_predict: 4 } });
      const id = created.json.conversation.id;
      expect(created.json.conversation.knowledge).toEqual([]);
      const applied = await alice.patch(`/api/ui/conversations/${id}`, {
        model: preset.json.preset.model,
        knowledge: preset.json.preset.knowledge,
      });
      expect(applied.json.conversation.knowledge).toEqual(['manuals']);
      const answer = await alice.reply(id, { parentId: null, content: 'Where is the quokka marmalade ledger?' });
      const reply = answer.events.at(-1).message;
      expect(reply.status).toBe('done');
      expect(reply.stats.sources[0]).toMatchObject({ n: 1, base: 'manuals', document: 'guide.md' });
      expect(reply.stats.sources[0].text).toContain('quokka marmalade ledger');
      // Stored on Atlas: a reload shows the same bases and sources.
      const reloaded = await alice.get(`/api/ui/conversations/${id}`);
      expect(reloaded.json.conversation.knowledge).toEqual(['manuals']);
      expect(reloaded.json.messages.at(-1).stats.sources).toEqual(reply.stats.sources);

      // An export carries the chat's bases and each reply's sources; importing it restores both.
      const exported = await alice.get(`/api/ui/conversations/${id}/export`);
      const [chat] = exported.json.conversations;
      expect(chat.knowledge).toEqual(['manuals']);
      expect(chat.messages.at(-1).stats.sources).toEqual(reply.stats.sources);
      const imported = await alice.post('/api/ui/import', exported.json);
      expect(imported.status, imported.text).toBe(200);
      const copy = await alice.get(`/api/ui/conversations/${imported.json.conversations[0].id}`);
      expect(copy.json.conversation.knowledge).toEqual(['manuals']);
      expect(copy.json.messages.at(-1).stats.sources).toEqual(reply.stats.sources);
      const markdown = await alice.call('GET', `/api/ui/conversations/${id}/export?format=md`);
      expect(markdown.text).toMatch(/### Sources\n\n\[1\] guide\.md › [^\n]*Storage \(manuals\)\n\n> /);
      expect(markdown.text).toContain('quokka marmalade ledger');
      // A malformed source is refused with where it is; nothing is imported.
      const broken = structuredClone(exported.json);
      broken.conversations[0].messages.at(-1).stats.sources[0].text = 42;
      const refused = await alice.post('/api/ui/import', broken);
      expect(refused.status).toBe(400);
      expect(refused.json.error).toMatch(
        /not a valid hearth export at conversations\.0\.messages\.\d+\.stats\.sources\.0\.text/,
      );
      expect((await alice.get('/api/ui/conversations')).json.conversations).toHaveLength(2);

      // Open WebUI's sources (one number per source, its passages joined) come over too.
      const webui = await alice.post('/api/ui/import', {
        title: 'From Open WebUI',
        history: {
          currentId: 'b',
          messages: {
            a: { id: 'a', parentId: null, role: 'user', content: 'Where is it?', timestamp: 1_700_000_000 },
            b: {
              id: 'b',
              parentId: 'a',
              role: 'assistant',
              content: 'In the pantry [1].',
              timestamp: 1_700_000_010,
              sources: [
                {
                  source: { id: 'kb1', name: 'house', type: 'collection' },
                  document: ['The jar is in the pantry.', 'Second shelf.'],
                  metadata: [
                    { source: 'pantry.md', name: 'pantry.md', file_id: 'f1' },
                    { source: 'pantry.md', name: 'pantry.md', file_id: 'f1' },
                  ],
                  distances: [0.8, 0.7],
                },
                { source: { name: 'a web search' }, urls: ['https://example.invalid'] },
              ],
            },
          },
        },
      });
      expect(webui.status, webui.text).toBe(200);
      const fromWebui = await alice.get(`/api/ui/conversations/${webui.json.conversations[0].id}`);
      expect(fromWebui.json.messages.at(-1).stats.sources).toEqual([
        {
          n: 1,
          base: 'house',
          document: 'pantry.md',
          document_id: 'f1',
          chunk_id: 0,
          heading: '',
          text: 'The jar is in the pantry.\n\nSecond shelf.',
          score: 0.8,
        },
      ]);
    });

    it('deletes a document with its chunks, and a base with everything it uploaded', async () => {
      const docs = (await call(base, '/api/knowledge/manuals/documents')).json.documents;
      const guide = docs.find((d: any) => d.name === 'guide.md');
      const removed = await call(base, `/api/knowledge/manuals/documents/${guide.id}`, undefined, 'DELETE');
      expect(removed.status).toBe(200);
      const [row] = await hearth.ctx.atlas.db.query<{ n: number }>(
        'select count(*)::int as n from knowledge_chunks where document_id = $1',
        [guide.id],
      );
      expect(row!.n).toBe(0);
      expect(existsSync(join(dirs.atlas, guide.file_key))).toBe(false);
      const results = (await call(base, '/api/knowledge/manuals/query', { query: 'quokka marmalade ledger' })).json
        .results;
      expect(results.every((r: any) => r.document.name !== 'guide.md')).toBe(true);

      expect((await call(base, '/api/knowledge/manuals', undefined, 'DELETE')).status).toBe(200);
      expect((await call(base, '/api/knowledge/manuals')).status).toBe(404);
      const [chunks] = await hearth.ctx.atlas.db.query<{ n: number }>(
        `select count(*)::int as n from knowledge_chunks c join knowledge_documents d on d.id = c.document_id
          where d.name = 'notes.txt'`,
      );
      expect(chunks!.n).toBe(0);
      // Files registered in place stay where they were.
      expect(existsSync(join(dirs.atlas, 'house/docs/heating.md'))).toBe(true);
    });
  });
}

scenario('knowledge bases on the embedded Atlas (PGlite)', async () => null);
scenario('knowledge bases on PostgreSQL', () => createTestDatabase(sharedPostgresUrl()));
