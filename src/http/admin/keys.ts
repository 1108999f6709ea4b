import type { FastifyInstance } from 'fastify';
import * as z from 'zod';
import type { AppContext } from '../../context.js';
import { type ApiKeyInfo, ApiKeyStore } from '../../net/index.js';
import { parseRequest } from '../validate.js';

/**
 * API keys over the admin class: what `hearth keys` uses when it cannot open
 * the Atlas database itself (the embedded one, held by this server).
 *
 *   GET    /api/keys[?all=true]  → { keys: [...] }
 *   POST   /api/keys {name, scopes, expires?} → { key, ...info }   (the key is shown once)
 *   DELETE /api/keys/:name       → { revoked: info }
 */
export async function adminKeyRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const keys = new ApiKeyStore({ db: opts.ctx.atlas.db });

  app.get('/api/keys', async (request) => {
    const query = parseRequest(listSchema, request.query ?? {}, 'query');
    return { keys: (await keys.list({ includeRevoked: query.all === 'true' })).map(keyJson) };
  });

  app.post('/api/keys', async (request) => {
    const body = parseRequest(createSchema, request.body);
    const created = await keys.create({
      name: body.name,
      scopes: body.scopes,
      ...(body.expires !== undefined ? { expires: body.expires } : {}),
    });
    return { key: created.key, ...keyJson(created.info) };
  });

  app.delete<{ Params: { name: string } }>('/api/keys/:name', async (request) => {
    return { revoked: keyJson(await keys.revoke(request.params.name)) };
  });
}

const listSchema = z.object({ all: z.enum(['true', 'false']).optional() });
const createSchema = z.strictObject({
  name: z.string(),
  scopes: z.array(z.string()),
  expires: z.string().optional(),
});

/** A key's public fields in the API (snake case, like the rest of the Ollama-style API). */
export function keyJson(info: ApiKeyInfo) {
  return {
    id: info.id,
    name: info.name,
    scopes: info.scopes,
    created_at: info.createdAt.toISOString(),
    expires_at: info.expiresAt?.toISOString() ?? null,
    last_used_at: info.lastUsedAt?.toISOString() ?? null,
    revoked_at: info.revokedAt?.toISOString() ?? null,
  };
}
