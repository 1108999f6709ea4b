import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { generateImages } from '../../images/generate.js';
import { imageRequest, imageSchema } from '../openai/images.js';
import { clientGone } from '../stream.js';
import { parseRequest } from '../validate.js';
import { respond } from './stream.js';

const streamSchema = imageSchema.extend({ stream: z.boolean().nullish() });

/**
 * POST /api/images/generate (hearth's, Ollama-style): the same request as /v1/images/generations,
 * streamed as NDJSON progress lines `{status: "sampling", completed, total}` and a last line
 * `{status: "success", images: [base64 PNG]}`. `hearth imagine` draws its progress bar from it.
 */
export async function ollamaImageRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;
  app.post('/api/images/generate', async (request, reply) => {
    const body = parseRequest(streamSchema, request.body);
    const req = await imageRequest(ctx, body);
    const signal = clientGone(reply);
    return respond(request, reply, body.stream ?? true, async (stream) => {
      const pngs = await generateImages(ctx.images, {
        ...req,
        signal,
        onStep: (completed, total) => void stream?.write({ status: 'sampling', completed, total }),
      });
      return { status: 'success', seed: req.seed, images: pngs.map((p) => p.toString('base64')) };
    });
  });
}
