import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { HearthError } from '../../errors.js';
import type { Viewer } from '../../knowledge/index.js';
import { parseMultipart } from '../comfy/multipart.js';
import { answer, parseRequest } from '../validate.js';
import {
  addAnswer,
  basesAnswer,
  createBaseBody,
  documentsAnswer,
  folderBody,
  knowledgeBase,
  patchBaseBody,
  queryBody,
  rawQuery,
} from './contract.js';

type IdParams = { id: string };
type DocParams = { id: string; doc: string };

export interface KnowledgeRouteOptions {
  ctx: AppContext;
  /** where the routes live: /api/knowledge (jobs class), /api/ui/knowledge (the UI, for the session's user) */
  prefix: string;
  /** who asks */
  viewer: (request: FastifyRequest) => Viewer;
}

/**
 * The knowledge-base API (docs/knowledge.md): bases, their documents (multipart upload, one raw file,
 * or an Atlas folder registered in place), and retrieval. Served as /api/knowledge (service class
 * `jobs`; no owning user, so only shared bases) and as /api/ui/knowledge for the signed-in user.
 */
export async function knowledgeRoutes(app: FastifyInstance, opts: KnowledgeRouteOptions): Promise<void> {
  const { ctx, prefix, viewer } = opts;
  const knowledge = ctx.knowledge;
  const uploadLimit = Math.max(ctx.config.server.bodyLimit, knowledge.settings.maxFileBytes + 1024 ** 2);

  app.get(prefix, async (request) => answer(basesAnswer, { bases: await knowledge.list(viewer(request)) }));

  app.post(prefix, async (request, reply) => {
    const body = parseRequest(createBaseBody, request.body);
    return reply.code(201).send(answer(knowledgeBase, await knowledge.create(viewer(request), body)));
  });

  app.get<{ Params: IdParams }>(`${prefix}/:id`, async (request) => {
    const who = viewer(request);
    const base = await knowledge.get(who, request.params.id);
    return { ...base, document_list: await knowledge.documents(who, base.id) };
  });

  app.patch<{ Params: IdParams }>(`${prefix}/:id`, async (request) => {
    const body = parseRequest(patchBaseBody, request.body);
    return knowledge.update(viewer(request), request.params.id, body);
  });

  app.delete<{ Params: IdParams }>(`${prefix}/:id`, async (request) => {
    await knowledge.remove(viewer(request), request.params.id);
    return { deleted: request.params.id };
  });

  app.get<{ Params: IdParams }>(`${prefix}/:id/documents`, async (request) =>
    answer(documentsAnswer, { documents: await knowledge.documents(viewer(request), request.params.id) }),
  );

  app.delete<{ Params: DocParams }>(`${prefix}/:id/documents/:doc`, async (request) => {
    await knowledge.removeDocument(viewer(request), request.params.id, request.params.doc);
    return { deleted: request.params.doc };
  });

  app.post<{ Params: IdParams }>(`${prefix}/:id/query`, async (request) => {
    const body = parseRequest(queryBody, request.body);
    const started = performance.now();
    const results = await knowledge.query(viewer(request), [request.params.id], body.query, {
      ...(body.limit !== undefined ? { limit: body.limit } : {}),
      ...(body.mode ? { mode: body.mode } : {}),
      ...(body.rerank !== undefined ? { rerank: body.rerank } : {}),
    });
    return { results, took_ms: Math.round(performance.now() - started) };
  });

  // Uploads: multipart/form-data (any number of files), a raw body (?name=), or JSON {"folder": ...}.
  await app.register(async (uploads) => {
    uploads.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_r, body, done) => done(null, body));
    uploads.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, body, done) => done(null, body));
    uploads.post<{ Params: IdParams }>(
      `${prefix}/:id/documents`,
      { bodyLimit: uploadLimit },
      async (request, reply) => {
        const who = viewer(request);
        const type = String(request.headers['content-type'] ?? '');
        let result: Awaited<ReturnType<typeof knowledge.addFiles>>;
        if (type.startsWith('application/json')) {
          const body = parseRequest(folderBody, request.body);
          result = await knowledge.addFolder(who, request.params.id, body.folder);
        } else if (type.startsWith('multipart/form-data')) {
          const files = parseMultipart(request.body as Buffer, type)
            .filter((p) => p.filename !== undefined)
            .map((p) => ({ name: p.filename!, bytes: p.data }));
          if (files.length === 0) {
            throw new HearthError('BAD_REQUEST', 'the form holds no files: send each document as a file part');
          }
          result = await knowledge.addFiles(who, request.params.id, files);
        } else {
          const query = parseRequest(rawQuery, request.query ?? {}, 'query');
          const bytes = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
          result = await knowledge.addFiles(who, request.params.id, [{ name: query.name, bytes }]);
        }
        return reply.code(result.job ? 202 : 200).send(answer(addAnswer, result));
      },
    );
  });
}

/** /api/knowledge (service class `jobs`): callers are API keys (or an open listener), with no user. */
export async function knowledgeApiRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  await knowledgeRoutes(app, { ctx: opts.ctx, prefix: '/api/knowledge', viewer: () => ({ userId: null }) });
}
