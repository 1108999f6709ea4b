import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import { HearthError } from '../../errors.js';
import { errorBody } from '../errors.js';
import { openaiRerankRoutes } from '../rerank.js';
import { chatCompletionRoutes } from './chat.js';
import { completionRoutes } from './completions.js';
import { embeddingRoutes } from './embeddings.js';
import { imageRoutes } from './images.js';
import { modelListRoutes } from './models.js';
import { responsesRoutes } from './responses/index.js';

/**
 * The OpenAI-compatible API under /v1 (service class `inference`). Every route
 * answers errors in OpenAI's shape; generation goes through the same planner
 * and engine as the Ollama API. `Authorization: Bearer <key>` is accepted and,
 * until API keys arrive with the network zones, not checked.
 */
export async function openaiRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, errorShape: 'openai' };
  });
  await app.register(chatCompletionRoutes, opts);
  await app.register(completionRoutes, opts);
  await app.register(embeddingRoutes, opts);
  await app.register(modelListRoutes, opts);
  await app.register(responsesRoutes, opts);
  await app.register(imageRoutes, opts);
  await app.register(openaiRerankRoutes, opts);
  // Unknown paths under /v1 answer in OpenAI's shape too (clients probe for endpoints).
  await app.register(
    async (v1) => {
      v1.setNotFoundHandler((request, reply) => {
        const err = new HearthError('NOT_FOUND', `${request.method} ${request.url.split('?')[0]}: no such route`);
        return reply.code(err.status).type('application/json; charset=utf-8').send(errorBody('openai', err));
      });
    },
    { prefix: '/v1' },
  );
}
