import { createHash, randomUUID } from 'node:crypto';
import { freemem, totalmem } from 'node:os';
import { extname } from 'node:path';
import { Readable } from 'node:stream';
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import type { AppContext } from '../../context.js';
import { HearthError, isHearthError } from '../../errors.js';
import { PromptRejected, type WorkflowFrame } from '../../workflows/service.js';
import { closeWebSockets } from '../shutdown.js';
import { comfyExtras } from './extras.js';
import { parseMultipart } from './multipart.js';
import { INPUT_FOLDER, safeRelative, sendWorkflowFile } from './view.js';

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
}

/**
 * ComfyUI's server API on hearth's workflows (service class `workflows`): every route at the root and
 * under /api/, plus the WebSocket /ws, and /api/workflows for saved workflows.
 */
export async function comfyRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  const wf = ctx.workflows;
  await app.register(websocket, { preClose: closeWebSockets });
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const comfy = async (scope: FastifyInstance) => {
    scope.post('/prompt', async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      try {
        return await wf.submit({
          prompt: body['prompt'],
          ...(typeof body['client_id'] === 'string' ? { client_id: body['client_id'] } : {}),
          ...(typeof body['prompt_id'] === 'string' ? { prompt_id: body['prompt_id'] } : {}),
          ...(body['front'] === true ? { front: true } : {}),
          ...(body['extra_data'] && typeof body['extra_data'] === 'object'
            ? { extra_data: body['extra_data'] as Record<string, unknown> }
            : {}),
        });
      } catch (err) {
        if (err instanceof PromptRejected) return reply.code(400).send(err.rejection);
        throw err;
      }
    });
    scope.get('/prompt', async () => ({ exec_info: { queue_remaining: await wf.queueRemaining() } }));
    scope.get('/queue', async () => wf.queue());
    scope.post('/queue', async (request) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      if (body['clear'] === true) await wf.deleteQueued('all');
      const ids = strings(body['delete']);
      if (ids) await wf.deleteQueued(ids);
      return {};
    });
    // ComfyUI clients send POST /interrupt with a JSON content type and no body: read that as {}.
    const emptyAsObject = async (request: FastifyRequest, _reply: FastifyReply, payload: NodeJS.ReadableStream) => {
      if (Number(request.headers['content-length'] ?? 0) !== 0 || request.headers['transfer-encoding']) return payload;
      request.headers['content-length'] = '2';
      return Readable.from([Buffer.from('{}')]);
    };
    scope.post('/interrupt', { preParsing: emptyAsObject }, async (request) => {
      const id = (request.body as { prompt_id?: unknown } | undefined)?.prompt_id;
      await wf.interrupt(typeof id === 'string' ? id : undefined);
      return {};
    });
    scope.get('/history', async (request) => {
      const q = request.query as { max_items?: string; offset?: string };
      const maxItems = q.max_items !== undefined ? Number(q.max_items) : undefined;
      const offset = q.offset !== undefined ? Number(q.offset) : undefined;
      return wf.history({
        ...(maxItems !== undefined && Number.isInteger(maxItems) && maxItems >= 0 ? { maxItems } : {}),
        ...(offset !== undefined && Number.isInteger(offset) && offset >= 0 ? { offset } : {}),
      });
    });
    scope.get('/history/:id', async (request) => wf.history({ id: (request.params as { id: string }).id }));
    scope.post('/history', async (request) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      if (body['clear'] === true) await wf.deleteHistory('all');
      const ids = strings(body['delete']);
      if (ids) await wf.deleteHistory(ids);
      return {};
    });
    scope.get('/object_info', async () => wf.objectInfo());
    scope.get('/object_info/:class', async (request) => wf.objectInfo((request.params as { class: string }).class));
    comfyExtras(scope, ctx);
    scope.get('/embeddings', async () => []);
    scope.get('/extensions', async () => []);
    scope.get('/view', async (request, reply) => sendWorkflowFile(ctx, request.query, reply));
    scope.post('/upload/image', async (request) => {
      const type = request.headers['content-type'] ?? '';
      if (!Buffer.isBuffer(request.body) || !type.startsWith('multipart/form-data')) {
        throw new HearthError('BAD_REQUEST', 'send multipart/form-data with an "image" file part');
      }
      const parts = parseMultipart(request.body, type);
      const field = (n: string) => parts.find((p) => p.name === n && p.filename === undefined)?.data.toString('utf8');
      const image = parts.find((p) => p.name === 'image' && p.filename !== undefined);
      if (!image?.filename) throw new HearthError('BAD_REQUEST', 'the "image" file part is missing');
      await checkImage(image.data);
      const uploadType = field('type') ?? 'input';
      if (uploadType !== 'input') throw new HearthError('BAD_REQUEST', 'uploads go to type input');
      const subfolder = safeRelative(field('subfolder') ?? '', 'subfolder');
      const original = safeRelative(image.filename, 'filename').split('/').pop()!;
      const overwrite = ['true', '1'].includes((field('overwrite') ?? '').toLowerCase());
      const folder = [INPUT_FOLDER, subfolder].filter(Boolean).join('/');
      // ComfyUI's clash rule: the same bytes reuse the name; other bytes get "name (1).ext", "name (2).ext", ...
      const ext = extname(original);
      const stem = original.slice(0, original.length - ext.length);
      for (let i = 0; i < 1000; i++) {
        const name = i === 0 ? original : `${stem} (${i})${ext}`;
        const key = `${folder}/${name}`;
        const existing = overwrite ? null : await ctx.atlas.files.stat(key);
        if (existing) {
          if (existing.size === image.data.length && (await ctx.atlas.files.hash(key)) === sha256(image.data)) {
            return { name, subfolder, type: 'input' };
          }
          continue;
        }
        try {
          await ctx.atlas.files.put(key, image.data, { overwrite });
          return { name, subfolder, type: 'input' };
        } catch (err) {
          if (!isHearthError(err, 'ATLAS_FILES_EXISTS')) throw err;
        }
      }
      throw new HearthError('BAD_REQUEST', `too many files named like ${original} in ${folder}`);
    });
    scope.get('/system_stats', async () => {
      const vram = await ctx.engine.vram().catch(() => null);
      return {
        system: {
          os: process.platform,
          ram_total: totalmem(),
          ram_free: freemem(),
          comfyui_version: `hearth ${ctx.version}`,
          python_version: '',
          pytorch_version: '',
          embedded_python: false,
          argv: [],
        },
        devices: [
          {
            name: `${ctx.engine.backend} (${ctx.node.id})`,
            type: ctx.engine.backend === 'cpu' ? 'cpu' : ctx.engine.backend,
            index: 0,
            vram_total: vram?.total ?? totalmem(),
            vram_free: vram ? vram.total - vram.used : freemem(),
            torch_vram_total: 0,
            torch_vram_free: 0,
          },
        ],
      };
    });
    scope.get('/ws', { websocket: true }, (socket, request) => {
      const clientId = (request.query as { clientId?: string }).clientId || randomId();
      const send = (frame: WorkflowFrame) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(frame));
      };
      const unsubscribe = wf.subscribe((frame, to) => {
        if (to === null)
          send(frame.type === 'status' ? { type: 'status', data: { ...frame.data, sid: clientId } } : frame);
        else if (to === clientId) send(frame);
      });
      socket.on('close', unsubscribe);
      void wf
        .queueRemaining()
        .then((n) => send({ type: 'status', data: { status: { exec_info: { queue_remaining: n } }, sid: clientId } }));
    });
  };
  await app.register(comfy);
  await app.register(comfy, { prefix: '/api' });

  app.get('/api/workflows', async () => ({ workflows: await wf.listSaved() }));
  app.get('/api/workflows/:name', async (request) => wf.getSaved((request.params as { name: string }).name));
  app.put('/api/workflows/:name', async (request) => {
    const body = request.body as { workflow?: unknown } | undefined;
    if (!body || body.workflow === undefined) throw new HearthError('BAD_REQUEST', 'send {"workflow": {...}}');
    await wf.putSaved((request.params as { name: string }).name, body.workflow);
    return wf.getSaved((request.params as { name: string }).name);
  });
  app.delete('/api/workflows/:name', async (request) => {
    await wf.deleteSaved((request.params as { name: string }).name);
    return {};
  });
}

/** Refuses bytes that are not an image sharp can read (an upload is stored and served back by /view). */
async function checkImage(data: Buffer): Promise<void> {
  const format = await sharp(data)
    .metadata()
    .then((m) => m.format)
    .catch(() => undefined);
  if (!format) {
    throw new HearthError(
      'ATTACHMENT_UNSUPPORTED',
      'the "image" part is not an image hearth can read: upload a PNG, JPEG, WebP or GIF file',
    );
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function randomId(): string {
  return randomUUID().replace(/-/g, '');
}
