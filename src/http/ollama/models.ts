import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import { HearthError } from '../../errors.js';
import { type ModelEntry, PROJECTOR_INFO, projectorOf } from '../../models/library.js';
import { parseModelfile, renderModelfile } from '../../models/modelfile.js';
import { parseQuantizeType } from '../../models/quantize.js';
import { clientGone } from '../stream.js';
import { parseRequest } from '../validate.js';
import { copySchema, createSchema, deleteSchema, pullSchema, showSchema } from './schemas.js';
import { respond } from './stream.js';

function details(e: ModelEntry) {
  const { parent_model, format, family, families, parameter_size, quantization_level } = e.details;
  return { parent_model, format, family, families, parameter_size, quantization_level };
}

/** PARAMETER lines as `ollama show` prints them: `stop "<|im_end|>"`, one a line. */
function parameterText(e: ModelEntry): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(e.parameters)) {
    for (const item of Array.isArray(v) ? v : [v])
      lines.push(`${k.padEnd(30)} ${typeof item === 'string' ? JSON.stringify(item) : String(item)}`);
  }
  return lines.join('\n');
}

/** What `quantize` on /api/create runs: the type it names and the llama-quantize of `hearth engine build`. */
function quantizeWith(ctx: AppContext, value: string) {
  const type = parseQuantizeType(value);
  const binary = ctx.engine.serving().binary?.quantize;
  if (!binary) {
    throw new HearthError(
      'UNSUPPORTED',
      'quantize needs llama-quantize from `hearth engine build`, and no engine build serves here (in-process engine or inference.llamaServer): run `hearth engine build`, or quantize with llama.cpp and create from the result',
      { details: { param: 'quantize' } },
    );
  }
  const libDir = ctx.engine.serving().binary?.libDir;
  return { type, quantizer: { binary, ...(libDir ? { libDir } : {}), threads: ctx.config.node.threads || 2 } };
}

/** Reading the library: served with inference (every Ollama client lists models). */
export async function ollamaLibraryRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.get('/api/tags', async () => {
    const models = await ctx.models.list();
    return {
      models: models.map((m) => ({
        name: m.name,
        model: m.name,
        modified_at: m.modifiedAt.toISOString(),
        size: m.size,
        digest: m.digest,
        details: details(m),
      })),
    };
  });

  app.get('/api/ps', async () => {
    const byDigest = new Map((await ctx.models.list()).map((m) => [m.digest, m]));
    return {
      models: ctx.engine.loaded().map((l) => {
        const entry = byDigest.get(l.digest);
        return {
          name: l.name,
          model: l.name,
          size: l.size,
          digest: l.digest,
          details: entry ? details(entry) : undefined,
          // Ollama shows a far-future time for "forever".
          expires_at: (l.expiresAt ?? new Date('2318-01-01T00:00:00Z')).toISOString(),
          size_vram: l.sizeVram,
          context_length: l.contextLength,
        };
      }),
    };
  });

  app.post('/api/show', async (request) => {
    const body = parseRequest(showSchema, request.body);
    const entry = await ctx.models.get((body.model ?? body.name)!);
    const { [PROJECTOR_INFO]: _projector, ...modelInfo } = entry.modelInfo;
    const projector = projectorOf(entry);
    return {
      license: entry.license.join('\n'),
      modelfile: renderModelfile({
        name: entry.name,
        from: entry.details.parent_model || `atlas:${entry.blobKey}`,
        parameters: entry.parameters,
        system: entry.system,
        template: entry.template,
        license: entry.license,
        messages: entry.messages,
      }),
      parameters: parameterText(entry),
      template: entry.template ?? entry.chatTemplate ?? '',
      system: entry.system ?? '',
      details: details(entry),
      messages: entry.messages,
      model_info: modelInfo,
      ...(projector ? { projector_info: projector.info } : {}),
      capabilities: await ctx.inference.capabilities(entry),
      modified_at: entry.modifiedAt.toISOString(),
    };
  });
}

/** Changing the library: the admin service class (management zone only, once zones are enforced). */
export async function ollamaManageRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.post('/api/copy', async (request, reply) => {
    const body = parseRequest(copySchema, request.body);
    await ctx.models.copy(body.source, body.destination);
    return reply.code(200).send();
  });

  app.delete('/api/delete', async (request, reply) => {
    const body = parseRequest(deleteSchema, request.body);
    const entry = await ctx.models.get((body.model ?? body.name)!);
    await ctx.engine.unload(entry.digest).catch(() => false);
    await ctx.models.delete(entry.name);
    return reply.code(200).send();
  });

  app.head('/api/blobs/:digest', async (request, reply) => {
    const { digest } = request.params as { digest: string };
    return reply.code((await ctx.models.hasBlob(digest)) ? 200 : 404).send();
  });

  // Blob uploads stream straight to Atlas; the body is never buffered.
  app.register(async (blobs) => {
    blobs.removeAllContentTypeParsers();
    blobs.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    blobs.post('/api/blobs/:digest', { bodyLimit: Number.MAX_SAFE_INTEGER }, async (request, reply) => {
      const { digest } = request.params as { digest: string };
      const body = request.body as Readable | undefined;
      if (!body) throw new HearthError('BAD_REQUEST', 'send the blob as the request body');
      const { created } = await ctx.models.putBlob(digest, body);
      return reply.code(created ? 201 : 200).send();
    });
  });

  app.post('/api/create', async (request, reply) => {
    const body = parseRequest(createSchema, request.body);
    const quantize = body.quantize ? quantizeWith(ctx, body.quantize) : undefined;
    if (body.adapters && Object.keys(body.adapters).length)
      throw new HearthError(
        'UNSUPPORTED',
        'adapters (LoRA) are not supported yet: merge the adapter into the GGUF first',
      );
    const req = { ...body, model: (body.model ?? body.name)! };
    if (body.modelfile) {
      const mf = parseModelfile(body.modelfile);
      if (mf.projector) {
        throw new HearthError(
          'MODELFILE_INVALID',
          'PROJECTOR names a file on the client: upload it (POST /api/blobs) and list it in "files", as `hearth create` does',
        );
      }
      Object.assign(req, {
        from: req.from ?? mf.from,
        parameters: { ...mf.parameters, ...req.parameters },
        system: req.system ?? mf.system,
        template: req.template ?? mf.template,
        license: req.license ?? (mf.license.length ? mf.license : undefined),
        messages: req.messages ?? (mf.messages.length ? mf.messages : undefined),
      });
    }
    return respond(request, reply, body.stream, async (stream) => {
      await ctx.models.create(
        {
          model: req.model,
          ...(req.from !== undefined ? { from: req.from } : {}),
          ...(req.files !== undefined ? { files: req.files } : {}),
          ...(req.parameters !== undefined ? { parameters: req.parameters as never } : {}),
          ...(req.system !== undefined ? { system: req.system } : {}),
          ...(req.template !== undefined ? { template: req.template } : {}),
          ...(req.license !== undefined ? { license: req.license } : {}),
          ...(req.messages !== undefined ? { messages: req.messages } : {}),
          ...(quantize ? { quantize } : {}),
        },
        (status) => stream?.write({ status }),
      );
      return { status: 'success' };
    });
  });

  app.post('/api/pull', async (request, reply) => {
    const body = parseRequest(pullSchema, request.body);
    const signal = clientGone(reply);
    return respond(request, reply, body.stream, async (stream) => {
      await ctx.pull.pull((body.model ?? body.name)!, {
        insecure: body.insecure ?? false,
        signal,
        onProgress: (p) => stream?.write(p),
      });
      return { status: 'success' };
    });
  });

  app.post('/api/push', async () => {
    throw new HearthError(
      'UNSUPPORTED',
      'push is not supported: hearth keeps models on Atlas; share the GGUF from the Atlas file store (models/blobs/) instead',
    );
  });
}
