import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import { HearthError, isHearthError } from '../../errors.js';

/** Where ComfyUI's per-user files live on Atlas (settings, userdata other than workflows). */
const USER_FOLDER = 'comfy/user';
const SETTINGS_KEY = `${USER_FOLDER}/comfy.settings.json`;
/** ComfyUI's model folders; hearth fills `checkpoints` from the library and has none of the others. */
const MODEL_FOLDERS = [
  'checkpoints',
  'loras',
  'vae',
  'text_encoders',
  'diffusion_models',
  'clip_vision',
  'style_models',
  'embeddings',
  'diffusers',
  'vae_approx',
  'controlnet',
  'gligen',
  'upscale_models',
  'hypernetworks',
  'photomaker',
  'classifiers',
];

/** A userdata path from a client: relative, no `..`; 400 otherwise. */
function userPath(raw: string): string {
  let path = raw;
  try {
    path = decodeURIComponent(raw); // clients encode the slashes (workflows%2Fa.json); the router may have already
  } catch {
    // already decoded and holding a bare %: take it as it is
  }
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (path.startsWith('/') || path.includes('\\') || parts.includes('..') || path.includes('\0') || parts.length === 0)
    throw new HearthError('BAD_REQUEST', `userdata path ${JSON.stringify(path)} must be relative, without ..`);
  return parts.join('/');
}

/** `workflows/<name>.json` in userdata is hearth's saved workflow <name>: one store for both. */
function savedWorkflowName(path: string): string | null {
  const m = /^workflows\/(.+)\.json$/.exec(path);
  return m ? m[1]! : null;
}

/**
 * The ComfyUI routes clients probe besides the queue: /free, /settings, /users, /userdata, /models,
 * /features and /internal/logs, in ComfyUI's shapes, stored on Atlas where they store anything.
 */
export function comfyExtras(scope: FastifyInstance, ctx: AppContext): void {
  const wf = ctx.workflows;
  const files = ctx.atlas.files;

  const readJson = async (key: string): Promise<Record<string, unknown>> => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of await files.read(key)) chunks.push(c as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      if (isHearthError(err, 'ATLAS_FILES_NOT_FOUND')) return {};
      throw err;
    }
  };

  scope.post('/free', async (request) => {
    const body = (request.body ?? {}) as { unload_models?: unknown; free_memory?: unknown };
    if (body.unload_models === true || body.free_memory === true) {
      await ctx.images.unloadIdle();
      if (body.unload_models === true) for (const m of ctx.engine.loaded()) await ctx.engine.unload(m.digest);
    }
    return {};
  });

  scope.get('/settings', async () => readJson(SETTINGS_KEY));
  scope.post('/settings', async (request) => {
    const body = request.body;
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new HearthError('BAD_REQUEST', 'send the settings as a JSON object');
    await files.put(SETTINGS_KEY, JSON.stringify({ ...(await readJson(SETTINGS_KEY)), ...body }));
    return {};
  });
  scope.get('/settings/:id', async (request, reply) => {
    const v = (await readJson(SETTINGS_KEY))[(request.params as { id: string }).id];
    // JSON always, as ComfyUI answers (its page parses it): Fastify would send a bare string as text.
    return reply.type('application/json').send(JSON.stringify(v === undefined ? null : v));
  });
  scope.post('/settings/:id', async (request) => {
    const settings = await readJson(SETTINGS_KEY);
    settings[(request.params as { id: string }).id] = request.body;
    await files.put(SETTINGS_KEY, JSON.stringify(settings));
    return {};
  });

  scope.get('/users', async () => ({ storage: 'server', migrated: true }));

  scope.get('/userdata', async (request) => {
    const q = request.query as { dir?: string; recurse?: string; full_info?: string; split?: string };
    if (!q.dir) throw new HearthError('BAD_REQUEST', 'dir is required, e.g. /userdata?dir=workflows');
    const dir = userPath(q.dir);
    const recurse = q.recurse === 'true';
    const entries: Array<{ path: string; size: number; modified: number }> = [];
    if (dir === 'workflows') {
      for (const w of await wf.listSaved())
        entries.push({ path: `${w.name}.json`, size: 0, modified: new Date(w.updated_at).getTime() / 1000 });
    } else {
      const prefix = `${USER_FOLDER}/${dir}/`;
      for (const f of await files.list(prefix)) {
        const rel = f.key.slice(prefix.length);
        if (!recurse && rel.includes('/')) continue;
        entries.push({ path: rel, size: f.size, modified: f.modifiedAt.getTime() / 1000 });
      }
    }
    if (q.full_info === 'true') return entries;
    if (q.split === 'true') return entries.map((e) => [e.path, ...e.path.split('/')]);
    return entries.map((e) => e.path);
  });

  scope.get('/userdata/:file', async (request, reply) => {
    const path = userPath((request.params as { file: string }).file);
    const name = savedWorkflowName(path);
    if (name !== null) {
      const saved = await wf.getSaved(name).catch((err: unknown) => {
        if (isHearthError(err, 'WORKFLOW_NOT_FOUND')) throw new HearthError('NOT_FOUND', `no userdata file ${path}`);
        throw err;
      });
      return reply.type('application/json').send(JSON.stringify(saved.workflow));
    }
    try {
      return reply.type('application/octet-stream').send(await files.read(`${USER_FOLDER}/${path}`));
    } catch (err) {
      if (isHearthError(err, 'ATLAS_FILES_NOT_FOUND')) throw new HearthError('NOT_FOUND', `no userdata file ${path}`);
      throw err;
    }
  });

  // A userdata body is whatever the client sends (JSON workflows, CSS, text): take it as bytes.
  scope.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    raw.post('/userdata/:file', async (request, reply) => {
      const path = userPath((request.params as { file: string }).file);
      const overwrite = (request.query as { overwrite?: string }).overwrite !== 'false';
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const name = savedWorkflowName(path);
      if (name !== null) {
        let workflow: unknown;
        try {
          workflow = JSON.parse(body.toString('utf8'));
        } catch {
          throw new HearthError('BAD_REQUEST', `${path}: a workflow must be JSON`);
        }
        if (
          !overwrite &&
          (await wf.getSaved(name).then(
            () => true,
            () => false,
          ))
        )
          return reply.code(409).send({ error: `${path} exists: send overwrite=true to replace it` });
        await wf.putSaved(name, workflow);
      } else {
        try {
          await files.put(`${USER_FOLDER}/${path}`, body, { overwrite });
        } catch (err) {
          if (isHearthError(err, 'ATLAS_FILES_EXISTS'))
            return reply.code(409).send({ error: `${path} exists: send overwrite=true to replace it` });
          throw err;
        }
      }
      return { path, size: body.length, modified: Date.now() / 1000 };
    });
  });

  scope.delete('/userdata/:file', async (request, reply) => {
    const path = userPath((request.params as { file: string }).file);
    const name = savedWorkflowName(path);
    if (name !== null) await wf.deleteSaved(name);
    else if (!(await files.delete(`${USER_FOLDER}/${path}`)))
      throw new HearthError('NOT_FOUND', `no userdata file ${path}`);
    return reply.code(204).send();
  });

  scope.get('/models', async () => MODEL_FOLDERS);
  scope.get('/models/:folder', async (request) => {
    const folder = (request.params as { folder: string }).folder;
    if (!MODEL_FOLDERS.includes(folder))
      throw new HearthError('NOT_FOUND', `no model folder ${folder}: GET /models lists them`);
    return folder === 'checkpoints' ? ctx.images.names() : [];
  });

  scope.get('/features', async () => ({ supports_preview_metadata: false, max_upload_size: 100 * 1024 * 1024 }));
  scope.get('/internal/logs', async () => '');
  scope.get('/internal/logs/raw', async () => ({ entries: [], size: { cols: 80, rows: 24 } }));
}
