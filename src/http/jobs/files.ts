import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as z from 'zod';
import { normalizeSha256 } from '../../atlas/files/index.js';
import type { AppContext } from '../../context.js';
import { HearthError } from '../../errors.js';
import { parseRequest } from '../validate.js';

const putQuery = z.strictObject({
  /** the sha256 the upload must have; a mismatch stores nothing */
  sha256: z.string().optional(),
  /** `false`: refuse (409) when the key exists */
  overwrite: z.enum(['true', 'false']).optional(),
});

const listQuery = z.strictObject({ prefix: z.string().optional() });

function keyOf(params: unknown): string {
  return (params as { '*': string })['*'] ?? '';
}

/**
 * The Atlas file store over HTTP (service class `admin`: it reads and writes anywhere in the store,
 * models included, so only the management zone and loopback get it). `hearth files put|get|ls|rm` use
 * it, so datasets can be uploaded and results fetched from a laptop.
 */
export async function fileRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { files } = opts.ctx.atlas;

  app.get('/api/files', async (request) => {
    const query = parseRequest(listQuery, request.query ?? {}, 'query');
    const listed = await files.list(query.prefix ?? '');
    return { files: listed.map((f) => ({ key: f.key, size: f.size, modified_at: f.modifiedAt.toISOString() })) };
  });

  app.get('/api/files/*', async (request, reply) => {
    const key = keyOf(request.params);
    const stat = await files.stat(key);
    if (!stat) {
      throw new HearthError(
        'ATLAS_FILES_NOT_FOUND',
        `no file is stored under ${JSON.stringify(key)}: list files with hearth files ls`,
        {
          details: { key },
        },
      );
    }
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(stat.size))
      .header('last-modified', stat.modifiedAt.toUTCString())
      .send(await files.read(key));
  });

  app.delete('/api/files/*', async (request) => {
    const key = keyOf(request.params);
    if (!(await files.delete(key))) {
      throw new HearthError('ATLAS_FILES_NOT_FOUND', `no file is stored under ${JSON.stringify(key)}`, {
        details: { key },
      });
    }
    return { deleted: key };
  });

  // Uploads stream straight into an atomic put; the body is never buffered, whatever its size.
  app.register(async (uploads) => {
    uploads.removeAllContentTypeParsers();
    uploads.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    // PUT is the natural verb; POST too, as for /api/blobs (what HearthClient.upload sends).
    const upload = async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as Readable | undefined;
      try {
        const key = keyOf(request.params);
        const query = parseRequest(putQuery, request.query ?? {}, 'query');
        // The store must not destroy the request when it refuses the key: that would cut the
        // connection before the refusal is sent ("Empty reply from server").
        const stored = await files.put(key, body?.iterator({ destroyOnReturn: false }) ?? '', {
          ...(query.sha256 ? { expectedSha256: normalizeSha256(query.sha256, 'sha256') } : {}),
          ...(query.overwrite === 'false' ? { overwrite: false } : {}),
        });
        return reply.code(201).send(stored);
      } catch (err) {
        // Discard what is left of the body, so the answer reaches the client and the connection
        // can be reused; shutdown cuts such a connection instead of waiting for it (UnreadBodies).
        if (body && !request.raw.complete) request.raw.resume();
        throw err;
      }
    };
    uploads.put('/api/files/*', { bodyLimit: Number.MAX_SAFE_INTEGER }, upload);
    uploads.post('/api/files/*', { bodyLimit: Number.MAX_SAFE_INTEGER }, upload);
  });
}
