/**
 * The admin screens' API (/api/ui/admin, docs/ui.md): models and pulls, API keys, batch jobs and the
 * node's state, for a browser session with the admin role on a client in `adminZones` or loopback
 * (UiAuth enforces both for `uiAccess: 'admin'`). Every route calls the same services as the
 * admin-class and jobs-class routes (ModelLibrary, PullTasks, ApiKeyStore, JobService), so the UI
 * cannot do anything those APIs cannot, nor differently.
 */
import type { FastifyInstance } from 'fastify';
import type * as z from 'zod';
import { atlasDbHealth, atlasFilesHealth } from '../../atlas/health.js';
import type { AppContext } from '../../context.js';
import { HearthError } from '../../errors.js';
import { MANIFEST_FILE, shardFileName } from '../../jobs/commit.js';
import { FINISHED_STATES } from '../../jobs/index.js';
import { parseKeepAlive } from '../../models/keep-alive.js';
import { parseModelfile } from '../../models/modelfile.js';
import { ApiKeyStore, assessExposure, exposureReport } from '../../net/index.js';
import { keyJson } from '../admin/keys.js';
import { answer, parseRequest } from '../validate.js';
import type { UiAuth } from './auth.js';
import {
  adminModelsAnswer,
  copyBody,
  createdKeyAnswer,
  createModelBody,
  jobAnswer,
  jobResultsAnswer,
  jobsAnswer,
  jobsQuery,
  keepAliveBody,
  keyBody,
  keysAnswer,
  logsAnswer,
  logsQuery,
  nameQuery,
  nodeAnswer,
  pullAnswer,
  pullBody,
  pullsAnswer,
} from './contract.js';

const ADMIN = { config: { uiAccess: 'admin' as const } };

/** Lines of a job's first output shard shown under "results". */
const RESULT_PREVIEW_LINES = 20;
const RESULT_PREVIEW_BYTES = 64 * 1024;

type IdParams = { id: string };

export async function uiAdminRoutes(app: FastifyInstance, opts: { ctx: AppContext; auth: UiAuth }): Promise<void> {
  const { ctx, auth } = opts;
  const keys = new ApiKeyStore({ db: ctx.atlas.db });

  // ---- models

  app.get('/api/ui/admin/models', ADMIN, async () => {
    const loaded = ctx.engine.loaded();
    const entries = await ctx.models.list();
    const models: z.input<typeof adminModelsAnswer>['models'] = [];
    for (const entry of entries) {
      const arch = entry.modelInfo['general.architecture'];
      const contextLength = typeof arch === 'string' ? entry.modelInfo[`${arch}.context_length`] : undefined;
      // A model whose metadata cannot be read is still listed (and can be deleted).
      const capabilities = await ctx.inference.capabilities(entry).catch(() => [] as string[]);
      models.push({
        name: entry.name,
        digest: entry.digest,
        size: entry.size,
        format: entry.details.format,
        family: entry.details.family,
        parameterSize: entry.details.parameter_size,
        quantization: entry.details.quantization_level,
        contextLength: typeof contextLength === 'number' ? contextLength : null,
        capabilities,
        license: entry.license.join('\n'),
        parentModel: entry.details.parent_model || null,
        modifiedAt: entry.modifiedAt.toISOString(),
      });
    }
    return answer(adminModelsAnswer, {
      models,
      loaded: loaded.map((l) => ({
        name: l.name,
        digest: l.digest,
        size: l.size,
        sizeVram: l.sizeVram,
        contextLength: l.contextLength,
        expiresAt: l.expiresAt?.toISOString() ?? null,
        activeSequences: l.activeSequences,
      })),
    });
  });

  app.delete('/api/ui/admin/models', ADMIN, async (request) => {
    const { name } = parseRequest(nameQuery, request.query, 'query');
    const entry = await ctx.models.get(name);
    await ctx.engine.unload(entry.digest).catch(() => false);
    await ctx.models.delete(entry.name);
    return { deleted: entry.name };
  });

  app.post('/api/ui/admin/models/copy', ADMIN, async (request, reply) => {
    const body = parseRequest(copyBody, request.body);
    await ctx.models.copy(body.source, body.destination);
    return reply.code(201).send({ model: (await ctx.models.get(body.destination)).name });
  });

  app.post('/api/ui/admin/models/create', ADMIN, async (request, reply) => {
    const body = parseRequest(createModelBody, request.body);
    let entry: Awaited<ReturnType<typeof ctx.models.create>>;
    if (body.atlasPath !== undefined) {
      entry = await ctx.models.create({ model: body.name, from: `atlas:${body.atlasPath.replace(/^atlas:/, '')}` });
    } else {
      const mf = parseModelfile(body.modelfile ?? '');
      entry = await ctx.models.create({
        model: body.name,
        ...(mf.from ? { from: mf.from } : {}),
        parameters: mf.parameters,
        ...(mf.system !== undefined ? { system: mf.system } : {}),
        ...(mf.template !== undefined ? { template: mf.template } : {}),
        ...(mf.license.length ? { license: mf.license } : {}),
        ...(mf.messages.length ? { messages: mf.messages } : {}),
      });
    }
    return reply.code(201).send({ model: entry.name });
  });

  app.post('/api/ui/admin/models/unload', ADMIN, async (request) => {
    const { name } = parseRequest(nameQuery, request.body);
    const entry = await ctx.models.get(name);
    return { unloaded: await ctx.engine.unload(entry.digest) };
  });

  // Loads the model (if it is not) with a new keep-alive, as Ollama's empty-prompt request does; 0 unloads.
  app.post('/api/ui/admin/models/keep-alive', ADMIN, async (request) => {
    const body = parseRequest(keepAliveBody, request.body);
    const prepared = await ctx.inference.prepare(body.name, {}, parseKeepAlive(body.keepAlive));
    if (prepared.keepAliveMs === 0) return { unloaded: await ctx.engine.unload(prepared.entry.digest) };
    await ctx.engine.load(prepared.spec, prepared.load, prepared.keepAliveMs);
    const now = ctx.engine.loaded().find((l) => l.digest === prepared.entry.digest);
    return { loaded: true, expiresAt: now?.expiresAt?.toISOString() ?? null };
  });

  // ---- pulls: tasks on Atlas, followed by polling (any node answers)

  app.get('/api/ui/admin/pulls', ADMIN, async () => answer(pullsAnswer, { pulls: await ctx.pulls.list() }));

  app.post('/api/ui/admin/pulls', ADMIN, async (request, reply) => {
    const body = parseRequest(pullBody, request.body);
    const pull = await ctx.pulls.start(body.source, {
      insecure: body.insecure ?? false,
      createdBy: auth.session(request).user.username,
    });
    return reply.code(202).send(answer(pullAnswer, { pull }));
  });

  app.get<{ Params: IdParams }>('/api/ui/admin/pulls/:id', ADMIN, async (request) =>
    answer(pullAnswer, { pull: await ctx.pulls.get(request.params.id) }),
  );

  app.post<{ Params: IdParams }>('/api/ui/admin/pulls/:id/cancel', ADMIN, async (request) =>
    answer(pullAnswer, { pull: await ctx.pulls.cancel(request.params.id) }),
  );

  // ---- API keys

  app.get('/api/ui/admin/keys', ADMIN, async () =>
    answer(keysAnswer, { keys: (await keys.list({ includeRevoked: true })).map(keyJson) }),
  );

  app.post('/api/ui/admin/keys', ADMIN, async (request, reply) => {
    const body = parseRequest(keyBody, request.body);
    const created = await keys.create({
      name: body.name,
      scopes: body.scopes,
      ...(body.expires !== undefined ? { expires: body.expires } : {}),
    });
    // The key itself is shown this once; Atlas keeps only its hash.
    return reply.code(201).send(answer(createdKeyAnswer, { key: created.key, info: keyJson(created.info) }));
  });

  app.delete<{ Params: { name: string } }>('/api/ui/admin/keys/:name', ADMIN, async (request) => ({
    revoked: keyJson(await keys.revoke(request.params.name)),
  }));

  // ---- batch jobs

  app.get('/api/ui/admin/jobs', ADMIN, async (request) => {
    const query = parseRequest(jobsQuery, request.query, 'query');
    const page = await ctx.jobs.list({
      limit: query.limit,
      ...(query.state ? { states: [query.state] } : {}),
      ...(query.before ? { before: query.before } : {}),
    });
    return answer(jobsAnswer, page);
  });

  app.get<{ Params: IdParams }>('/api/ui/admin/jobs/:id', ADMIN, async (request) =>
    answer(jobAnswer, { job: await ctx.jobs.get(request.params.id) }),
  );

  app.get<{ Params: IdParams }>('/api/ui/admin/jobs/:id/logs', ADMIN, async (request) => {
    const query = parseRequest(logsQuery, request.query, 'query');
    return answer(logsAnswer, { events: await ctx.jobs.events(request.params.id, query.after, query.limit) });
  });

  app.post<{ Params: IdParams }>('/api/ui/admin/jobs/:id/cancel', ADMIN, async (request) =>
    answer(jobAnswer, { job: await ctx.jobs.cancel(request.params.id) }),
  );

  app.post<{ Params: IdParams }>('/api/ui/admin/jobs/:id/retry', ADMIN, async (request) =>
    answer(jobAnswer, { job: await ctx.jobs.retry(request.params.id) }),
  );

  // A finished job's results: its manifest and the first lines of its first shard.
  app.get<{ Params: IdParams }>('/api/ui/admin/jobs/:id/results', ADMIN, async (request) => {
    const job = await ctx.jobs.get(request.params.id);
    if (!FINISHED_STATES.includes(job.state) || !job.manifest) {
      throw new HearthError(
        'JOB_STATE_CONFLICT',
        `job ${job.id} is ${job.state}: its results are written when it succeeds`,
      );
    }
    const manifest = JSON.parse(await readText(ctx, `${job.output}/${MANIFEST_FILE}`)) as Record<string, unknown>;
    const first = `${job.output}/${shardFileName(0)}`;
    const text = (await ctx.atlas.files.stat(first)) ? await readText(ctx, first, RESULT_PREVIEW_BYTES) : '';
    const lines = text.split('\n').filter((l) => l.trim());
    // The last line of a cut read may be partial: keep whole lines only.
    const whole = text.length >= RESULT_PREVIEW_BYTES ? lines.slice(0, -1) : lines;
    const preview = whole.slice(0, RESULT_PREVIEW_LINES);
    return answer(jobResultsAnswer, { output: job.output, manifest, preview, previewFile: first });
  });

  // ---- the node (what `hearth doctor` checks, as this running node sees it)

  app.get('/api/ui/admin/node', ADMIN, async () => {
    const serving = ctx.engine.serving();
    const cache = ctx.node.cache.usage();
    const database = await check(() => atlasDbHealth(ctx.atlas.db));
    const files = await check(() => atlasFilesHealth(ctx.atlas.files));
    const vram = await ctx.engine.vram().catch(() => null);
    const { warnings, problems } = assessExposure(ctx.config);
    return answer(nodeAnswer, {
      node: { id: ctx.node.id, hostname: ctx.node.hostname, version: ctx.version },
      engine: {
        engine: serving.engine,
        backend: serving.backend,
        binary: serving.binary?.path ?? null,
        gpuHealthy: ctx.engine.gpuHealthy,
        setting: ctx.config.inference.engine,
        gpuSetting: ctx.config.node.gpu,
      },
      vram,
      cache: { dir: ctx.config.node.cacheDir, bytes: cache.bytes, entries: cache.entries, maxBytes: cache.maxBytes },
      loaded: ctx.engine.loaded().map((l) => ({
        name: l.name,
        size: l.size,
        sizeVram: l.sizeVram,
        expiresAt: l.expiresAt?.toISOString() ?? null,
      })),
      atlas: { database, files },
      exposure: { report: exposureReport(ctx.config), warnings, problems },
    });
  });
}

/** A health check's outcome: what it found, or why it failed, never a 5xx. */
async function check(run: () => Promise<string>): Promise<{ ok: boolean; detail: string }> {
  try {
    return { ok: true, detail: await run() };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

async function readText(ctx: AppContext, key: string, maxBytes?: number): Promise<string> {
  const stream = await ctx.atlas.files.read(key, maxBytes ? { start: 0, end: maxBytes - 1 } : undefined);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
