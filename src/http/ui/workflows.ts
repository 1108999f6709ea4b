/**
 * The workflow editor's API under /api/ui/workflows (service class `ui`, the session, not API keys).
 * Every call goes to the same WorkflowService the ComfyUI routes use; documented in docs/ui.md.
 * Registered inside uiApiRoutes, so the session and CSRF checks of the UI API apply.
 */
import type { FastifyInstance } from 'fastify';
import * as z from 'zod';
import type { AppContext } from '../../context.js';
import { HearthError } from '../../errors.js';
import { PromptRejected } from '../../workflows/service.js';
import type { NodeUi } from '../../workflows/types.js';
import { sendWorkflowFile, workflowFileKey } from '../comfy/view.js';
import { SseStream } from '../stream.js';
import { answer, parseRequest } from '../validate.js';
import type { UiAuth } from './auth.js';
import {
  clearQueueAnswer,
  type GalleryItem,
  galleryAnswer,
  historyAnswer,
  interruptAnswer,
  okAnswer,
  promptAnswer,
  promptHistoryAnswer,
  promptRefusedAnswer,
  queueAnswer,
  renamedAnswer,
  savedPutAnswer,
  savedWorkflowAnswer,
  savedWorkflowsAnswer,
} from './contract.js';

/** A browser tab's id: its prompts' frames go to it alone. */
const tabId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'use 1 to 64 letters, digits, _ or -');
const promptBody = z.object({
  prompt: z.record(z.string(), z.unknown()),
  workflow: z.record(z.string(), z.unknown()).optional(),
  client: tabId.optional(),
  front: z.boolean().optional(),
});
const savedBody = z.object({ workflow: z.record(z.string(), z.unknown()) });
const renameBody = z.object({ name: z.string().min(1).max(200) });
const pageQuery = z.object({
  max_items: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});
const galleryQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(60),
  offset: z.coerce.number().int().min(0).default(0),
});
const fileQuery = z.object({
  filename: z.string().min(1).max(1000),
  subfolder: z.string().max(1000).default(''),
  type: z.enum(['output', 'input', 'temp']).default('output'),
  download: z.enum(['0', '1']).optional(),
});
const interruptBody = z.object({ prompt_id: z.string().min(1).max(200).optional() });

/** How many finished prompts the gallery looks through. */
const GALLERY_PROMPTS = 500;

function outputFiles(ui: NodeUi): Array<{ filename: string; subfolder: string; kind: GalleryItem['kind'] }> {
  const out: Array<{ filename: string; subfolder: string; kind: GalleryItem['kind'] }> = [];
  for (const key of ['images', 'files'] as const) {
    for (const f of ui[key] ?? []) {
      const file = f as { filename?: unknown; subfolder?: unknown; type?: unknown };
      if (typeof file.filename !== 'string' || file.type !== 'output') continue;
      const kind: GalleryItem['kind'] = /\.json$/i.test(file.filename)
        ? 'json'
        : /\.txt$/i.test(file.filename)
          ? 'text'
          : 'image';
      out.push({ filename: file.filename, subfolder: typeof file.subfolder === 'string' ? file.subfolder : '', kind });
    }
  }
  return out;
}

/** The client id a tab's prompts carry: tied to the signed-in user, so a tab hears only its own user's runs. */
const clientOf = (userId: string, tab: string) => `ui-${userId}-${tab}`;

export async function uiWorkflowRoutes(app: FastifyInstance, opts: { ctx: AppContext; auth: UiAuth }): Promise<void> {
  const { ctx, auth } = opts;
  const wf = ctx.workflows;
  const base = '/api/ui/workflows';

  app.get(`${base}/object_info`, async () => wf.objectInfo());

  app.post(`${base}/prompt`, async (request, reply) => {
    const body = parseRequest(promptBody, request.body);
    const user = auth.session(request).user;
    try {
      const queued = await wf.submit({
        prompt: body.prompt,
        ...(body.client ? { client_id: clientOf(user.id, body.client) } : {}),
        ...(body.front ? { front: true } : {}),
        // As ComfyUI's page sends it: SaveImage writes the workflow into the PNG.
        extra_data: {
          ...(body.workflow ? { extra_pnginfo: { workflow: body.workflow } } : {}),
          ui_user: user.username,
        },
      });
      return answer(promptAnswer, queued);
    } catch (err) {
      if (!(err instanceof PromptRejected)) throw err;
      // hearth's error shape, with ComfyUI's node_errors for the editor to place on nodes and inputs.
      const { error, node_errors } = err.rejection;
      return reply
        .code(400)
        .send(
          answer(promptRefusedAnswer, { error: error.message, type: error.type, details: error.details, node_errors }),
        );
    }
  });

  app.get(`${base}/queue`, async () => answer(queueAnswer, await wf.queue()));
  app.post(`${base}/queue/clear`, async () => answer(clearQueueAnswer, { removed: await wf.deleteQueued('all') }));
  app.post(`${base}/interrupt`, async (request) => {
    const body = parseRequest(interruptBody, request.body ?? {});
    return answer(interruptAnswer, { interrupted: await wf.interrupt(body.prompt_id) });
  });

  app.get(`${base}/history`, async (request) => {
    const q = parseRequest(pageQuery, request.query, 'query');
    return answer(historyAnswer, await wf.history({ maxItems: q.max_items, offset: q.offset }));
  });
  app.get<{ Params: { id: string } }>(`${base}/history/:id`, async (request) => {
    const found = await wf.history({ id: request.params.id });
    if (found[request.params.id]) return answer(promptHistoryAnswer, found);
    // Not finished: still queued or running?
    const queue = await wf.queue();
    const running = queue.queue_running.some((q) => q[1] === request.params.id);
    const pending = queue.queue_pending.some((q) => q[1] === request.params.id);
    if (running || pending) return answer(promptHistoryAnswer, { [request.params.id]: { pending: !running, running } });
    throw new HearthError('WORKFLOW_NOT_FOUND', `no prompt ${request.params.id} in the queue or the history`);
  });

  /**
   * Live frames (ComfyUI's WebSocket frames, as server-sent events) for one tab: `status` for all, and
   * the frames of the prompts this tab queued. A run goes on when the tab closes; the page reads its
   * state from the history when it comes back.
   */
  app.get(`${base}/events`, async (request, reply) => {
    const q = parseRequest(z.object({ client: tabId }), request.query, 'query');
    const client = clientOf(auth.session(request).user.id, q.client);
    const stream = new SseStream(request, reply);
    const unsubscribe = wf.subscribe((frame, to) => {
      if (to === null || to === client) void stream.send(frame);
    });
    const keepAlive = setInterval(() => void stream.comment('keep-alive'), 15_000);
    const stop = () => {
      clearInterval(keepAlive);
      unsubscribe();
    };
    if (stream.signal.aborted) stop();
    else stream.signal.addEventListener('abort', stop, { once: true });
    await stream.send({
      type: 'status',
      data: { status: { exec_info: { queue_remaining: await wf.queueRemaining() } } },
    });
    return reply;
  });

  // ---- saved workflows: the store ComfyUI's /api/workflows (and /userdata) serve

  app.get(`${base}/saved`, async () =>
    answer(savedWorkflowsAnswer, {
      workflows: (await wf.listSaved()).map((w) => ({ name: w.name, updatedAt: w.updated_at })),
    }),
  );
  app.get<{ Params: { name: string } }>(`${base}/saved/:name`, async (request) => {
    const row = await wf.getSaved(request.params.name);
    return answer(savedWorkflowAnswer, { name: row.name, workflow: row.workflow, updatedAt: row.updated_at });
  });
  app.put<{ Params: { name: string } }>(`${base}/saved/:name`, async (request) => {
    const body = parseRequest(savedBody, request.body);
    await wf.putSaved(request.params.name, body.workflow);
    const row = await wf.getSaved(request.params.name);
    return answer(savedPutAnswer, { name: row.name, updatedAt: row.updated_at });
  });
  app.post<{ Params: { name: string } }>(`${base}/saved/:name/rename`, async (request) => {
    const body = parseRequest(renameBody, request.body);
    await wf.renameSaved(request.params.name, body.name);
    return answer(renamedAnswer, { name: body.name });
  });
  app.delete<{ Params: { name: string } }>(`${base}/saved/:name`, async (request) => {
    await wf.deleteSaved(request.params.name);
    return answer(okAnswer, { ok: true });
  });

  // ---- outputs

  app.get(`${base}/view`, async (request, reply) => {
    const q = parseRequest(fileQuery, request.query, 'query');
    if (q.download === '1') {
      reply.header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(q.filename)}`);
    }
    return sendWorkflowFile(ctx, q, reply);
  });

  /** Saved outputs (Atlas outputs/) of finished prompts, newest first, with the prompt that made them. */
  app.get(`${base}/gallery`, async (request) => {
    const q = parseRequest(galleryQuery, request.query, 'query');
    const history = await wf.history({ maxItems: GALLERY_PROMPTS });
    const items: GalleryItem[] = [];
    let skipped = 0;
    let more = false;
    for (const [promptId, entry] of Object.entries(history)) {
      const prompt = entry.prompt[2];
      const extra = entry.prompt[3] as { extra_pnginfo?: { workflow?: unknown } };
      const last = entry.status.messages.at(-1)?.[1]?.['timestamp'];
      const createdAt = typeof last === 'number' ? new Date(last).toISOString() : null;
      for (const [node, ui] of Object.entries(entry.outputs)) {
        for (const file of outputFiles(ui)) {
          // A file deleted from the gallery (or by hand on Atlas) is no longer shown.
          if (!(await ctx.atlas.files.stat(workflowFileKey({ ...file, type: 'output' }).key).catch(() => null)))
            continue;
          if (skipped < q.offset) {
            skipped++;
            continue;
          }
          if (items.length === q.limit) {
            more = true;
            break;
          }
          const cls = (prompt[node] as { class_type?: unknown } | undefined)?.class_type;
          items.push({
            ...file,
            type: 'output',
            promptId,
            node,
            classType: typeof cls === 'string' ? cls : null,
            createdAt,
            prompt,
            workflow: extra?.extra_pnginfo?.workflow ?? null,
          });
        }
        if (more) break;
      }
      if (more) break;
    }
    return answer(galleryAnswer, { items, more });
  });

  app.delete(`${base}/gallery`, { config: { uiAccess: 'admin' } }, async (request) => {
    const q = parseRequest(fileQuery, request.query, 'query');
    if (q.type !== 'output') throw new HearthError('BAD_REQUEST', 'only saved outputs (type output) can be deleted');
    const { key, rel } = workflowFileKey(q);
    if (!(await ctx.atlas.files.delete(key)))
      throw new HearthError('NOT_FOUND', `no output ${rel} on Atlas: it was deleted already`);
    return answer(okAnswer, { ok: true });
  });
}
