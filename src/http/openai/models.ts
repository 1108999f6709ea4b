import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { HearthError, isHearthError } from '../../errors.js';
import type { ModelEntry } from '../../models/library.js';
import { parseModelName } from '../../models/names.js';
import { unixSeconds } from './results.js';

function toOpenAIModel(entry: ModelEntry) {
  let owner = 'library';
  try {
    owner = parseModelName(entry.name).namespace ?? owner;
  } catch {
    // a stored name is valid by construction; keep the default owner if not
  }
  return { id: entry.name, object: 'model' as const, created: unixSeconds(entry.createdAt), owned_by: owner };
}

/** Anthropic's model object: its SDKs (and Claude Code) list models at the same path, sending `anthropic-version`. */
function toAnthropicModel(entry: ModelEntry) {
  return {
    type: 'model' as const,
    id: entry.name,
    display_name: entry.name,
    created_at: entry.createdAt.toISOString(),
  };
}

const asksAnthropic = (request: FastifyRequest) => request.headers['anthropic-version'] !== undefined;

/** GET /v1/models and /v1/models/{id}, from the model library on Atlas (in Anthropic's shape when asked by its clients). */
export async function modelListRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.get('/v1/models', async (request) => {
    const models = await ctx.models.list();
    if (!asksAnthropic(request)) return { object: 'list', data: models.map(toOpenAIModel) };
    const data = models.map(toAnthropicModel);
    return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
  });

  // A wildcard, because library names may hold slashes (`hf.co/owner/repo:Q4_K_M`).
  app.get('/v1/models/*', async (request) => {
    const id = (request.params as { '*': string })['*'];
    let entry: ModelEntry | null = null;
    try {
      entry = id ? await ctx.models.find(id) : null;
    } catch (err) {
      // A name that cannot exist is simply not there, as OpenAI answers it.
      if (!isHearthError(err, 'MODEL_NAME_INVALID')) throw err;
    }
    if (!entry) {
      throw new HearthError('MODEL_NOT_FOUND', `model "${id}" not found: GET /v1/models lists the models hearth has`, {
        details: { param: 'model' },
      });
    }
    return asksAnthropic(request) ? toAnthropicModel(entry) : toOpenAIModel(entry);
  });
}
